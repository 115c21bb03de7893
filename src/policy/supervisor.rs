//! The container's supervisor: a small process of ward's, started at `create`, that outlives
//! it and turns what the kernel reports into one JSON log, `<root>/<id>/violations.jsonl`.
//! It reads the egress programs' denial records from their BPF ring buffer, and serves the
//! seccomp listeners of observed syscalls (`observe`), which `create` and every `exec` hand it
//! over `<state>/supervisor.sock`: the container never holds a listener.
//!
//! It is not in the container's cgroup, holds only the fds it needs (everything else is
//! closed), exits by itself once the container's cgroup is empty, is recorded in the state and
//! killed by `delete`. The log's path is fixed under ward's state dir: nothing in a config or
//! annotation can make ward write elsewhere.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::policy::observe::{self, Served};

use crate::error::{Error, Result};
use crate::policy::egress::programs::{DEFAULT_RULE, KIND_CONNECT, RECORD};

pub const LOG: &str = "violations.jsonl";
pub const SOCKET: &str = "supervisor.sock";
/// How long an observed record may wait before it is written, in milliseconds.
const FLUSH_MS: u16 = 100;

/// What the supervisor needs to know about the container.
pub struct Plan {
    pub id: String,
    pub state_dir: PathBuf,
    /// The container's cgroup v2 directory: its cgroup.events says when it is empty.
    pub cgroup_dir: PathBuf,
    /// Text of each egress rule, by the index denial records carry.
    pub rules: Vec<String>,
}

/// Starts the supervisor (double fork: it is nobody's child but init's or a subreaper's) and
/// returns its pid. Its socket exists when this returns.
pub fn spawn(plan: Plan, ringbuf: Option<OwnedFd>) -> Result<i32> {
    let sock_path = plan.state_dir.join(SOCKET);
    let listener = in_dir(&plan.state_dir, |short| {
        std::os::unix::net::UnixListener::bind(short)
    })
    .map_err(|e| Error::io("bind", &sock_path, e))?;
    crate::sys::daemon::spawn("supervisor", move || run(plan, ringbuf, listener))
}

