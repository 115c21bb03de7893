//! `ward kill`: signal init (through a pidfd, so a reused pid is never hit), or every process of
//! the container with --all.

use std::os::fd::AsFd;
use std::path::Path;

use nix::sys::signal::Signal;

use crate::container::state::{ContainerDir, Status, Stored};
use crate::container::{open_init, pidfd_signal};
use crate::error::{Error, Result};
pub use crate::sys::signals::parse_signal;

pub fn kill(root: &Path, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    let dir = ContainerDir::open(root, id)?;
    let stored = dir.load()?;
    if dir.status(&stored) == Status::Stopped {
        // runc: `kill --all` of a stopped container is not an error; what is left of it (a
        // container sharing a pid namespace, e.g. a pod's, keeps children after init exited:
        // containerd's shim reaps them this way) still gets the signal.
        if all {
            if !stored.private_pid_ns || stored.cgroup.is_some() {
                for pid in container_pids(&stored) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        Signal::try_from(sig).ok(),
                    );
                }
            }
            return Ok(());
        }
        return Err(Error::BadState("container not running".into()));
    }
    if all {
        for pid in container_pids(&stored) {
            // A process that exited meanwhile is not an error.
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::try_from(sig).ok());
        }
        return thaw_after_kill(&dir, &stored, sig);
    }
    let pidfd =
        open_init(&stored).ok_or_else(|| Error::BadState("container not running".into()))?;
    pidfd_signal(pidfd.as_fd(), sig).map_err(|e| match e {
        nix::errno::Errno::ESRCH => {
            Error::BadState("container not running: no such process".into())
        }
        e => Error::sys("pidfd_send_signal", format!("signal {sig} to {id}"), e),
    })?;
    thaw_after_kill(&dir, &stored, sig)
}

/// A SIGKILL to a frozen container is only delivered once it thaws (runc thaws it too).
fn thaw_after_kill(dir: &ContainerDir, stored: &Stored, sig: i32) -> Result<()> {
    match &stored.cgroup {
        Some(cg) if sig == libc::SIGKILL && dir.status(stored) == Status::Paused => {
            cg.freeze(false)
        }
        _ => Ok(()),
    }
}

/// Every process of the container: the members of its cgroup; for a container recorded without
/// one, all members of its pid namespace when it has its own, else init and its descendants.
pub fn container_pids(stored: &Stored) -> Vec<i32> {
    if let Some(cg) = &stored.cgroup {
        return cg.pids();
    }
    let procs = all_processes();
    if stored.private_pid_ns {
        let ns = ns_of(stored.pid);
        if ns.is_some() {
            return procs
                .iter()
                .map(|(p, _)| *p)
                .filter(|p| ns_of(*p) == ns)
                .collect();
        }
    }
    let mut out = vec![stored.pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            procs
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

fn ns_of(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// (pid, ppid) of every process on the host.
fn all_processes() -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}
