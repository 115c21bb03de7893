//! Pods in the gvisor tier: every container of a Kubernetes pod runs in one runsc sandbox.
//!
//! CRI marks each container's spec with its role (`io.kubernetes.cri.container-type`: the pause
//! container is the `sandbox`, app containers are `container`s naming their pod's
//! `io.kubernetes.cri.sandbox-id`). runsc reads the same annotations: a `container` whose sandbox
//! lives under the same `--root` becomes a subcontainer of that sandbox. ward routes all of a
//! pod's containers to the one runsc root, so the grouping comes from runsc; what ward adds is
//! the part containerd's runc shim cannot get from runsc for a subcontainer:
//!
//! - an init to watch. `runsc create --pid-file` writes the *sandbox's* pid for a subcontainer;
//!   the shim would take it for the container's init and never see the container exit. ward
//!   instead gives the shim the pid of a keeper: a ward process left behind by `create`
//!   (reparented to the shim, a subreaper, as runc's init is) that exits with the container's
//!   exit status, read from `runsc wait`.
//! - the container's stdio. runsc hands a subcontainer the stdio of `runsc start`, not of
//!   `create`, while the shim gives the container's pipes to `create` and runs `start` with a
//!   pipe it reads to EOF. The keeper holds create's stdio; `start` takes it from the keeper
//!   (pidfd_getfd) and runs `runsc start` with it, then tells the keeper to wait. (A terminal
//!   is runsc's own: it sends the pty master to --console-socket during create, as runc does.)

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::error::{Error, Result};

/// containerd's CRI annotations (runsc also knows CRI-O's, below).
pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
const CRIO_CONTAINER_TYPE: &str = "io.kubernetes.cri-o.ContainerType";
const CRIO_SANDBOX_ID: &str = "io.kubernetes.cri-o.SandboxID";

/// A container's place in a runsc sandbox.
#[derive(Debug, PartialEq, Eq)]
pub enum Role {
    /// A sandbox of its own: a pod's pause container, or a container outside any pod.
    Own,
    /// An app container of the pod whose pause container has this id.
    Subcontainer { sandbox: String },
}

/// The role runsc will give a spec with these annotations (runsc's rule: only `container`
/// joins a sandbox, and then it must name one).
pub fn role(annotations: Option<&HashMap<String, String>>) -> Result<Role> {
    let Some(a) = annotations else {
        return Ok(Role::Own);
    };
    for (typ, sid) in [
        (CONTAINER_TYPE, SANDBOX_ID),
        (CRIO_CONTAINER_TYPE, CRIO_SANDBOX_ID),
    ] {
        if a.get(typ).map(String::as_str) != Some("container") {
            continue;
        }
        return match a.get(sid).filter(|s| !s.is_empty()) {
            Some(s) => {
                crate::container::state::validate_id(s)?;
                Ok(Role::Subcontainer { sandbox: s.clone() })
            }
            None => Err(Error::spec(
                format!("annotations.{sid}"),
                format!("missing: a {typ}=container must name its pod's sandbox"),
            )),
        };
    }
    Ok(Role::Own)
}

/// The exit status in `runsc wait`'s answer (`{"id":..,"exitStatus":N}`; runsc already maps a
/// signal to 128+N).
pub fn wait_status(out: &[u8]) -> Result<i32> {
    let v: serde_json::Value = serde_json::from_slice(out).map_err(|e| {
        Error::Init(format!(
            "runsc wait: {e}: {:?}",
            String::from_utf8_lossy(out)
        ))
    })?;
    v["exitStatus"]
        .as_i64()
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| {
            Error::Init(format!(
                "runsc wait: no exitStatus in {:?}",
                String::from_utf8_lossy(out)
            ))
        })
}

/// A process, pinned by a pidfd once its start time matched: nothing ward does through it can
/// reach a process that reused the pid.
pub struct Pinned {
    pidfd: OwnedFd,
}