fn run(plan: Plan, ringbuf: Option<OwnedFd>, listener: std::os::unix::net::UnixListener) -> i32 {
    use std::os::fd::AsFd;
    let mut keep = vec![listener.as_raw_fd()];
    keep.extend(ringbuf.as_ref().map(|r| r.as_raw_fd()));
    crate::sys::daemon::keep_only(&keep);
    let log = plan.state_dir.join(LOG);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&log);
    let Ok(mut file) = file else {
        return 1;
    };
    let mut ring = ringbuf.and_then(|r| Ring::map(r).ok());
    // Each listener is served by a thread of its own blocked in the kernel's RECV: the target
    // wakes it directly (on the target's CPU, see prefer_sync_wakeup), no poll round comes
    // first, and a call being read never delays another listener's. Records wait in `observed`
    // for this thread, which formats and writes them in batches, off the targets' path.
    let observed: Arc<Mutex<Vec<observe::Observed>>> = Arc::default();
    let mut serving = 0usize;
    // cgroup.events wakes poll (POLLPRI) when "populated" changes: the supervisor leaves as
    // soon as the container is empty, not at its next quiet round (which cost every run of a
    // container with a policy half a second in `delete`'s wait).
    let events = std::fs::File::open(plan.cgroup_dir.join("cgroup.events")).ok();
    loop {
        let mut fds = vec![nix::poll::PollFd::new(
            listener.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if let Some(r) = &ring {
            fds.push(nix::poll::PollFd::new(
                r.fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            ));
        }
        let events_at = fds.len();
        if let Some(e) = &events {
            fds.push(nix::poll::PollFd::new(
                e.as_fd(),
                nix::poll::PollFlags::POLLPRI,
            ));
        }
        // Observed records reach the log within FLUSH_MS; a quiet supervisor sleeps longer.
        let timeout: u16 = if serving > 0 { FLUSH_MS } else { 500 };
        let woke = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(timeout)).unwrap_or(0);
        let new_listener = fds[0]
            .revents()
            .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLIN));
        let changed = fds
            .get(events_at)
            .and_then(|f| f.revents())
            .is_some_and(|r| {
                r.intersects(nix::poll::PollFlags::POLLPRI | nix::poll::PollFlags::POLLERR)
            });
        drop(fds);
        if changed {
            // Reading the open file re-arms its notification.
            if let Some(e) = &events {
                let mut buf = [0u8; 128];
                let _ = nix::sys::uio::pread(e, &mut buf, 0);
            }
        }
        // Reading cgroup.events costs three syscalls: on a quiet round or when it changed.
        let empty = (woke == 0 || changed) && !populated(&plan.cgroup_dir);
        // A new listener from create or exec.
        if new_listener {
            if let Ok((conn, _)) = listener.accept() {
                if let Ok(fd) = crate::sys::console::recv_fd(conn.as_fd()) {
                    // Kernels before 6.6 refuse the sync flag, and there a blocked RECV never
                    // returns once the listener's tasks are gone: the thread waits in poll,
                    // which reports the hang-up, so an exec's thread ends with its process.
                    let sync = observe::prefer_sync_wakeup(fd.as_fd());
                    let sink = Arc::clone(&observed);
                    let spawned =
                        std::thread::Builder::new()
                            .stack_size(64 * 1024)
                            .spawn(move || loop {
                                if !sync && !observe::wait_readable(fd.as_fd()) {
                                    return;
                                }
                                let keep =
                                    |o| sink.lock().unwrap_or_else(|e| e.into_inner()).push(o);
                                if let Served::Closed = observe::serve(fd.as_fd(), keep) {
                                    return;
                                }
                            });
                    serving += usize::from(spawned.is_ok());
                }
            }
        }
        let batch = std::mem::take(&mut *observed.lock().unwrap_or_else(|e| e.into_inner()));
        let mut lines = String::new();
        for o in batch {
            lines.push_str(&o.record(&plan.id).to_string());
            lines.push('\n');
        }
        if let Some(r) = ring.as_mut() {
            r.drain(|rec| {
                lines.push_str(&describe(&plan, rec).to_string());
                lines.push('\n');
            });
        }
        if !lines.is_empty() {
            let _ = file.write_all(lines.as_bytes());
        }
        if empty {
            break;
        }
    }
    let _ = std::fs::remove_file(plan.state_dir.join(SOCKET));
    0
}

/// Hands a listener fd to the container's supervisor.
pub fn hand_over(state_dir: &Path, fd: std::os::fd::BorrowedFd) -> Result<()> {
    let path = state_dir.join(SOCKET);
    let conn = in_dir(state_dir, |short| {
        std::os::unix::net::UnixStream::connect(short)
    })
    .map_err(|e| Error::io("connect", &path, e))?;
    crate::sys::console::send_master(std::os::fd::AsFd::as_fd(&conn), fd, "listener")?;
    Ok(())
}

/// Runs `f` with a short path to `dir`'s socket: engines keep state under long roots (Docker:
/// `/run/docker/runtime-runc/moby/<64 hex>/`), where the full path exceeds what a
/// sockaddr_un holds (108 bytes). `/proc/self/fd/N/` reaches the same directory in a few bytes.
fn in_dir<T>(dir: &Path, f: impl FnOnce(&Path) -> std::io::Result<T>) -> std::io::Result<T> {
    let d = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", d.as_raw_fd()));
    f(&short)
}

fn populated(cgroup_dir: &Path) -> bool {
    std::fs::read_to_string(cgroup_dir.join("cgroup.events"))
        .map(|s| !s.lines().any(|l| l.trim() == "populated 0"))
        .unwrap_or(false)
}

