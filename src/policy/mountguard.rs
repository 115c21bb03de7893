//! Where a mount of `mounts[]` may land (the CVE-2019-16884 class): procfs and sysfs only on
//! ordinary directories reached without a symlink, and nothing else inside the container's
//! /proc — a bind or tmpfs over /proc/self/attr or /proc/sys would blind the LSM label writes
//! and sysctls that go through it. Exceptions, as runc: a procfs itself (fresh, or a bind of
//! one) on /proc, and the files lxcfs emulates.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{fstat, SFlag};

use crate::error::{Error, Result};
use crate::sys::safepath;

/// Paths under /proc that may be bind-mounted over (lxcfs's, and CRIU's ns_last_pid: newer runc).
const LXCFS_PATHS: &[&str] = &[
    "cpuinfo",
    "diskstats",
    "meminfo",
    "stat",
    "swaps",
    "uptime",
    "loadavg",
    "slabinfo",
    "net/dev",
    "sys/kernel/ns_last_pid",
];

fn field(index: usize) -> String {
    format!("mounts[{index}].destination")
}

/// Before a procfs or sysfs mount at `dest` is created: `dest` must not be reached through a
/// symlink and, if it exists, must be a directory (runc refuses the same, newer runc says so
/// for every component, not only the last).
pub fn check_special(root: BorrowedFd, index: usize, dest: &Path, typ: &str) -> Result<()> {
    match safepath::open_path_no_symlinks(root, dest) {
        Ok(fd) => {
            let st = fstat(fd.as_raw_fd())
                .map_err(|e| Error::sys("fstat", dest.display().to_string(), e))?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
                return Err(Error::spec(
                    field(index),
                    format!(
                        "{}: {typ} must be mounted on an ordinary directory, this is not one",
                        dest.display()
                    ),
                ));
            }
            Ok(())
        }
        Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ELOOP) | Err(Errno::EXDEV) => Err(Error::spec(
            field(index),
            format!(
                "{} is a symlink (or reached through one) in the rootfs: {typ} must be mounted \
                 on an ordinary directory",
                dest.display()
            ),
        )),
        Err(e) => Err(Error::sys("openat2", dest.display().to_string(), e)),
    }
}

/// The mount target of a procfs or sysfs at `dest`, created as a directory and then reopened
/// without following a symlink, so the mount lands exactly on the path named.
pub fn special_target(root: BorrowedFd, index: usize, dest: &Path, typ: &str) -> Result<OwnedFd> {
    check_special(root, index, dest, typ)?;
    drop(safepath::ensure(root, dest, true)?);
    safepath::open_path_no_symlinks(root, dest).map_err(|e| {
        Error::spec(
            field(index),
            format!(
                "{}: {typ} must be mounted on an ordinary directory: {e}",
                dest.display()
            ),
        )
    })
}

/// After `dest` was resolved to `target` (symlinks followed inside the root): refuses a target
/// inside the rootfs's /proc, except /proc itself for a bind of a procfs (`source_is_procfs`)
/// and the lxcfs files.
pub fn check_not_in_proc(
    root: BorrowedFd,
    index: usize,
    dest: &Path,
    target: BorrowedFd,
    source_is_procfs: bool,
) -> Result<()> {
    let Some(inside) = path_in_root(root, target)? else {
        return Ok(());
    };
    match proc_rule(&inside, source_is_procfs) {
        Ok(()) => Ok(()),
        Err(why) => Err(Error::spec(
            field(index),
            format!(
                "{} resolves to {} in the rootfs: {why}",
                dest.display(),
                inside.display()
            ),
        )),
    }
}

/// Whether `source` is on a procfs (a bind of /proc onto /proc is allowed, as newer runc).
pub fn is_procfs(source: &Path) -> bool {
    use nix::sys::statfs::{statfs, PROC_SUPER_MAGIC};
    statfs(source).is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC)
}

/// `target`'s path as seen from the rootfs (`/proc/sys`), or None if it is not under it.
fn path_in_root(root: BorrowedFd, target: BorrowedFd) -> Result<Option<PathBuf>> {
    let link = |fd: BorrowedFd| {
        let p = safepath::fd_path(fd.as_fd());
        std::fs::read_link(&p).map_err(|e| Error::io("readlink", p, e))
    };
    let (root, target) = (link(root)?, link(target)?);
    Ok(target
        .strip_prefix(&root)
        .ok()
        .map(|rel| Path::new("/").join(rel)))
}

/// The rule itself, on a path inside the rootfs.
fn proc_rule(inside: &Path, source_is_procfs: bool) -> std::result::Result<(), &'static str> {
    let Ok(rel) = inside.strip_prefix("/proc") else {
        return Ok(());
    };
    if rel.as_os_str().is_empty() {
        return if source_is_procfs {
            Ok(())
        } else {
            Err("only a procfs may be mounted on /proc")
        };
    }
    if LXCFS_PATHS.iter().any(|p| rel == Path::new(p)) {
        return Ok(());
    }
    Err("nothing but procfs may be mounted inside /proc (only lxcfs's files may be bound there)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_proc_is_fine() {
        for p in ["/", "/data", "/procx", "/sys/fs/cgroup", "/a/proc"] {
            proc_rule(Path::new(p), false).unwrap();
        }
    }

    #[test]
    fn inside_proc_only_lxcfs_files() {
        for p in ["/proc/uptime", "/proc/meminfo", "/proc/net/dev"] {
            proc_rule(Path::new(p), false).unwrap();
        }
        for p in [
            "/proc/sys",
            "/proc/self/attr",
            "/proc/1/attr/exec",
            "/proc/net",
        ] {
            assert!(proc_rule(Path::new(p), false).is_err(), "{p}");
        }
    }

    #[test]
    fn proc_itself_only_for_procfs() {
        assert!(proc_rule(Path::new("/proc"), false).is_err());
        proc_rule(Path::new("/proc"), true).unwrap();
    }
}
