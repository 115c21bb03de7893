//! cgroup v1: one directory per mounted hierarchy (what dockerd's cgroupfs driver expects).

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use super::{join, remove_dir, write, Place};
use crate::error::{Error, IoContext, Result};
use crate::policy::cgroups::hierarchy::{own_path, v1_hierarchies, Hierarchy};

/// The host's v1 hierarchies and ward's own cgroup in each, worked out once per process from
/// the mount table and /proc/self/cgroup: every caller is a ward process in the host's mount
/// namespace that has not moved itself to another cgroup (init, which changes both, reads its
/// own in `init::mounts::cgroupfs`). `create` asked ten times per container and `list` twice
/// per container listed.
fn layout() -> &'static [(Hierarchy, String)] {
    static LAYOUT: std::sync::OnceLock<Vec<(Hierarchy, String)>> = std::sync::OnceLock::new();
    LAYOUT.get_or_init(|| {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        v1_hierarchies(&mountinfo)
            .into_iter()
            .map(|h| {
                let own = own_path(&own, &h.options);
                (h, own)
            })
            .collect()
    })
}

/// (hierarchy, the container's directory in it) for every v1 hierarchy of the host.
pub fn dirs(at: Place) -> Vec<(Hierarchy, PathBuf)> {
    layout()
        .iter()
        .map(|(h, own)| (h.clone(), dir_in(h, own, at)))
        .collect()
}

/// The container's directory in hierarchy `h`: below the creating ward's cgroup there when
/// the place records it, else below this process's own (`own`).
fn dir_in(h: &Hierarchy, own: &str, at: Place) -> PathBuf {
    match at.base {
        Some(base) => join(&h.mountpoint, &own_path(base, &h.options), at.path),
        None => join(&h.mountpoint, own, at.path),
    }
}

/// The container's directory in the hierarchy holding `controller`.
fn dir_of(at: Place, controller: &str) -> Option<PathBuf> {
    layout()
        .iter()
        .find(|(h, _)| h.options.split(',').any(|o| o == controller))
        .map(|(h, own)| dir_in(h, own, at))
}

fn need(at: Place, controller: &str, field: &str) -> Result<PathBuf> {
    dir_of(at, controller).ok_or_else(|| {
        Error::spec(
            field,
            format!("the {controller} cgroup controller is not mounted on this host"),
        )
    })
}

pub fn create(at: Place) -> Result<()> {
    for (h, dir) in dirs(at) {
        if h.options.split(',').any(|o| o == "cpuset") {
            create_cpuset(&h.mountpoint, &dir)?;
        } else {
            std::fs::create_dir_all(&dir).io("create cgroup", &dir)?;
        }
    }
    Ok(())
}

/// A new v1 cpuset starts with no cpus and mems, and no task can join it: each level gets its
/// parent's values as it is made.
fn create_cpuset(root: &Path, dir: &Path) -> Result<()> {
    let mut cur = root.to_path_buf();
    for part in dir.strip_prefix(root).unwrap_or(dir).components() {
        let parent = cur.clone();
        cur.push(part);
        if !cur.exists() {
            std::fs::create_dir(&cur).io("create cgroup", &cur)?;
        }
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let mine = std::fs::read_to_string(cur.join(f)).unwrap_or_default();
            if mine.trim().is_empty() {
                let theirs = std::fs::read_to_string(parent.join(f)).io("read", parent.join(f))?;
                write(&cur, f, theirs.trim())?;
            }
        }
    }
    Ok(())
}

pub fn add(at: Place, pid: i32) -> Result<()> {
    for (_, dir) in dirs(at) {
        write(&dir, "cgroup.procs", &pid.to_string())?;
    }
    Ok(())
}

pub fn procs_file(at: Place) -> PathBuf {
    dir_of(at, "pids")
        .or_else(|| dirs(at).into_iter().next().map(|(_, d)| d))
        .unwrap_or_default()
        .join("cgroup.procs")
}

pub fn destroy(at: Place) -> Result<()> {
    for (_, dir) in dirs(at) {
        remove_dir(&dir)?;
    }
    Ok(())
}