impl Pinned {
    /// `None` when the process is gone or the pid now belongs to another process.
    pub fn open(pid: i32, start_time: u64) -> Result<Option<Pinned>> {
        if pid <= 0 {
            return Ok(None);
        }
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1; no memory is
        // passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ESRCH) => Ok(None),
                _ => Err(Error::Init(format!("pidfd_open({pid}): {e}"))),
            };
        }
        // SAFETY: the syscall returned a new fd that nothing else owns.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // Checked after pinning: if the start time still matches now, the pidfd is that process.
        match crate::container::state::proc_stat(pid) {
            Some((s, t)) if t == start_time && s != 'Z' && s != 'X' => Ok(Some(Pinned { pidfd })),
            _ => Ok(None),
        }
    }

    /// A duplicate of the process's fd `target` (pidfd_getfd(2); the new fd is close-on-exec).
    pub fn take_fd(&self, target: RawFd) -> Result<OwnedFd> {
        // SAFETY: pidfd_getfd(2) takes a pidfd we own, an fd number and flags, and returns a new
        // fd or -1; no memory is passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, self.pidfd.as_raw_fd(), target, 0) };
        if fd < 0 {
            return Err(Error::Init(format!(
                "pidfd_getfd(keeper fd {target}): {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: the syscall returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    /// SIGKILL through the pidfd.
    pub fn kill(&self) -> Result<()> {
        // SAFETY: pidfd_send_signal(2) with a pidfd we own, a signal number and a null siginfo
        // (allowed: the kernel fills it as for kill(2)).
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(Error::Init(format!("kill keeper: {e}")));
            }
        }
        Ok(())
    }
}

/// The start fifo between `start` and the keeper: the keeper holds it open read-write from
/// before `create` returns (so a writer never finds it without a reader while the keeper
/// lives) and blocks reading it; `start` writes one byte once runsc started the container.
pub fn make_start_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::sys("mkfifo", path.display().to_string(), e))?;
    // Not close-on-exec: the keeper inherits it (its number is on the keeper's command line).
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open", path.display().to_string(), e))?;
    // SAFETY: open(2) returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `start`'s side: wake the keeper. ENXIO (no reader) means the keeper is gone.
pub fn release_keeper(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => Error::Init(
                "the container's keeper is gone: its exit can no longer be reported".into(),
            ),
            _ => Error::io("open", path, e),
        })?;
    f.write_all(b"s").map_err(|e| Error::io("write", path, e))
}

/// The keeper's side: blocks until `start` released it. `Ok(false)` when the fifo was closed
/// without a byte (cannot happen while we hold it read-write; kept for robustness).
pub fn await_start(fifo: OwnedFd) -> Result<bool> {
    let mut f = File::from(fifo);
    let mut b = [0u8; 1];
    loop {
        match f.read(&mut b) {
            Ok(n) => return Ok(n == 1),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Init(format!("keeper: read start fifo: {e}"))),
        }
    }
}

/// Points fds 0, 1 and 2 at /dev/null, so the keeper stops holding the container's stdio once
/// the sandbox has its own copies (the shim sees EOF when the container ends, not the keeper).
pub fn release_stdio() -> Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("open", "/dev/null", e))?;
    for fd in 0..3 {
        nix::unistd::dup2(null.as_raw_fd(), fd)
            .map_err(|e| Error::sys("dup2", format!("/dev/null to fd {fd}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn roles_follow_the_cri_annotations() {
        assert_eq!(role(None).unwrap(), Role::Own);
        assert_eq!(role(Some(&ann(&[]))).unwrap(), Role::Own);
        assert_eq!(
            role(Some(&ann(&[
                (CONTAINER_TYPE, "sandbox"),
                (SANDBOX_ID, "p1")
            ])))
            .unwrap(),
            Role::Own
        );
        assert_eq!(
            role(Some(&ann(&[
                (CONTAINER_TYPE, "container"),
                (SANDBOX_ID, "p1")
            ])))
            .unwrap(),
            Role::Subcontainer {
                sandbox: "p1".into()
            }
        );
        assert_eq!(
            role(Some(&ann(&[
                (CRIO_CONTAINER_TYPE, "container"),
                (CRIO_SANDBOX_ID, "p2")
            ])))
            .unwrap(),
            Role::Subcontainer {
                sandbox: "p2".into()
            }
        );
        let e = role(Some(&ann(&[(CONTAINER_TYPE, "container")])))
            .unwrap_err()
            .to_string();
        assert!(e.contains(SANDBOX_ID), "{e}");
        // A sandbox id that could leave the state root is refused, not followed.
        assert!(role(Some(&ann(&[
            (CONTAINER_TYPE, "container"),
            (SANDBOX_ID, "../x")
        ])))
        .is_err());
    }

    #[test]
    fn wait_answers() {
        assert_eq!(wait_status(br#"{"id":"a","exitStatus":7}"#).unwrap(), 7);
        assert_eq!(wait_status(br#"{"id":"a","exitStatus":137}"#).unwrap(), 137);
        assert!(wait_status(br#"{"id":"a"}"#).is_err());
        assert!(wait_status(b"can't wait").is_err());
    }

    #[test]
    fn start_fifo_wakes_the_keeper_and_reports_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("ward-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("start.fifo");
        let fd = make_start_fifo(&p).unwrap();
        release_keeper(&p).unwrap();
        assert!(await_start(fd).unwrap());
        // The reader (holder) is gone: start must say so rather than block.
        let e = release_keeper(&p).unwrap_err().to_string();
        assert!(e.contains("keeper is gone"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
