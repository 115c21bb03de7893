//! cgroup v2: one directory, limits in its interface files, device rules as eBPF.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::OFlag;
use oci_spec::runtime::LinuxResources;

use super::devices::attach;
use super::{join, write, Place};
use crate::error::{Error, IoContext, Result, SysContext};

/// The container's directory below the v2 `root` (a relative path is below the creating
/// ward's cgroup when the place records it, else below this process's own).
pub fn dir(root: &Path, at: Place) -> PathBuf {
    if at.path.starts_with('/') {
        return join(root, "/", at.path);
    }
    let own_of = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))
    };
    let own = match at.base {
        Some(base) => own_of(base),
        None => std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|s| own_of(&s)),
    }
    .unwrap_or_else(|| "/".into());
    join(root, &own, at.path)
}

/// Opens the directory for CLONE_INTO_CGROUP and for attaching programs.
pub fn open_dir(dir: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys("open", dir.display().to_string())?;
    // SAFETY: open just returned this fd; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Creates the directory; on a pure v2 host, enables in every ancestor the controllers the
/// limits need (a controller the kernel lacks shows up as a missing file when applying).
pub fn create(root: &Path, dir: &Path, enable: bool, res: Option<&LinuxResources>) -> Result<()> {
    std::fs::create_dir_all(dir).io("create cgroup", dir)?;
    if !enable || res.is_none() {
        return Ok(());
    }
    let available = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<&str> = [
        "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc",
    ]
    .into_iter()
    .filter(|c| available.split_whitespace().any(|a| a == *c))
    .collect();
    let mut level = root.to_path_buf();
    for part in dir.strip_prefix(root).unwrap_or(dir).components() {
        for c in &wanted {
            // Fails where processes live in a non-root level ("no internal processes"): the
            // limit file is then missing, and applying it reports that precisely.
            let _ = std::fs::write(level.join("cgroup.subtree_control"), format!("+{c}"));
        }
        level.push(part);
    }
    Ok(())
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// runc/crun's conversion of cgroup v1 cpu shares (2..262144, default 1024) to cgroup v2
/// cpu.weight (1..10000, default 100): a quadratic in log2 that maps 1024 to exactly 100.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// runc's conversion of a v1 memory+swap limit to v2's swap-only memory.swap.max.
pub fn swap_max(swap: i64, limit: Option<i64>) -> Result<Option<String>> {
    let field = "linux.resources.memory.swap";
    let limit = limit.unwrap_or(0);
    if limit == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    if swap == -1 {
        return Ok(Some("max".into()));
    }
    if swap == 0 {
        return Ok(None);
    }
    if limit == 0 || limit == -1 {
        return Err(Error::spec(field, "a swap limit needs a memory limit"));
    }
    if swap < limit {
        return Err(Error::spec(
            field,
            "memory+swap must be >= the memory limit",
        ));
    }
    Ok(Some((swap - limit).to_string()))
}

pub fn apply(dir: &Path, res: &LinuxResources, rules: &[super::Rule], update: bool) -> Result<()> {
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit() {
            if update && l > 0 {
                // checkBeforeUpdate: never set a limit below what is in use (it would OOM).
                let current: i64 = std::fs::read_to_string(dir.join("memory.current"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                if l < current {
                    return Err(Error::spec(
                        "linux.resources.memory.limit",
                        format!("{l} is below the current usage {current}"),
                    ));
                }
            }
        }
        if let Some(s) = m.swap() {
            if let Some(v) = swap_max(s, m.limit())? {
                write(dir, "memory.swap.max", &v)?;
            }
        }
        if let Some(l) = m.limit() {
            write(dir, "memory.max", &max_or(l))?;
        }
        if let Some(r) = m.reservation() {
            write(dir, "memory.low", &max_or(r))?;
        }
        if m.disable_oom_killer() == Some(true) {
            tracing::warn!("linux.resources.memory.disableOOMKiller is not supported on cgroup v2: ignored (as by runc)");
        }
        if m.swappiness().is_some() || m.kernel().is_some() || m.kernel_tcp().is_some() {
            tracing::warn!("linux.resources.memory swappiness/kernel/kernelTCP have no cgroup v2 file: ignored (as by runc)");
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares().filter(|s| *s > 0) {
            write(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
        }
        if c.quota().is_some() || c.period().is_some() {
            let quota = c.quota().map(max_or).unwrap_or_else(|| "max".into());
            let v = match c.period() {
                Some(p) => format!("{quota} {p}"),
                None => quota,
            };
            write(dir, "cpu.max", &v)?;
        }
        if let Some(b) = c.burst() {
            write(dir, "cpu.max.burst", &b.to_string())?;
        }
        if let Some(i) = c.idle() {
            write(dir, "cpu.idle", &i.to_string())?;
        }
        if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
            return Err(Error::spec(
                "linux.resources.cpu.realtimeRuntime",
                "real-time scheduling limits do not exist on cgroup v2",
            ));
        }
        if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            write(dir, "cpuset.cpus", v)?;
        }
        if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            write(dir, "cpuset.mems", v)?;
        }
    }
    if let Some(p) = res.pids() {
        write(
            dir,
            "pids.max",
            &if p.limit() <= 0 {
                "max".into()
            } else {
                p.limit().to_string()
            },
        )?;
    }
    if let Some(b) = res.block_io() {
        apply_io(dir, b)?;
    }
    for h in res.hugepage_limits().iter().flatten() {
        write(
            dir,
            &format!("hugetlb.{}.max", h.page_size()),
            &h.limit().to_string(),
        )?;
    }
    for (dev, r) in res.rdma().iter().flatten() {
        let mut parts = Vec::new();
        if let Some(h) = r.hca_handles() {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = r.hca_objects() {
            parts.push(format!("hca_object={o}"));
        }
        write(dir, "rdma.max", &format!("{dev} {}", parts.join(" ")))?;
    }
    for (key, value) in res.unified().iter().flatten() {
        if key.contains('/') || key.starts_with('.') {
            return Err(Error::spec(
                format!("linux.resources.unified.{key}"),
                "not a cgroup interface file name",
            ));
        }
        write(dir, key, value)?;
    }
    if !rules.is_empty() {
        let fd = open_dir(dir)?;
        attach(fd.as_fd(), rules)?;
    }
    Ok(())
}

fn apply_io(dir: &Path, b: &oci_spec::runtime::LinuxBlockIo) -> Result<()> {
    // blkio weight 10..1000 -> io.weight 1..10000 (runc's linear conversion).
    let conv = |w: u16| 1 + (w.saturating_sub(10) as u64) * 9999 / 990;
    if let Some(w) = b.weight() {
        write(dir, "io.weight", &format!("default {}", conv(w)))?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write(
                dir,
                "io.weight",
                &format!("{}:{} {}", d.major(), d.minor(), conv(w)),
            )?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for d in list.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            write(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    for _ in 0..2000 {
        if is_frozen(dir) == frozen {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(Error::BadState(format!(
        "cgroup {} did not reach frozen={frozen}",
        dir.display()
    )))
}

/// Frozen (by itself or an ancestor), or asked to be (cgroup.freeze 1) and still on its way.
pub fn is_paused(dir: &Path) -> bool {
    is_frozen(dir)
        || crate::sys::read_small(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
}

pub fn is_frozen(dir: &Path) -> bool {
    crate::sys::read_small(dir.join("cgroup.events"))
        .map(|s| s.lines().any(|l| l.trim() == "frozen 1"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc_and_crun() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert!(shares_to_weight(512) < 100 && shares_to_weight(2048) > 100);
    }

    #[test]
    fn swap_is_memory_plus_swap_like_runc() {
        assert_eq!(
            swap_max(64 << 20, Some(32 << 20)).unwrap().as_deref(),
            Some("33554432")
        );
        assert_eq!(
            swap_max(-1, Some(32 << 20)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(swap_max(0, Some(32 << 20)).unwrap(), None);
        assert!(swap_max(16 << 20, Some(32 << 20)).is_err());
        assert!(swap_max(16 << 20, None).is_err());
    }
}