pub fn freeze(at: Place, frozen: bool) -> Result<()> {
    let dir = need(at, "freezer", "pause")?;
    let want = if frozen { "FROZEN" } else { "THAWED" };
    for _ in 0..1000 {
        write(&dir, "freezer.state", want)?;
        let now = std::fs::read_to_string(dir.join("freezer.state")).unwrap_or_default();
        if now.trim() == want {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(Error::BadState(format!(
        "cgroup {} did not become {want}",
        dir.display()
    )))
}

/// FROZEN, or FREEZING (on its way there: see `Cgroup::is_paused`).
pub fn is_paused(at: Place) -> bool {
    dir_of(at, "freezer")
        .and_then(|d| crate::sys::read_small(d.join("freezer.state")).ok())
        .is_some_and(|s| matches!(s.trim(), "FROZEN" | "FREEZING"))
}

pub fn is_frozen(at: Place) -> bool {
    dir_of(at, "freezer")
        .and_then(|d| crate::sys::read_small(d.join("freezer.state")).ok())
        .is_some_and(|s| s.trim() == "FROZEN")
}

fn limit(v: i64) -> String {
    if v < 0 {
        "-1".into()
    } else {
        v.to_string()
    }
}

pub fn apply(at: Place, res: &LinuxResources, rules: &[super::Rule]) -> Result<()> {
    if let Some(m) = res.memory() {
        let dir = need(at, "memory", "linux.resources.memory")?;
        apply_memory(&dir, m)?;
    }
    if let Some(c) = res.cpu() {
        if c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.realtime_period().is_some()
            || c.realtime_runtime().is_some()
            || c.idle().is_some()
        {
            let dir = need(at, "cpu", "linux.resources.cpu")?;
            if let Some(v) = c.shares() {
                write(&dir, "cpu.shares", &v.to_string())?;
            }
            let quota = c.quota().map(limit);
            period_first(
                &dir,
                ("cpu.cfs_period_us", c.period()),
                ("cpu.cfs_quota_us", quota),
            )?;
            if let Some(v) = c.burst() {
                write(&dir, "cpu.cfs_burst_us", &v.to_string())?;
            }
            period_first(
                &dir,
                ("cpu.rt_period_us", c.realtime_period()),
                (
                    "cpu.rt_runtime_us",
                    c.realtime_runtime().map(|v| v.to_string()),
                ),
            )?;
            if let Some(v) = c.idle() {
                write(&dir, "cpu.idle", &v.to_string())?;
            }
        }
        if c.cpus().is_some() || c.mems().is_some() {
            let dir = need(at, "cpuset", "linux.resources.cpu.cpus")?;
            if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
                write(&dir, "cpuset.cpus", v)?;
            }
            if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
                write(&dir, "cpuset.mems", v)?;
            }
        }
    }
    if let Some(p) = res.pids() {
        let dir = need(at, "pids", "linux.resources.pids")?;
        let v = if p.limit() <= 0 {
            "max".to_string()
        } else {
            p.limit().to_string()
        };
        write(&dir, "pids.max", &v)?;
    }
    if let Some(b) = res.block_io() {
        apply_blkio(at, b)?;
    }
    for h in res.hugepage_limits().iter().flatten() {
        let dir = need(at, "hugetlb", "linux.resources.hugepageLimits")?;
        write(
            &dir,
            &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            &h.limit().to_string(),
        )?;
    }
    if let Some(n) = res.network() {
        if let Some(id) = n.class_id() {
            write(
                &need(at, "net_cls", "linux.resources.network.classID")?,
                "net_cls.classid",
                &id.to_string(),
            )?;
        }
        for p in n.priorities().iter().flatten() {
            let dir = need(at, "net_prio", "linux.resources.network.priorities")?;
            write(
                &dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::spec(
            "linux.resources.unified",
            "cgroup v2 settings cannot be applied on a cgroup v1 host",
        ));
    }
    if res.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(Error::spec(
            "linux.resources.rdma",
            "the rdma controller is not supported on cgroup v1 by ward",
        ));
    }
    if !rules.is_empty() {
        let dir = need(at, "devices", "linux.resources.devices")?;
        for r in rules {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write(&dir, file, &r.v1_line())?;
        }
    }
    Ok(())
}