/// A denial record as the egress programs write it.
pub fn describe(plan: &Plan, rec: &[u8]) -> serde_json::Value {
    let u32_at = |o: usize| {
        rec.get(o..o + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0)
    };
    let (kind, port, rule, family, pid) = (u32_at(0), u32_at(4), u32_at(8), u32_at(12), u32_at(16));
    let mut addr = [0u8; 16];
    if let Some(a) = rec.get(24..40) {
        addr.copy_from_slice(a);
    }
    let syscall = if kind as i32 == KIND_CONNECT {
        "connect"
    } else {
        "sendmsg"
    };
    if family == crate::policy::egress::unix::FAMILY {
        return serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "type": "violation",
            "id": plan.id,
            "pid": pid,
            "syscall": syscall,
            "destination": crate::policy::egress::unix::describe(rec),
            "rule": "not in allowUnix",
            "decision": "denied (EPERM), by the kernel",
        });
    }
    let ip = if family == 4 {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(addr))
    };
    let dest = match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    };
    let rule_id = rule >> 8;
    let rule_text = if rule_id == DEFAULT_RULE {
        "default deny".to_string()
    } else {
        plan.rules
            .get(rule_id as usize)
            .cloned()
            .unwrap_or_else(|| format!("rule {rule_id}"))
    };
    serde_json::json!({
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "type": "violation",
        "id": plan.id,
        "pid": pid,
        "syscall": syscall,
        "destination": dest,
        "rule": rule_text,
        "decision": "denied (EPERM), by the kernel",
    })
}

/// The consumer side of a BPF ring buffer (kernel/bpf/ringbuf.c's layout): a consumer page we
/// write, then the producer page and the data area twice (so records never wrap), read-only.
struct Ring {
    fd: OwnedFd,
    consumer: *mut u8,
    producer: *const u8,
    mask: u64,
}

impl Ring {
    const SIZE: usize = 64 * 1024;

    fn map(fd: OwnedFd) -> Result<Ring> {
        let page = 4096usize;
        // SAFETY: mapping the ring buffer map's fd as the kernel documents: the consumer page
        // read-write at offset 0, the producer page plus twice the data read-only after it.
        let consumer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        // SAFETY: as above.
        let producer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page + 2 * Self::SIZE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                page as i64,
            )
        };
        if consumer == libc::MAP_FAILED || producer == libc::MAP_FAILED {
            return Err(Error::sys(
                "mmap",
                "violation ring buffer",
                nix::errno::Errno::last(),
            ));
        }
        Ok(Ring {
            fd,
            consumer: consumer.cast(),
            producer: producer.cast(),
            mask: Self::SIZE as u64 - 1,
        })
    }

    fn drain(&mut self, mut each: impl FnMut(&[u8])) {
        const BUSY: u32 = 1 << 31;
        const DISCARD: u32 = 1 << 30;
        // SAFETY: both positions are u64s at the start of pages mapped for the life of `self`;
        // the kernel updates them concurrently, hence the atomic accesses.
        let (cons, prod) = unsafe {
            (
                &*(self.consumer as *const AtomicU64),
                &*(self.producer as *const AtomicU64),
            )
        };
        let data = self.producer.wrapping_add(4096);
        let mut pos = cons.load(Ordering::Acquire);
        while pos < prod.load(Ordering::Acquire) {
            let at = (pos & self.mask) as usize;
            // SAFETY: `at` is inside the data area; the header is 8 bytes, records are 8-byte
            // aligned, and the area is mapped twice so a record never runs past it.
            let header =
                unsafe { &*(data.wrapping_add(at) as *const std::sync::atomic::AtomicU32) }
                    .load(Ordering::Acquire);
            if header & BUSY != 0 {
                break;
            }
            let len = (header & !(BUSY | DISCARD)) as usize;
            if header & DISCARD == 0 && len >= RECORD {
                // SAFETY: the record's bytes follow its header inside the mapped area.
                let rec = unsafe { std::slice::from_raw_parts(data.wrapping_add(at + 8), len) };
                each(rec);
            }
            pos += ((len + 8 + 7) & !7) as u64;
            cons.store(pos, Ordering::Release);
        }
    }
}

// SAFETY: the mappings belong to this value alone and are never shared across threads.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped.
        unsafe {
            libc::munmap(self.consumer.cast(), 4096);
            libc::munmap(self.producer as *mut libc::c_void, 4096 + 2 * Self::SIZE);
        }
    }
}

/// Rules as the log names them, indexed like `Network::rules()`.
pub fn rule_texts(n: &crate::spec::interception::Network) -> Result<Vec<String>> {
    Ok(n.rules()?
        .iter()
        .map(|r| {
            let v = if r.verdict == crate::spec::interception::Verdict::Allow {
                "allow"
            } else {
                "deny"
            };
            format!("{v} {}/{}:{}-{}", r.addr, r.prefix, r.ports.0, r.ports.1)
        })
        .collect())
}
