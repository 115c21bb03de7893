//! `ward delete`: remove a stopped (or created) container, or with --force a running one, then
//! run its poststop hooks.

use std::os::fd::AsFd;
use std::path::Path;

use crate::container::{hook_state, kill::container_pids, open_init, pidfd_signal, wait_exit};
use crate::error::{Error, Result};
use crate::hooks::{run_hooks, HookKind};
use crate::state::{ContainerDir, Status};

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let _lock = dir.lock()?;
    let stored = dir.load()?;
    let status = dir.status(&stored);
    match status {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&stored)?,
        _ if force => kill_and_wait(&stored)?,
        s => {
            return Err(Error::BadState(format!(
                "cannot delete container {id} that is not stopped: {s}"
            )))
        }
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

fn kill_and_wait(stored: &crate::state::Stored) -> Result<()> {
    let Some(pidfd) = open_init(stored) else {
        return Ok(());
    };
    if !stored.private_pid_ns {
        for pid in container_pids(stored) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
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
    Ok(())
}
