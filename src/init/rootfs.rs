//! The container's filesystem view, in the order the kernel needs it:
//! propagation -> bind the rootfs onto itself -> `mounts[]` -> /dev nodes and links ->
//! (createContainer hooks, by the caller) -> pivot_root -> masked and read-only paths ->
//! read-only root.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, SFlag};

use crate::error::{Error, Result, SysContext};
use crate::init::mounts::{self, MountAttr, MOUNT_ATTR_RDONLY};
use crate::policy::devices;
use crate::spec::Bundle;
use crate::sys::safepath;

/// Everything before pivot_root. Returns an O_PATH fd of the rootfs.
pub fn prepare(
    bundle: &Bundle,
    userns: bool,
    cgroupns: bool,
    sources: &[(usize, OwnedFd)],
) -> Result<OwnedFd> {
    let linux = bundle.spec.linux().as_ref();
    let requested = requested_propagation(bundle)?;
    // The whole tree first: what the spec asks for (rshared keeps volumes in their host peer
    // groups, for bidirectional mounts), by default rslave, so no mount event of ours travels
    // back to the host. Unbindable cannot be bind-mounted: it is applied after pivot_root.
    let first = match requested {
        Some(f) if !f.contains(MsFlags::MS_UNBINDABLE) => f,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, first, None::<&str>).sys("mount", "propagation of /")?;
    // pivot_root refuses a shared new root, a new root whose parent is shared, and a shared
    // current root: those become private (only in our namespace, where all but the new root
    // is detached after the pivot), and nothing else, so the new root keeps being a slave of
    // the host where it was one (runc's rule). The requested propagation of the new root is
    // applied after the pivot. The bind below copies the mount holding the rootfs, private by
    // then if it was shared, so the new root is never shared: mountinfo is read once.
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    make_private_if_shared(&info, &bundle.rootfs, Within::Containing)?;
    make_private_if_shared(&info, Path::new("/"), Within::At)?;
    // The host's own view (`ward sandbox`): the whole tree of `/` bound onto the (empty)
    // rootfs instead of the rootfs onto itself, read-only all the way down when root.readonly
    // asks (before the config's mounts, so its writable binds stay writable on top).
    let host_view = crate::spec::bundle::host_view(&bundle.spec);
    let source = if host_view {
        Path::new("/")
    } else {
        bundle.rootfs.as_path()
    };
    mount(
        Some(source),
        &bundle.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .sys("mount", format!("bind rootfs {}", source.display()))?;
    let root = safepath::open_root(&bundle.rootfs)?;
    if host_view && bundle.spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        mounts::setattr(root.as_fd(), &attr, true, &bundle.rootfs)?;
    }
    let ctx = mounts::Context {
        root: root.as_fd(),
        bundle: &bundle.dir,
        userns,
        cgroupns,
        sources,
    };
    for (i, m) in bundle.spec.mounts().iter().flatten().enumerate() {
        mounts::mount_entry(&ctx, i, m)?;
    }
    if !devices::dev_is_bind(&bundle.spec) {
        let mut nodes = devices::default_nodes();
        for (i, d) in linux
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let node = devices::node_from_spec(i, d)?;
            nodes.retain(|n| n.path != node.path);
            nodes.push(node);
        }
        devices::create_nodes(root.as_fd(), &nodes, userns)?;
        devices::create_links(root.as_fd())?;
    }
    Ok(root)
}

