//! The `cgroup` mount inside a container: what /sys/fs/cgroup looks like from inside.
//!
//! - Pure cgroup v2 host: one cgroup2 mount (fresh under a new cgroup namespace, else a bind of
//!   the container's own cgroup directory).
//! - v1 or hybrid host (this one): as runc makes it, a tmpfs holding one mount per v1 hierarchy,
//!   `name=systemd` included and the v2 `unified` hierarchy not; each one read-only when the
//!   cgroup mount is `ro`. The host's cgroup mounts are never changed: new mounts are made in the
//!   container's mount namespace only.

use std::os::fd::AsFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::{propagate, remount, Context, Options};
use crate::error::{Error, IoContext, Result, SysContext};
use crate::policy::cgroups::hierarchy::{host_is_unified, own_path, v1_hierarchies};
use crate::sys::safepath;

pub fn mount_cgroupfs(ctx: &Context, dest: &Path, opts: &Options) -> Result<()> {
    let flags = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let proc_cgroup =
        std::fs::read_to_string("/proc/self/cgroup").io("read", "/proc/self/cgroup")?;
    let target = safepath::ensure(ctx.root, dest, true)?;
    if host_is_unified() {
        if ctx.cgroupns {
            let res = mount(
                Some("cgroup2"),
                &safepath::fd_path(target.as_fd()),
                Some("cgroup2"),
                flags,
                None::<&str>,
            );
            if !refused_in_userns(ctx, res)
                .sys("mount", format!("cgroup2 on {}", dest.display()))?
            {
                return Ok(());
            }
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
    propagate(safepath::ensure(ctx.root, dest, true)?.as_fd(), dest, opts)?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").io("read", "/proc/self/mountinfo")?;
    for h in v1_hierarchies(&mountinfo) {
        let Some(name) = h.mountpoint.file_name() else {
            continue;
        };
        let sub = dest.join(name);
        let sub_fd = safepath::ensure(ctx.root, &sub, true)?;
        let fresh = ctx.cgroupns && {
            let res = mount(
                Some("cgroup"),
                &safepath::fd_path(sub_fd.as_fd()),
                Some("cgroup"),
                flags,
                Some(h.options.as_str()),
            );
            !refused_in_userns(ctx, res).sys(
                "mount",
                format!("cgroup {} on {}", h.options, sub.display()),
            )?
        };
        if !fresh {
            let own = own_path(&proc_cgroup, &h.options);
            let src = h.mountpoint.join(own.trim_start_matches('/'));
            bind_hierarchy(ctx, &src, &sub, &sub_fd, flags)?;
        }
        // A fresh O_PATH: the one above names the directory beneath the new mount.
        let mounted = safepath::ensure(ctx.root, &sub, true)?;
        propagate(mounted.as_fd(), &sub, opts)?;
    }
    Ok(())
}

/// Ok(true) when a fresh cgroup mount was refused because the container's user namespace
/// does not own the hierarchy (rootless: v1 hierarchies, or a cgroup2 the user was not
/// delegated): the caller then binds its own cgroup directory instead, as runc does.
fn refused_in_userns(ctx: &Context, res: nix::Result<()>) -> nix::Result<bool> {
    match res {
        Ok(()) => Ok(false),
        Err(nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY) if ctx.userns => {
            tracing::debug!("cgroup mount refused in the user namespace: binding instead");
            Ok(true)
        }
        Err(e) => Err(e),
    }
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