/// A period and the budget within it (cfs quota, rt runtime), as runc orders them: the kernel
/// checks each write's budget/period against the parent's, so the period goes first (right
/// when raising both); if that is refused (EINVAL: the old budget over a shorter period exceeds
/// the parent) and a budget comes too, the budget goes first and the period again after it.
fn period_first(
    dir: &Path,
    (period_file, period): (&str, Option<u64>),
    (budget_file, budget): (&str, Option<String>),
) -> Result<()> {
    let mut retry_period = None;
    if let Some(p) = period {
        match write(dir, period_file, &p.to_string()) {
            Ok(()) => {}
            Err(Error::Io { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) && budget.is_some() =>
            {
                retry_period = Some(p)
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(b) = &budget {
        write(dir, budget_file, b)?;
    }
    if let Some(p) = retry_period {
        write(dir, period_file, &p.to_string())?;
    }
    Ok(())
}

fn apply_memory(dir: &Path, m: &oci_spec::runtime::LinuxMemory) -> Result<()> {
    if let Some(v) = m.reservation() {
        write(dir, "memory.soft_limit_in_bytes", &limit(v))?;
    }
    // memsw (memory+swap) must stay >= the memory limit at every step: raise it first when
    // the new limit is above the current memsw, else lower the limit first.
    let swap_file = dir.join("memory.memsw.limit_in_bytes").exists();
    // runc: an unlimited memory limit without a swap value lifts the swap limit too (the
    // kernel refuses memory above memory+swap).
    let swap = match (m.limit(), m.swap()) {
        (Some(-1), None) if swap_file => Some(-1),
        (_, s) => s,
    };
    match (m.limit(), swap) {
        (Some(l), Some(s)) if swap_file => {
            let cur: i64 = std::fs::read_to_string(dir.join("memory.memsw.limit_in_bytes"))
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(i64::MAX);
            if l < 0 || l > cur {
                write(dir, "memory.memsw.limit_in_bytes", &limit(s))?;
                write(dir, "memory.limit_in_bytes", &limit(l))?;
            } else {
                write(dir, "memory.limit_in_bytes", &limit(l))?;
                write(dir, "memory.memsw.limit_in_bytes", &limit(s))?;
            }
        }
        (Some(l), _) => write(dir, "memory.limit_in_bytes", &limit(l))?,
        (None, Some(s)) if swap_file => write(dir, "memory.memsw.limit_in_bytes", &limit(s))?,
        (None, Some(_)) => tracing::warn!(
            "linux.resources.memory.swap: swap accounting is off on this host: not applied"
        ),
        (None, None) => {}
    }
    if let Some(v) = m.swappiness() {
        if v > 100 {
            return Err(Error::spec(
                "linux.resources.memory.swappiness",
                format!("{v} is above 100"),
            ));
        }
        write(dir, "memory.swappiness", &v.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    if let Some(v) = m.kernel_tcp() {
        write(dir, "memory.kmem.tcp.limit_in_bytes", &limit(v))?;
    }
    if m.kernel().is_some() {
        tracing::warn!("linux.resources.memory.kernel is deprecated and ignored (as by runc)");
    }
    Ok(())
}

fn apply_blkio(at: Place, b: &oci_spec::runtime::LinuxBlockIo) -> Result<()> {
    let dir = need(at, "blkio", "linux.resources.blockIO")?;
    // CFQ's files, or BFQ's where only BFQ exists (runc does the same).
    let pick =
        |cfq: &'static str, bfq: &'static str| if dir.join(cfq).exists() { cfq } else { bfq };
    if let Some(w) = b.weight() {
        write(
            &dir,
            pick("blkio.weight", "blkio.bfq.weight"),
            &w.to_string(),
        )?;
    }
    if let Some(w) = b.leaf_weight() {
        write(&dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write(
                &dir,
                pick("blkio.weight_device", "blkio.bfq.weight_device"),
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, list) in throttles {
        for d in list.iter().flatten() {
            write(
                &dir,
                file,
                &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}