/// Makes the rootfs `/`. With `no_pivot` (for ramfs roots where pivot_root fails) the rootfs is
/// moved over `/` and chroot'ed into instead.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).sys("chdir", rootfs.display().to_string())?;
    if no_pivot {
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .sys("mount", "move rootfs to /")?;
        nix::unistd::chroot(".").sys("chroot", rootfs.display().to_string())?;
    } else {
        // pivot_root(".", ".") stacks the old root on top of the new one; detaching it then
        // leaves only the new root, with no directory of the host to mount the old root on.
        let old_root = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .sys("open", "/ (the old root)")?;
        // SAFETY: open just returned this fd; we own it.
        let old_root = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(old_root) };
        nix::unistd::pivot_root(".", ".").sys("pivot_root", rootfs.display().to_string())?;
        // "." must be the old root (stacked on the new one), not the new root our cwd is in:
        // else the slave below turns every shared mount of the container into a private one.
        nix::unistd::fchdir(old_root.as_raw_fd()).sys("fchdir", "the old root")?;
        drop(old_root);
        // The old root's mounts may still be shared with the host: make the unmount local.
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .sys("mount", "make old root slave")?;
        umount2(".", MntFlags::MNT_DETACH).sys("umount2", "old root")?;
    }
    nix::unistd::chdir("/").sys("chdir", "/")
}

/// Makes the rootfs `/` without a mount namespace of the container's own: a chroot, as runc
/// does, since pivot_root or a move would change the mount table the caller shares.
pub fn chroot(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).sys("chdir", rootfs.display().to_string())?;
    nix::unistd::chroot(".").sys("chroot", rootfs.display().to_string())?;
    nix::unistd::chdir("/").sys("chdir", "/")
}

