//! The interception layer's observation: syscalls a policy names (`process.interception.
//! observe`) return SECCOMP_RET_USER_NOTIF, and ward's supervisor records what the target
//! asked for, then lets the call continue. Nothing is decided here: the records are marked as
//! workload-supplied (another thread may change the memory after it was read) and enforcement
//! stays in the kernel (mounts, Landlock, seccomp, the cgroup programs).

use std::os::fd::{AsRawFd, BorrowedFd};

use oci_spec::runtime::LinuxSeccomp;

use crate::error::{Error, Result};
use crate::policy::seccomp::Program;

/// The filter: the named syscalls notify, everything else (every architecture) is allowed.
pub fn filter(names: &[String]) -> Result<Program> {
    let spec: LinuxSeccomp = serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}],
    }))
    .map_err(|e| Error::Init(format!("observe filter: {e}")))?;
    crate::policy::seccomp::compile(&spec)
}

/// `struct seccomp_notif` (80 bytes) and `struct seccomp_notif_resp` (24 bytes).
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct Resp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const NOTIF_ID_VALID: libc::c_ulong = 0x4008_2102;
const FLAG_CONTINUE: u32 = 1;
const NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;

/// Asks the kernel to switch between target and supervisor on one CPU
/// (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 6.6+): the notification wakes the supervisor on the
/// target's CPU and the answer wakes the target on the supervisor's, so a round trip costs two
/// switches instead of two cross-CPU wake-ups (here 5 us instead of 40). Returns whether the
/// kernel took it; older kernels refuse it and nothing else changes.
pub fn prefer_sync_wakeup(fd: BorrowedFd) -> bool {
    // The kernel takes the flags as the ioctl's argument itself, not through a pointer, though
    // the ioctl number is declared SECCOMP_IOW(4, __u64) (kernel/seccomp.c,
    // seccomp_notify_set_flags): a pointer is refused with EINVAL.
    const SYNC_WAKE_UP: libc::c_ulong = 1;
    // SAFETY: NOTIF_SET_FLAGS reads no memory: the flags are the argument's value.
    unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SET_FLAGS, SYNC_WAKE_UP) == 0 }
}

/// One observed call as read, before it is formatted: formatting and writing the log happen
/// off the target's path (the supervisor's main thread does them in batches).
pub struct Observed {
    time: std::time::SystemTime,
    pid: i32,
    detail: Detail,
}

impl Observed {
    /// The log record.
    pub fn record(self, id: &str) -> serde_json::Value {
        let mut record = self.detail.json();
        record["time"] = chrono::DateTime::<chrono::Utc>::from(self.time)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            .into();
        record["type"] = "observe".into();
        record["id"] = id.into();
        record["pid"] = self.pid.into();
        record["source"] =
            "workload-supplied: read from the caller's memory, which may change after".into();
        record["decision"] = "continue (observation only; enforcement stays in the kernel)".into();
        record
    }
}

/// What one `serve` call came to.
pub enum Served {
    Observed,
    /// The notification went away before it was answered (the target died or was interrupted).
    Vanished,
    /// No task uses the filter any more: the listener is done.
    Closed,
}

/// Receives one notification (blocking in the kernel until one comes), reads what the target
/// asked for, hands the record to `keep` (before the call goes on, so a target that exits
/// right after never outruns its record), and lets the call continue.
pub fn serve(fd: BorrowedFd, keep: impl FnOnce(Observed)) -> Served {
    let mut n = Notif::default();
    // SAFETY: `n` is a zeroed seccomp_notif of the size the ioctl number encodes.
    if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut n as *mut Notif) } != 0 {
        return if hung_up(fd, nix::poll::PollTimeout::ZERO) {
            Served::Closed
        } else {
            Served::Vanished
        };
    }
    let pid = n.pid as i32;
    let detail = read(pid, n.nr, n.arch, &n.args);
    // The target is still the one that made the call (pid reuse excluded) only if the id is
    // valid now, after the reads.
    // SAFETY: NOTIF_ID_VALID reads one u64 from the pointer.
    let valid = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_ID_VALID, &n.id as *const u64) } == 0;
    if valid {
        keep(Observed {
            time: std::time::SystemTime::now(),
            pid,
            detail,
        });
    }
    let resp = Resp {
        id: n.id,
        val: 0,
        error: 0,
        flags: FLAG_CONTINUE,
    };
    // SAFETY: `resp` is a seccomp_notif_resp of the size the ioctl number encodes.
    unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp as *const Resp) };
    if valid {
        Served::Observed
    } else {
        Served::Vanished
    }
}

/// Waits until the listener has a notification (true) or hangs up (false).
pub fn wait_readable(fd: BorrowedFd) -> bool {
    !hung_up(fd, nix::poll::PollTimeout::NONE)
}

/// Whether the listener reports a hang-up within `timeout`: every task that used its filter is
/// gone (from 6.6 the kernel then also ends a blocked RECV; before, only poll tells).
fn hung_up(fd: BorrowedFd, timeout: nix::poll::PollTimeout) -> bool {
    loop {
        let mut p = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut p, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
            Ok(_) => {
                return p[0].revents().is_some_and(|r| {
                    r.intersects(nix::poll::PollFlags::POLLHUP | nix::poll::PollFlags::POLLERR)
                })
            }
        }
    }
}

/// Reads up to `max` bytes of the target's memory at `addr`.
fn read_mem(pid: i32, addr: u64, max: usize) -> Vec<u8> {
    let mut buf = vec![0u8; max];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: max,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: max,
    };
    // SAFETY: `local` describes our own buffer of `max` bytes; the kernel checks the remote.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    buf.truncate(n.max(0) as usize);
    buf
}

