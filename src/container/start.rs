//! `ward start`: release a created init to execve the user process, then run poststart hooks.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use crate::container::state::{ContainerDir, Status, Stored};
use crate::container::{hook_state, open_init};
use crate::error::{Error, Result};
use crate::init::hooks::{run_hooks, HookKind};

pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let _lock = dir.lock()?;
    let stored = dir.load()?;
    match dir.status(&stored) {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::BadState(
                "cannot start a container that has stopped".into(),
            ))
        }
        s => {
            return Err(Error::BadState(format!(
                "cannot start an already {s} container"
            )))
        }
    }
    let pidfd = open_init(&stored)
        .ok_or_else(|| Error::BadState("cannot start a container that has stopped".into()))?;
    let path = dir.exec_fifo();
    let fifo = nix::fcntl::open(
        &path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", path.display().to_string(), e))?;
    // SAFETY: open just returned this fd; we own it.
    let fifo = unsafe { OwnedFd::from_raw_fd(fifo) };
    // From here on the container is no longer "created", whatever happens next.
    let _ = std::fs::remove_file(&path);
    let reply = read_until_exec(fifo.as_fd(), pidfd.as_fd(), &stored)?;
    if !reply.is_empty() {
        return Err(Error::Init(reply));
    }
    let config = dir.load_config()?;
    let hooks = config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().clone())
        .unwrap_or_default();
    // runtime-spec: a failing poststart hook is logged; the container keeps running.
    if let Err(e) = run_hooks(
        HookKind::Poststart,
        &hooks,
        &hook_state(&stored, Status::Running),
    ) {
        tracing::warn!("poststart hook failed: {e}");
    }
    Ok(())
}

/// Waits for init's "0" (it opened the fifo), then for EOF (execve closed it: success) or an
/// error message. init dying first is an error too. A fifo whose writer came and went before
/// we opened it never reports EOF (a start killed after releasing init, then this one in the
/// moment before init's execve): init's exe, looked at every 100 ms, tells that it has exec'd.
fn read_until_exec(fifo: BorrowedFd, pidfd: BorrowedFd, stored: &Stored) -> Result<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            PollFd::new(fifo, PollFlags::POLLIN),
            PollFd::new(pidfd, PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(0) if got.is_empty() && crate::container::state::init_execed(stored) => break,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", "exec fifo", e)),
        }
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let init_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if fifo_ready {
            match nix::unistd::read(fifo.as_raw_fd(), &mut buf) {
                Ok(0) if !got.is_empty() => break,
                Ok(0) | Err(nix::errno::Errno::EAGAIN) => {}
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(Error::sys("read", "exec fifo", e)),
            }
        } else if init_gone {
            if got.is_empty() {
                return Err(Error::BadState("container init exited before start".into()));
            }
            break;
        }
    }
    Ok(String::from_utf8_lossy(got.get(1..).unwrap_or_default()).into_owned())
}
