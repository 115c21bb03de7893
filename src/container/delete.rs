//! `ward delete`: remove a stopped (or created) container, or with --force a running or paused
//! one: everything in its cgroup is killed, the cgroup removed, then the poststop hooks run.

use std::os::fd::AsFd;
use std::path::Path;

use crate::container::state::{ContainerDir, Status, Stored};
use crate::container::{hook_state, kill::container_pids, open_init, pidfd_signal, wait_exit};
use crate::error::{Error, Result};
use crate::init::hooks::{run_hooks, HookKind};

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = match ContainerDir::open(root, id) {
        Err(Error::NotExist(_)) if force => {
            let dir = ContainerDir::open_any(root, id)?;
            let _lock = dir.lock()?;
            return remove_leftovers(&dir);
        }
        r => r?,
    };
    let _lock = dir.lock()?;
    let stored = match dir.load() {
        Err(e) if force => {
            tracing::warn!("container {id}: state unusable ({e}); removing what create recorded");
            return remove_leftovers(&dir);
        }
        r => r?,
    };
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
    stop_helper(stored.supervisor);
    stop_helper(stored.proxy);
    if let Some(ns) = &stored.proxy_netns {
        crate::container::egress::release(ns);
    }
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

/// `delete --force` of a container without usable state (its create was killed half-way, or
/// state.json was lost): ends and removes what `creating.json` says create made, then the
/// directory. Every step is tried even if an earlier one failed; the first error is returned.
/// The caller holds the container's lock.
fn remove_leftovers(dir: &ContainerDir) -> Result<()> {
    let made = dir.load_leftovers();
    tracing::debug!("leftovers of {}: {made:?}", dir.id);
    let mut first_err = None;
    if let Some(cg) = &made.cgroup {
        // Parts of it may never have been made: a failed kill is only an error if something
        // is still in it afterwards.
        let _ = cg.kill_all();
    }
    if let Some((pid, start)) = made.init {
        kill_if_same(pid, start);
    }
    for (pid, start) in made.supervisor.into_iter().chain(made.proxy) {
        kill_if_same(pid, start);
    }
    if let Some(ns) = &made.proxy_netns {
        crate::container::egress::release(ns);
    }
    if let Some(cg) = &made.cgroup {
        if cg.is_frozen() {
            let _ = cg.freeze(false);
        }
        let mut tries = 0;
        while !cg.pids().is_empty() && tries < 1000 {
            let _ = cg.kill_all();
            std::thread::sleep(std::time::Duration::from_millis(5));
            tries += 1;
        }
        if let Err(e) = cg.destroy() {
            first_err.get_or_insert(e);
        }
    }
    if let Err(e) = dir.remove() {
        first_err.get_or_insert(e);
    }
    first_err.map_or(Ok(()), Err)
}

/// SIGKILLs `pid` if it is still the process started at `start`, and waits until it is gone.
pub(crate) fn kill_if_same(pid: i32, start: u64) {
    let same =
        |s: Option<(char, u64)>| matches!(s, Some((st, t)) if t == start && st != 'Z' && st != 'X');
    if !same(crate::container::state::proc_stat(pid)) {
        return;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    for _ in 0..1000 {
        if !same(crate::container::state::proc_stat(pid)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The supervisor and the egress proxy leave by themselves once the container's init is gone
/// (the supervisor after writing the last records); what is still there a second later is
/// killed, so nothing of the container outlives delete.
fn stop_helper(helper: Option<(i32, u64)>) {
    let Some((pid, start)) = helper else {
        return;
    };
    for _ in 0..100 {
        if !matches!(crate::container::state::proc_stat(pid), Some((s, t)) if t == start && s != 'Z')
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    kill_if_same(pid, start);
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
