//! `ward delete`: remove a stopped (or created) container, or with --force a running or paused
//! one: everything in its cgroup is killed, the cgroup removed, then the poststop hooks run.

use std::os::fd::AsFd;
use std::path::Path;

use crate::container::{hook_state, kill::container_pids, open_init, pidfd_signal, wait_exit};
use crate::error::{Error, Result};
use crate::init::hooks::{run_hooks, HookKind};
use crate::container::state::{ContainerDir, Status, Stored};

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let _lock = dir.lock()?;
    let stored = dir.load()?;
    let status = dir.status(&stored);
    match status {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        s => {
            return Err(Error::BadState(format!(
                "cannot delete container {id} that is not stopped: {s}"
            )))
        }
    }
    kill_and_wait(&stored)?;
    stop_supervisor(&stored);
    if let Some(cg) = &stored.cgroup {
        cg.destroy()?;
    }
    let hooks = dir
        .load_config()
        .ok()
        .and_then(|c| c.hooks().as_ref().and_then(|h| h.poststop().clone()))
        .unwrap_or_default();
    dir.remove()?;
    // runtime-spec: a failing poststop hook is logged, the deletion stands.
    if let Err(e) = run_hooks(
        HookKind::Poststop,
        &hooks,
        &hook_state(&stored, Status::Stopped),
    ) {
        tracing::warn!("poststop hook failed: {e}");
    }
    Ok(())
}

/// The supervisor leaves by itself once the cgroup is empty (after writing the last records);
/// what is still there a second later is killed, so nothing of the container outlives delete.
fn stop_supervisor(stored: &Stored) {
    let Some((pid, start)) = stored.supervisor else {
        return;
    };
    for _ in 0..100 {
        if !matches!(crate::container::state::proc_stat(pid), Some((s, t)) if t == start && s != 'Z') {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// SIGKILLs init and everything else of the container (a paused cgroup is thawed so the kill
/// can be delivered) and waits until nothing is left.
fn kill_and_wait(stored: &Stored) -> Result<()> {
    if let Some(cg) = &stored.cgroup {
        cg.kill_all()?;
        if cg.is_frozen() {
            cg.freeze(false)?;
        }
    } else if !stored.private_pid_ns {
        for pid in container_pids(stored) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    if let Some(pidfd) = open_init(stored) {
        match pidfd_signal(pidfd.as_fd(), libc::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(Error::sys(
                    "pidfd_send_signal",
                    format!("SIGKILL to {}", stored.id),
                    e,
                ))
            }
        }
        if !wait_exit(pidfd.as_fd(), 10_000) {
            return Err(Error::BadState(format!(
                "container {} did not exit after SIGKILL",
                stored.id
            )));
        }
    }
    if let Some(cg) = &stored.cgroup {
        for _ in 0..1000 {
            if cg.pids().is_empty() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        return Err(Error::BadState(format!(
            "processes of container {} survived SIGKILL",
            stored.id
        )));
    }
    Ok(())
}