/// Re-applies a shared/slave/private `rootfsPropagation` to the new `/`.
pub fn apply_root_propagation(bundle: &Bundle) -> Result<()> {
    // Applied to the new root now, as newer runc does (runc 1.1 left a requested `shared` root
    // private).
    if let Some(flag) = requested_propagation(bundle)? {
        mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
            .sys("mount", format!("rootfsPropagation {flag:?}"))?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Within {
    /// The mount on top at the path itself.
    At,
    /// The mount the path lies in (the path's own mount, or the one below it).
    Containing,
}

/// Makes one mount private (not recursively) if `info` (our mountinfo) shows it shared.
fn make_private_if_shared(info: &str, path: &Path, within: Within) -> Result<()> {
    let Some((point, shared)) = mount_of(info, path, within) else {
        return Ok(());
    };
    if shared {
        mount(
            None::<&str>,
            &point,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .sys("mount", format!("make {} private", point.display()))?;
    }
    Ok(())
}

/// From a mountinfo text: the mount point holding `path` (the top mount where several are
/// stacked) and whether that mount is shared.
fn mount_of(info: &str, path: &Path, within: Within) -> Option<(std::path::PathBuf, bool)> {
    let mut best: Option<(std::path::PathBuf, bool)> = None;
    for line in info.lines() {
        let (left, _) = line.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        let point = std::path::PathBuf::from(unescape_mountinfo(fields.get(4)?));
        let fits = match within {
            Within::At => point == path,
            Within::Containing => path.starts_with(&point),
        };
        let longer = best
            .as_ref()
            .is_none_or(|(b, _)| point.as_os_str().len() >= b.as_os_str().len());
        if fits && longer {
            let shared = fields.iter().skip(6).any(|f| f.starts_with("shared:"));
            best = Some((point, shared));
        }
    }
    best
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (b[i], octal) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// linux.rootfsPropagation as mount flags (`r*` words recursive), `None` when not set.
fn requested_propagation(bundle: &Bundle) -> Result<Option<MsFlags>> {
    match bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => Ok(None),
        Some(word) => mounts::propagation_flag(word).map(Some).ok_or_else(|| {
            Error::spec("linux.rootfsPropagation", format!("unknown mode {word:?}"))
        }),
    }
}

/// An O_PATH fd of `p` inside `root` (never through a final symlink) and its file type; `None`
/// when it does not exist (the spec's lists name paths that may not be there).
fn existing(root: BorrowedFd, p: &str) -> Result<Option<(OwnedFd, SFlag)>> {
    let fd = match safepath::open_path_nofollow(root, Path::new(p)) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(Error::sys("openat2", p, e)),
    };
    let st = fstat(fd.as_raw_fd()).sys("fstat", p)?;
    Ok(Some((
        fd,
        SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT),
    )))
}

/// maskedPaths: a directory gets an empty read-only tmpfs, anything else /dev/null bound on top.
/// Runs after pivot_root, so `/` is the container's root.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    let root = safepath::open_root(Path::new("/"))?;
    let mut null: Option<OwnedFd> = None;
    for p in paths {
        let Some((fd, kind)) = existing(root.as_fd(), p)? else {
            continue;
        };
        let target = safepath::fd_path(fd.as_fd());
        if kind == SFlag::S_IFLNK {
            // A symlink exposes nothing by itself; what it points to is resolved in the root.
            tracing::debug!(path = %p, "masked path is a symlink: left alone");
        } else if kind == SFlag::S_IFDIR {
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .sys("mount", format!("mask {p}"))?;
        } else {
            if null.is_none() {
                null = Some(verified_dev_null(root.as_fd())?);
            }
            let null = null.as_ref().map(|f| safepath::fd_path(f.as_fd()));
            mount(
                null.as_deref(),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .sys("mount", format!("mask {p}"))?;
        }
    }
    Ok(())
}

/// The container's /dev/null, checked to really be the null device (1:3) and not something the
/// image or a process put there (CVE-2025-31133).
fn verified_dev_null(root: BorrowedFd) -> Result<OwnedFd> {
    let fd =
        safepath::open_path_nofollow(root, Path::new("/dev/null")).sys("openat2", "/dev/null")?;
    let st = fstat(fd.as_raw_fd()).sys("fstat", "/dev/null")?;
    let is_chr = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_chr || libc::major(st.st_rdev) != 1 || libc::minor(st.st_rdev) != 3 {
        return Err(Error::Init(
            "/dev/null in the container is not the null device (1:3): refusing to mask with it"
                .into(),
        ));
    }
    Ok(fd)
}

/// readonlyPaths: bind each path onto itself, then make it (and mounts below it) read-only.
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    let root = safepath::open_root(Path::new("/"))?;
    for p in paths {
        let path = Path::new(p);
        let Some((fd, kind)) = existing(root.as_fd(), p)? else {
            continue;
        };
        if kind == SFlag::S_IFLNK {
            tracing::debug!(path = %p, "read-only path is a symlink: left alone");
            continue;
        }
        let target = safepath::fd_path(fd.as_fd());
        mount(
            Some(&target),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .sys("mount", format!("bind readonly path {p}"))?;
        let top = safepath::open_path_nofollow(root.as_fd(), path).sys("openat2", p.clone())?;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        mounts::setattr(top.as_fd(), &attr, true, path)?;
    }
    Ok(())
}

/// root.readonly: the root mount itself becomes read-only (mounts on top of it keep theirs).
pub fn make_root_readonly() -> Result<()> {
    let root = safepath::open_root(Path::new("/"))?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    mounts::setattr(root.as_fd(), &attr, false, Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
        40 27 0:33 / /tmp/a\\040b rw master:3 - tmpfs tmpfs rw\n\
        41 40 0:34 / /tmp/a\\040b/c rw shared:7 - tmpfs tmpfs rw\n";

    #[test]
    fn finds_the_mount_holding_a_path_and_its_propagation() {
        let of = |p: &str, w| mount_of(INFO, Path::new(p), w);
        assert_eq!(
            of("/tmp/a b/x", Within::Containing),
            Some(("/tmp/a b".into(), false))
        );
        assert_eq!(
            of("/tmp/a b/c/d", Within::Containing),
            Some(("/tmp/a b/c".into(), true))
        );
        assert_eq!(of("/tmp/ab", Within::Containing), Some(("/".into(), true)));
        assert_eq!(of("/", Within::At), Some(("/".into(), true)));
        assert_eq!(of("/tmp", Within::At), None);
    }
}
