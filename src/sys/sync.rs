//! The channel between `ward create` and the container's init while init is being set up.
//!
//! A SOCK_SEQPACKET socketpair (message boundaries kept, both ends CLOEXEC): one JSON message per
//! packet. The exchange is strictly request/response, so neither side ever needs a thread.
//!
//!   parent -> init   MountSources { indices } + one packet per fd    only under a user namespace
//!                    with bind mounts: their sources, opened by the parent in init's mount ns
//!   parent -> init   Go { state }       ids mapped, cgroup joined: start setting up
//!   init -> parent   RunHooks           namespaces and mounts exist: run prestart/createRuntime
//!   parent -> init   HooksDone
//!   init -> parent   SeccompFd + (next packet) the notify fd    only with SCMP_ACT_NOTIFY
//!   init -> parent   ObserveFd + (next packet) the observe fd   only with interception.observe
//!   parent -> init   SeccompDone                                 the fd reached its listener
//!   init -> parent   Ready | Error{msg} set up and waiting for `start`, or failed
//!   exec -> parent   Pid{pid}  the process, forked once every namespace was joined

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    Go {
        state: String,
    },
    /// Bind sources of `mounts[i]` for each index, opened outside the user namespace; one
    /// SCM_RIGHTS packet per fd follows.
    MountSources {
        indices: Vec<usize>,
    },
    RunHooks,
    HooksDone,
    SeccompFd,
    /// The listener of ward's own observe filter (next packet), for the supervisor.
    ObserveFd,
    SeccompDone,
    Ready,
    /// A log record of init's, for `ward create` to write (init holds no fd of the caller's).
    Log {
        level: String,
        msg: String,
    },
    /// `ward exec`: the host pid of the process, forked inside the container's namespaces.
    Pid {
        pid: i32,
    },
    Error {
        msg: String,
    },
}

pub struct Channel(pub OwnedFd);

/// Largest payload of one packet: a message is cut into packets of at most this much, each
/// led by one byte, `+` (more follows) or `.` (the last), so a message of any size (a state
/// with hundreds of KiB of annotations) crosses a socket whose packets are bounded by its
/// buffer. One sender is single-threaded, so a message's packets are never interleaved.
const CHUNK: usize = 32 * 1024;

/// Sends one message on a channel's socket (or a copy of it).
pub fn send_on(fd: std::os::fd::BorrowedFd, msg: &Msg) -> Result<()> {
    let data = serde_json::to_vec(msg).map_err(|e| Error::Init(e.to_string()))?;
    let mut chunks = data.chunks(CHUNK).peekable();
    let mut packet = Vec::with_capacity(CHUNK.min(data.len()) + 1);
    while let Some(chunk) = chunks.next() {
        packet.clear();
        packet.push(if chunks.peek().is_some() { b'+' } else { b'.' });
        packet.extend_from_slice(chunk);
        // write(2)/read(2), not send/recv: once init has loaded a seccomp filter these are the
        // syscalls a profile written for runc is sure to allow (its init syncs the same way).
        nix::unistd::write(fd, &packet).sys("write", "sync channel")?;
    }
    Ok(())
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .sys("socketpair", "sync channel")?;
    Ok((Channel(a), Channel(b)))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        send_on(self.0.as_fd(), msg)
    }

    /// The next message; `None` when the other side closed without saying anything (it died).
    pub fn recv(&self) -> Result<Option<Msg>> {
        // Room for the largest packet, not zeroed: the kernel writes only what a packet holds
        // (a few bytes, as a rule), so only those pages are touched; zeroing 32 KiB cost a
        // forked child up to eight copy-on-write faults per message.
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 1);
        let mut msg = Vec::new();
        loop {
            // SAFETY: read(2) writes at most `capacity` bytes into the vector's own allocation.
            let rc = unsafe {
                libc::read(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().cast::<libc::c_void>(),
                    buf.capacity(),
                )
            };
            let n = match nix::errno::Errno::result(rc) {
                Ok(0) if msg.is_empty() => return Ok(None),
                Ok(0) => return Err(Error::Init("sync channel closed inside a message".into())),
                Ok(n) => n as usize,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("read", "sync channel", e)),
            };
            // SAFETY: the kernel initialised the first `n` bytes (n <= capacity) just above.
            unsafe { buf.set_len(n) };
            let (more, body) = match buf[..n].split_first() {
                Some((b'+', body)) => (true, body),
                Some((b'.', body)) => (false, body),
                _ => return Err(Error::Init("bad packet on sync channel".into())),
            };
            msg.extend_from_slice(body);
            if !more {
                return serde_json::from_slice(&msg)
                    .map(Some)
                    .map_err(|e| Error::Init(format!("bad message on sync channel: {e}")));
            }
        }
    }

    /// Receives and checks that the message is `want`.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Error { msg }) => Err(Error::Init(msg)),
            Some(other) => Err(Error::Init(format!(
                "sync: expected {want:?}, got {other:?}"
            ))),
            None => Err(Error::Init(
                "the other side of the sync channel exited".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_eof() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Go { state: "{}".into() }).unwrap();
        a.send(&Msg::Ready).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Go { state: "{}".into() }));
        b.expect(Msg::Ready).unwrap();
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
