//! The `cgroup` mount inside a container: what /sys/fs/cgroup looks like from inside.
//!
//! - Pure cgroup v2 host: one cgroup2 mount (fresh under a new cgroup namespace, else a bind of
//!   the container's own cgroup directory).
//! - v1 or hybrid host (this one): as runc makes it, a tmpfs holding one mount per v1 hierarchy,
//!   `name=systemd` included and the v2 `unified` hierarchy not; each one read-only when the
//!   cgroup mount is `ro`. The host's cgroup mounts are never changed: new mounts are made in the
//!   container's mount namespace only.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::error::{Error, IoContext, Result, SysContext};
use crate::mounts::{remount, Context, Options};
use crate::safepath;

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

pub fn host_is_unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// A v1 hierarchy mounted on the host.
#[derive(Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Host mount point, e.g. /sys/fs/cgroup/memory.
    pub mountpoint: PathBuf,
    /// Super options without rw/ro, e.g. "memory" or "name=systemd".
    pub options: String,
}

/// The v1 hierarchies of the host, from a mountinfo text.
pub fn v1_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        let (Some("cgroup"), Some(_src), Some(superopts)) = (post.next(), post.next(), post.next())
        else {
            continue;
        };
        let Some(mp) = pre.split_whitespace().nth(4) else {
            continue;
        };
        let options: Vec<&str> = superopts
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect();
        out.push(Hierarchy {
            mountpoint: PathBuf::from(unescape(mp)),
            options: options.join(","),
        });
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\134", "\\")
}

/// This process's cgroup path in the v1 hierarchy with `options`, from /proc/self/cgroup.
pub fn own_path(proc_cgroup: &str, options: &str) -> String {
    let wanted: Vec<&str> = options.split(',').collect();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !ctrls.is_empty() && ctrls.split(',').all(|c| wanted.contains(&c)) {
            return path.to_string();
        }
    }
    "/".into()
}

pub fn mount_cgroupfs(ctx: &Context, dest: &Path, opts: &Options) -> Result<()> {
    let flags = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let proc_cgroup =
        std::fs::read_to_string("/proc/self/cgroup").io("read", "/proc/self/cgroup")?;
    let target = safepath::ensure(ctx.root, dest, true)?;
    if host_is_unified() {
        if ctx.cgroupns {
            return mount(
                Some("cgroup2"),
                &safepath::fd_path(target.as_fd()),
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .sys("mount", format!("cgroup2 on {}", dest.display()));
        }
        let own = proc_cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or("/");
        let src = Path::new("/sys/fs/cgroup").join(own.trim_start_matches('/'));
        return bind_hierarchy(ctx, &src, dest, &target, flags);
    }
    // As runc: the tmpfs holding the hierarchies is always rw,nosuid,nodev,noexec (the
    // mount's own flags go to the binds, which are what `ro` protects), and it and every bind
    // carry the mount's propagation.
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        &safepath::fd_path(target.as_fd()),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .sys("mount", format!("tmpfs on {}", dest.display()))?;
    propagate(&safepath::ensure(ctx.root, dest, true)?, dest, opts)?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").io("read", "/proc/self/mountinfo")?;
    for h in v1_hierarchies(&mountinfo) {
        let Some(name) = h.mountpoint.file_name() else {
            continue;
        };
        let sub = dest.join(name);
        let sub_fd = safepath::ensure(ctx.root, &sub, true)?;
        if ctx.cgroupns {
            mount(
                Some("cgroup"),
                &safepath::fd_path(sub_fd.as_fd()),
                Some("cgroup"),
                flags,
                Some(h.options.as_str()),
            )
            .sys(
                "mount",
                format!("cgroup {} on {}", h.options, sub.display()),
            )?;
        } else {
            let own = own_path(&proc_cgroup, &h.options);
            let src = h.mountpoint.join(own.trim_start_matches('/'));
            bind_hierarchy(ctx, &src, &sub, &sub_fd, flags)?;
        }
        // A fresh O_PATH: the one above names the directory beneath the new mount.
        let mounted = safepath::ensure(ctx.root, &sub, true)?;
        propagate(&mounted, &sub, opts)?;
    }
    Ok(())
}

/// The mount's propagation words (`rshared`, `slave`, ...) applied to the mount at `fd`.
fn propagate(fd: &std::os::fd::OwnedFd, dest: &Path, opts: &Options) -> Result<()> {
    for flag in &opts.propagation {
        mount(
            None::<&str>,
            &safepath::fd_path(fd.as_fd()),
            None::<&str>,
            *flag,
            None::<&str>,
        )
        .sys("mount", format!("propagation of {}", dest.display()))?;
    }
    Ok(())
}

fn bind_hierarchy(
    ctx: &Context,
    src: &Path,
    dest: &Path,
    target: &std::os::fd::OwnedFd,
    flags: MsFlags,
) -> Result<()> {
    if !src.is_dir() {
        return Err(Error::Init(format!(
            "cgroup mount: {} does not exist",
            src.display()
        )));
    }
    mount(
        Some(src),
        &safepath::fd_path(target.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .sys(
        "mount",
        format!("bind {} on {}", src.display(), dest.display()),
    )?;
    remount(ctx, dest, flags, MsFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hierarchies_skip_unified_and_keep_named() {
        let hs = v1_hierarchies(MOUNTINFO);
        let names: Vec<_> = hs.iter().map(|h| h.options.as_str()).collect();
        assert_eq!(names, vec!["cpu", "memory", "name=systemd"]);
        assert_eq!(hs[2].mountpoint, PathBuf::from("/sys/fs/cgroup/systemd"));
    }

    #[test]
    fn own_path_matches_controllers() {
        let pc = "5:memory:/a/b\n4:cpu,cpuacct:/c\n1:name=systemd:/s\n0::/u\n";
        assert_eq!(own_path(pc, "memory"), "/a/b");
        assert_eq!(own_path(pc, "cpu,cpuacct"), "/c");
        assert_eq!(own_path(pc, "name=systemd"), "/s");
        assert_eq!(own_path(pc, "pids"), "/");
    }
}
