//! Skipping a test whose kernel feature (or peer tool) this machine lacks, with a reason that
//! is never hidden: `skipped: <reason>` goes straight to stderr (libtest's capture only takes
//! `eprintln!`), and when the test binary exits it lists every skip under libtest's summary,
//! so a skipped test is never mistaken for a passing one. Plus the probes the tests share.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, Once};

static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static REPORT: Once = Once::new();

/// Returns from the calling test with `skipped: <reason>` unless `cond` holds.
#[macro_export]
macro_rules! require {
    ($cond:expr, $($reason:tt)+) => {
        if !$cond {
            $crate::skip::skipped(&format!($($reason)+));
            return;
        }
    };
}

/// Skips a test of the v1 hierarchies unless this is a hybrid host (see `hybrid_cgroups`).
#[macro_export]
macro_rules! require_hybrid {
    () => {
        $crate::require!(
            $crate::skip::hybrid_cgroups(),
            "not a hybrid host (v1 controllers + cgroup2 at /sys/fs/cgroup/unified)"
        );
    };
}

/// Records and prints a skip of the current test (call it, then `return`).
pub fn skipped(reason: &str) {
    let name = std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string();
    let _ = writeln!(std::io::stderr(), "test {name} skipped: {reason}");
    SKIPPED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(format!("{name}: {reason}"));
    REPORT.call_once(|| {
        // SAFETY: `report` is an `extern "C" fn()` that never unwinds; atexit only stores it.
        unsafe { libc::atexit(report) };
    });
}

/// Runs at exit, after libtest's summary: the count and list of skipped tests.
extern "C" fn report() {
    let list = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = format!(
        "{} test(s) skipped (counted as passed above):\n",
        list.len()
    );
    for line in list.iter() {
        text.push_str(&format!("    skipped {line}\n"));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// A BFQ (or the old CFQ) I/O scheduler is registered, so blkio cgroups have a weight file
/// (`blkio.bfq.weight` or `blkio.weight`).
pub fn blkio_weight() -> bool {
    let bfq = std::fs::read_dir("/sys/block").is_ok_and(|d| {
        d.flatten().any(|e| {
            std::fs::read_to_string(e.path().join("queue/scheduler")).is_ok_and(|s| {
                s.split_whitespace()
                    .any(|w| w.trim_matches(['[', ']']) == "bfq")
            })
        })
    });
    bfq || Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
}

/// The v1 controllers (and name=systemd) this suite's cgroup tests expect, each in its own
/// hierarchy under /sys/fs/cgroup, plus cgroup2 at /sys/fs/cgroup/unified: a hybrid host.
pub fn hybrid_cgroups() -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounted = |dir: &str, fstype: &str| {
        mounts.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-");
            f.get(4) == Some(&dir) && sep.is_some_and(|s| f.get(s + 1) == Some(&fstype))
        })
    };
    let v1 = [
        "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "systemd",
    ];
    v1.iter()
        .all(|c| mounted(&format!("/sys/fs/cgroup/{c}"), "cgroup"))
        && mounted("/sys/fs/cgroup/unified", "cgroup2")
}

/// Swap accounting (memory.memsw.*) in the v1 memory controller.
pub fn memsw() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

/// The Landlock ABI version of the running kernel, 0 when Landlock is absent or disabled.
pub fn landlock_abi() -> i64 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) reads no
    // memory and creates no fd; it returns the ABI version or -1.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    v.max(0)
}

/// Time namespaces (Linux 5.6+).
pub fn time_ns() -> bool {
    Path::new("/proc/self/ns/time").exists()
}

/// The running kernel's (major, minor) from /proc/sys/kernel/osrelease.
pub fn kernel_version() -> (u64, u64) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut n = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|x| x.parse().unwrap_or(0));
    (n.next().unwrap_or(0), n.next().unwrap_or(0))
}

/// The cgroup BPF hooks for unix sockets (Linux 6.7+), which ward's programs find through BTF.
pub fn unix_hooks() -> bool {
    kernel_version() >= (6, 7) && Path::new("/sys/kernel/btf/vmlinux").exists()
}
