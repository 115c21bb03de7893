//! The container's operations, one file each, over the state in `state.rs`.
//!
//! Status transitions (derived from the kernel, see `state::ContainerDir::status`):
//!
//!   create -> created --start--> running --init exits--> stopped --delete--> (gone)
//!   created/running --kill--> (signal) ; created --delete--> (gone) ; running --delete -f--> (gone)
//!   running --pause--> paused --resume--> running

pub mod create;
pub mod credentials;
pub mod delete;
pub mod egress;
pub mod exec;
pub mod features;
pub mod gvisor_pod;
pub mod hook;
pub mod kill;
pub mod pause;
pub mod rootless;
pub mod sandbox;
pub mod selfclone;
pub mod start;
pub mod state;
pub mod tier;
pub mod trust;
pub mod update;

use crate::container::state::{Status, Stored};

/// The state JSON given to hooks on stdin (runtime-spec "State").
pub fn hook_state(stored: &Stored, status: Status) -> Vec<u8> {
    let mut v = serde_json::json!({
        "ociVersion": stored.oci_version,
        "id": stored.id,
        "status": status,
        "pid": stored.pid,
        "bundle": stored.bundle,
    });
    if !stored.annotations.is_empty() {
        v["annotations"] = serde_json::json!(stored.annotations);
    }
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    out
}

/// Waits (up to `timeout_ms`) until the process behind `pidfd` has exited.
pub fn wait_exit(pidfd: std::os::fd::BorrowedFd, timeout_ms: u16) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(pidfd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(timeout_ms)), Ok(n) if n > 0)
}

/// Opens a pidfd for init if it is still the process we started (pid + start time).
pub fn open_init(stored: &Stored) -> Option<std::os::fd::OwnedFd> {
    if !crate::container::state::init_alive(stored) {
        return None;
    }
    // SAFETY: pidfd_open takes a pid and flags; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, stored.pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel returned a new fd that we now own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // The pid could have been reused between the check and pidfd_open: check again.
    crate::container::state::init_alive(stored).then_some(fd)
}

pub fn pidfd_signal(pidfd: std::os::fd::BorrowedFd, sig: i32) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain integer arguments; a null siginfo means "as kill(2) would send it".
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    nix::errno::Errno::result(rc).map(drop)
}
