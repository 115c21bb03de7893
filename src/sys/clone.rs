//! clone3(2) for init: new namespaces in one step and a pidfd for the child, so the parent can
//! signal and wait on exactly that process (no pid-reuse race). The cgroup field is where
//! CLONE_INTO_CGROUP will place init into its cgroup before it runs any instruction.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::error::{Error, Result};

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub enum Forked {
    Parent { pid: i32, pidfd: OwnedFd },
    Child,
}

/// Forks with `flags` (CLONE_NEW* namespaces). Like fork(2), the child continues on a copy of
/// the caller's stack, so the caller must be single-threaded.
pub fn fork(flags: CloneFlags, cgroup: Option<RawFd>) -> Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags.bits() as u64 | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if flags.contains(CloneFlags::CLONE_PARENT) {
        // clone3 refuses an exit signal with CLONE_PARENT: the child inherits ours.
        args.exit_signal = 0;
    }
    if let Some(fd) = cgroup {
        args.flags |= 0x200000000; // CLONE_INTO_CGROUP
        args.cgroup = fd as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size passed; a zero stack makes the child
    // run on a copy of our stack exactly like fork(2), which is sound because ward is
    // single-threaded at this point.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(rc) {
        Ok(0) => Ok(Forked::Child),
        Ok(pid) => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: with CLONE_PIDFD the kernel stored a new fd, owned by us, in `pidfd`.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
        Err(e) => Err(Error::sys("clone3", format!("namespaces {flags:?}"), e)),
    }
}

/// fork(2) whose child is our parent's child (CLONE_PARENT), for a process that may already be
/// under a container's seccomp filter: clone3 first, the classic clone(2) where the filter
/// refuses clone3 (Docker's profile answers ENOSYS). Returns the child's pid to the caller,
/// 0 to the child.
pub fn fork_sibling() -> Result<i32> {
    let mut args = CloneArgs {
        flags: libc::CLONE_PARENT as u64,
        ..Default::default()
    };
    // SAFETY: as in `fork`: a valid clone_args of the size passed, no new stack, and the
    // caller is single-threaded.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let rc = match Errno::result(rc) {
        Err(Errno::ENOSYS | Errno::EPERM) => {
            // SAFETY: clone(2) with only CLONE_PARENT and no stack behaves like fork(2); the
            // remaining pointer arguments are unused for these flags.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    libc::CLONE_PARENT as libc::c_ulong,
                    0usize,
                    0usize,
                    0usize,
                    0usize,
                )
            };
            Errno::result(rc).map_err(|e| Error::sys("clone", "CLONE_PARENT", e))?
        }
        other => other.map_err(|e| Error::sys("clone3", "CLONE_PARENT", e))?,
    };
    Ok(rc as i32)
}
