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
/// error message. init dying first is an error too. The fifo may also end without a word, or
/// never report EOF, when its writer came and went before this start saw it (a start killed
/// after releasing init, then this one; init killed meanwhile): then init's pidfd says it died,
/// or init's exe, looked at every 100 ms, says it has exec'd.
fn read_until_exec(fifo: BorrowedFd, pidfd: BorrowedFd, stored: &Stored) -> Result<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            PollFd::new(fifo, PollFlags::POLLIN),
            PollFd::new(pidfd, PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", "exec fifo", e)),
        }
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let init_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        let mut eof = false;
        if fifo_ready {
            match nix::unistd::read(fifo.as_raw_fd(), &mut buf) {
                Ok(0) => eof = true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(Error::sys("read", "exec fifo", e)),
            }
        }
        if eof && !got.is_empty() {
            break;
        }
        if init_gone && (eof || !fifo_ready) {
            if got.is_empty() {
                return Err(Error::BadState("container init exited before start".into()));
            }
            break;
        }
        if got.is_empty() && (eof || !fifo_ready) && crate::container::state::init_execed(stored) {
            break;
        }
        if eof {
            // A hang-up without a word and init neither dead nor exec'd yet: it is one or the
            // other a moment from now; do not spin on the hang-up meanwhile.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    Ok(String::from_utf8_lossy(got.get(1..).unwrap_or_default()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    /// A stand-in for init: a live `sleep`, its state (pid, start time, `init_exe` as given) and
    /// its pidfd.
    fn sleeper(init_exe: Option<(u64, u64)>) -> (std::process::Child, Stored, OwnedFd) {
        let child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let (_, start) = crate::container::state::proc_stat(pid).expect("stat of sleep");
        let stored: Stored = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "id": "t", "pid": pid, "bundle": "/b", "rootfs": "/b/r",
            "created": "", "owner": "", "initStartTime": start, "privatePidNs": true,
            "initExe": init_exe,
        }))
        .expect("a Stored");
        let pidfd = crate::container::open_init(&stored).expect("pidfd of sleep");
        (child, stored, pidfd)
    }

    /// A pipe whose writer has already hung up without a word (a fifo whose init was released
    /// by a start that was then killed).
    fn hung_up() -> OwnedFd {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).expect("pipe2");
        drop(w);
        r
    }

    /// read_until_exec on another thread; its result, or None if it had not returned in 5 s.
    fn bounded(fifo: OwnedFd, pidfd: OwnedFd, stored: Stored) -> Option<Result<String>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(read_until_exec(fifo.as_fd(), pidfd.as_fd(), &stored));
        });
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    /// init killed between releasing and writing its "0" (a kill racing start): an error at once,
    /// not a spin on the hang-up.
    #[test]
    fn a_silent_hang_up_and_a_dead_init_fail_the_start() {
        let (mut child, stored, pidfd) = sleeper(None);
        child.kill().unwrap();
        child.wait().unwrap();
        let got = bounded(hung_up(), pidfd, stored).expect("start hung on a dead init");
        let err = got.expect_err("a dead init started").to_string();
        assert!(err.contains("exited before start"), "{err}");
    }

    /// init already exec'd (its exe is not the file it ran at create): the start is done.
    #[test]
    fn a_silent_hang_up_after_init_execed_is_a_start() {
        let (mut child, stored, pidfd) = sleeper(Some((0, 0)));
        let got = bounded(hung_up(), pidfd, stored);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            got.expect("start hung on an exec'd init").ok(),
            Some(String::new())
        );
    }

    /// The writer gone and init still the file it ran at create (neither dead nor exec'd yet):
    /// the start keeps waiting, without spinning; it ends as soon as init dies.
    #[test]
    fn a_silent_hang_up_waits_for_init_to_exec_or_die() {
        let (mut child, stored, pidfd) = sleeper(None);
        let stored = Stored {
            init_exe: crate::container::state::exe_of(stored.pid),
            ..stored
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let fifo = hung_up();
        std::thread::spawn(move || {
            let _ = tx.send(read_until_exec(fifo.as_fd(), pidfd.as_fd(), &stored));
        });
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        child.kill().unwrap();
        child.wait().unwrap();
        let got = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("no end after init died");
        assert!(got.is_err());
    }
}