/// A NUL-terminated string of the target, read page by page so a string at the end of a
/// mapping is still read.
fn read_str(pid: i32, addr: u64) -> Option<String> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < 4096 {
        let chunk = 256 - (at % 256) as usize;
        let bytes = read_mem(pid, at, chunk);
        if bytes.is_empty() {
            break;
        }
        if let Some(end) = bytes.iter().position(|b| *b == 0) {
            out.extend_from_slice(&bytes[..end]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&bytes);
        at += bytes.len() as u64;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn read_argv(pid: i32, addr: u64) -> Vec<String> {
    let mut argv = Vec::new();
    for i in 0..64u64 {
        let p = read_mem(pid, addr + 8 * i, 8);
        let Ok(ptr) = <[u8; 8]>::try_from(p.as_slice()) else {
            break;
        };
        let ptr = u64::from_ne_bytes(ptr);
        if ptr == 0 {
            break;
        }
        argv.push(read_str(pid, ptr).unwrap_or_default());
    }
    argv
}

fn syscall_name(nr: i32, arch: u32) -> &'static str {
    let table = if arch == crate::policy::seccomp::compile::AUDIT_ARCH_I386 {
        crate::policy::seccomp::syscalls::X86
    } else {
        crate::policy::seccomp::syscalls::X86_64
    };
    let nr = (nr as u32) & !crate::policy::seccomp::compile::X32_SYSCALL_BIT;
    table
        .iter()
        .find(|(_, n)| *n == nr)
        .map(|(name, _)| *name)
        .unwrap_or("unknown")
}

/// What an observed call asked for, as read while the target waits; turned into JSON only
/// later, off its path.
enum Detail {
    Exec {
        name: &'static str,
        path: Option<String>,
        argv: Vec<String>,
    },
    Open {
        name: &'static str,
        path: Option<String>,
        flags: Option<u64>,
    },
    Connect(Vec<u8>),
    Other(&'static str),
}

fn read(pid: i32, nr: i32, arch: u32, a: &[u64; 6]) -> Detail {
    let name = syscall_name(nr, arch);
    let open = |path: u64, flags: Option<u64>| Detail::Open {
        name,
        path: read_str(pid, path),
        flags,
    };
    match name {
        "execve" => Detail::Exec {
            name,
            path: read_str(pid, a[0]),
            argv: read_argv(pid, a[1]),
        },
        "execveat" => Detail::Exec {
            name,
            path: read_str(pid, a[1]),
            argv: read_argv(pid, a[2]),
        },
        "open" => open(a[0], Some(a[1])),
        "openat" => open(a[1], Some(a[2])),
        "openat2" => {
            let how = read_mem(pid, a[2], 8);
            let flags = <[u8; 8]>::try_from(how.as_slice())
                .ok()
                .map(u64::from_ne_bytes);
            open(a[1], flags)
        }
        "connect" => Detail::Connect(read_mem(pid, a[1], (a[2] as usize).min(128))),
        _ => Detail::Other(name),
    }
}

impl Detail {
    fn json(self) -> serde_json::Value {
        match self {
            Detail::Exec { name, path, argv } => {
                serde_json::json!({"syscall": name, "path": path, "argv": argv})
            }
            Detail::Open { name, path, flags } => {
                let mut r = serde_json::json!({"syscall": name, "path": path});
                if let Some(f) = flags {
                    r["flags"] = format!("{f:#o}").into();
                }
                r
            }
            Detail::Connect(sa) => {
                serde_json::json!({"syscall": "connect", "destination": sockaddr(&sa)})
            }
            Detail::Other(name) => serde_json::json!({ "syscall": name }),
        }
    }
}

fn sockaddr(b: &[u8]) -> String {
    let fam = b
        .get(0..2)
        .map(|f| u16::from_ne_bytes([f[0], f[1]]))
        .unwrap_or(0);
    let port = b
        .get(2..4)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .unwrap_or(0);
    match fam as i32 {
        libc::AF_INET if b.len() >= 8 => format!("{}.{}.{}.{}:{port}", b[4], b[5], b[6], b[7]),
        libc::AF_INET6 if b.len() >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            format!("[{}]:{port}", std::net::Ipv6Addr::from(a))
        }
        libc::AF_UNIX => String::from_utf8_lossy(
            b.get(2..)
                .unwrap_or_default()
                .split(|c| *c == 0)
                .next()
                .unwrap_or_default(),
        )
        .into_owned(),
        f => format!("family {f}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sync wake-up flag must really be taken: passed the wrong way (through a pointer)
    /// the kernel refuses it and every observed call pays two cross-CPU wake-ups (8x here).
    #[test]
    fn the_kernel_takes_the_sync_wakeup_flag() {
        let release = nix::sys::utsname::uname().unwrap();
        let mut v = release.release().to_str().unwrap().split(['.', '-']);
        let (major, minor): (u32, u32) = (
            v.next().unwrap().parse().unwrap(),
            v.next().unwrap().parse().unwrap(),
        );
        if (major, minor) < (6, 6) {
            return; // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is 6.6+
        }
        let program = filter(&["openat".to_string()]).unwrap();
        // SAFETY: the child only makes syscalls (the filter was built before the fork) and
        // leaves with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // SAFETY: prctl with constant arguments.
                unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                let ok = matches!(crate::policy::seccomp::install(&program), Ok(Some(fd))
                    if prefer_sync_wakeup(std::os::fd::AsFd::as_fd(&fd)));
                // SAFETY: ends the child without running the test harness's code.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
