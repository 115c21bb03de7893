//! ward's own long-lived processes (the supervisor, the egress proxy): started by a double
//! fork, so that each is nobody's child but init's or a subreaper's, and stripped of every fd
//! they were not handed.

use std::os::fd::{AsRawFd, RawFd};

use crate::error::{Error, Result, SysContext};

/// Double-forks; the grandchild (in a new session) runs `body` and exits with its code. The
/// caller gets the grandchild's pid once it exists, and drops what `body` captured.
/// The caller must be single-threaded (create is): the children run only ward's own code.
pub fn spawn(what: &str, body: impl FnOnce() -> i32) -> Result<i32> {
    let (r, w) = nix::unistd::pipe().sys("pipe", what.to_string())?;
    // SAFETY: the caller is single-threaded; the child forks again at once and the grandchild
    // runs ward's own code from here on.
    match unsafe { nix::unistd::fork() }.sys("fork", what.to_string())? {
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            drop(body);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut buf = [0u8; 4];
            let n =
                nix::unistd::read(r.as_raw_fd(), &mut buf).sys("read", format!("{what} pid"))?;
            if n != 4 {
                return Err(Error::Init(format!("the {what} did not start")));
            }
            Ok(i32::from_ne_bytes(buf))
        }
        nix::unistd::ForkResult::Child => {
            drop(r);
            let _ = nix::unistd::setsid();
            // SAFETY: as above; the grandchild continues as the daemon.
            if let Ok(nix::unistd::ForkResult::Child) = unsafe { nix::unistd::fork() } {
                let _ = nix::unistd::write(&w, &nix::unistd::getpid().as_raw().to_ne_bytes());
                drop(w);
                let code = body();
                // SAFETY: _exit ends the daemon without running inherited handlers.
                unsafe { libc::_exit(code) }
            }
            // SAFETY: _exit ends the intermediate child without running inherited handlers.
            unsafe { libc::_exit(0) }
        }
    }
}

/// Closes every fd but stdio (pointed at /dev/null) and `keep`.
pub fn keep_only(keep: &[RawFd]) {
    if let Ok(null) = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    ) {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null, fd);
        }
        if null > 2 && !keep.contains(&null) {
            let _ = nix::unistd::close(null);
        }
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            let _ = nix::unistd::close(fd);
        }
    }
}
