//! One OCI `mounts[]` entry onto the rootfs: option parsing and the mount itself.
//!
//! Every destination is resolved inside the rootfs by `safepath` and mounted through
//! `/proc/self/fd/<fd>`, so a symlink in the image cannot redirect a mount to the host.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use crate::error::{Error, Result, SysContext};
use crate::policy::mountguard;
use crate::sys::safepath;

/// The `cgroup` mount type (/sys/fs/cgroup inside the container).
mod cgroupfs;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// Parsed `options` of a mount.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub flags: MsFlags,
    /// Flags explicitly cleared (`rw`, `suid`, ...): matter for bind remounts.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub recursive: MountAttr,
    pub data: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            recursive: MountAttr::default(),
            data: Vec::new(),
        }
    }
}

impl Options {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

pub fn parse_options(opts: &[String]) -> Result<Options> {
    let mut o = Options::default();
    for opt in opts {
        let (clear, flag) = match opt.as_str() {
            "defaults" => (false, MsFlags::empty()),
            "ro" => (false, MsFlags::MS_RDONLY),
            "rw" => (true, MsFlags::MS_RDONLY),
            "suid" => (true, MsFlags::MS_NOSUID),
            "nosuid" => (false, MsFlags::MS_NOSUID),
            "dev" => (true, MsFlags::MS_NODEV),
            "nodev" => (false, MsFlags::MS_NODEV),
            "exec" => (true, MsFlags::MS_NOEXEC),
            "noexec" => (false, MsFlags::MS_NOEXEC),
            "sync" => (false, MsFlags::MS_SYNCHRONOUS),
            "async" => (true, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (false, MsFlags::MS_DIRSYNC),
            "remount" => (false, MsFlags::MS_REMOUNT),
            "mand" => (false, MsFlags::MS_MANDLOCK),
            "nomand" => (true, MsFlags::MS_MANDLOCK),
            "atime" => (true, MsFlags::MS_NOATIME),
            "noatime" => (false, MsFlags::MS_NOATIME),
            "diratime" => (true, MsFlags::MS_NODIRATIME),
            "nodiratime" => (false, MsFlags::MS_NODIRATIME),
            "bind" => (false, MsFlags::MS_BIND),
            "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
            "relatime" => (false, MsFlags::MS_RELATIME),
            "norelatime" => (true, MsFlags::MS_RELATIME),
            "strictatime" => (false, MsFlags::MS_STRICTATIME),
            "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
            "nosymfollow" => (false, MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)),
            "symfollow" => (true, MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)),
            "lazytime" => (false, MsFlags::MS_LAZYTIME),
            "nolazytime" => (true, MsFlags::MS_LAZYTIME),
            "acl" => (false, MsFlags::MS_POSIXACL),
            "noacl" => (true, MsFlags::MS_POSIXACL),
            "iversion" => (false, MsFlags::MS_I_VERSION),
            "noiversion" => (true, MsFlags::MS_I_VERSION),
            "silent" => (false, MsFlags::MS_SILENT),
            "loud" => (true, MsFlags::MS_SILENT),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.propagation
                    .push(propagation_flag(opt).unwrap_or(MsFlags::MS_PRIVATE));
                continue;
            }
            "idmap" | "ridmap" | "tmpcopyup" => {
                return Err(Error::Unsupported(format!("mount option {opt:?}")))
            }
            other => {
                if let Some((set, clr)) = recursive_attr(other) {
                    o.recursive.attr_set |= set;
                    o.recursive.attr_clr |= clr;
                } else {
                    o.data.push(other.to_string());
                }
                continue;
            }
        };
        if clear {
            o.flags.remove(flag);
            o.cleared.insert(flag);
        } else {
            o.flags.insert(flag);
        }
    }
    Ok(o)
}

/// MS_* propagation flag for a propagation word (`rprivate`, `slave`, ...).
pub fn propagation_flag(word: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match word {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

/// (attr_set, attr_clr) of the recursive options that `ward features` lists (mount_setattr with
/// AT_RECURSIVE).
fn recursive_attr(opt: &str) -> Option<(u64, u64)> {
    Some(match opt {
        "rro" => (MOUNT_ATTR_RDONLY, 0),
        "rrw" => (0, MOUNT_ATTR_RDONLY),
        "rnosuid" => (MOUNT_ATTR_NOSUID, 0),
        "rsuid" => (0, MOUNT_ATTR_NOSUID),
        "rnodev" => (MOUNT_ATTR_NODEV, 0),
        "rdev" => (0, MOUNT_ATTR_NODEV),
        "rnoexec" => (MOUNT_ATTR_NOEXEC, 0),
        "rexec" => (0, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => (0, MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (MOUNT_ATTR_RELATIME, MOUNT_ATTR_ATIME_MASK),
        "rnorelatime" => (0, MOUNT_ATTR_ATIME_MASK),
        "rnoatime" => (MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME_MASK),
        "ratime" => (0, MOUNT_ATTR_NOATIME),
        "rstrictatime" => (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_ATIME_MASK),
        "rnostrictatime" => (0, MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// The recursive option names, for `ward features`.
pub const RECURSIVE_OPTIONS: &[&str] = &[
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
];

/// mount_setattr(2) on the mount at `fd`.
pub fn setattr(fd: BorrowedFd, attr: &MountAttr, recursive: bool, what: &Path) -> Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` points to a live
    // `struct mount_attr` whose size we pass; the kernel only reads it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc)
        .map(drop)
        .sys("mount_setattr", what.display().to_string())
}

/// What a mount needs from its surroundings.
pub struct Context<'a> {
    pub root: BorrowedFd<'a>,
    pub bundle: &'a Path,
    /// The container has a new user namespace: some flags of bind sources are locked.
    pub userns: bool,
    /// The container has a new cgroup namespace: cgroup filesystems can be mounted fresh.
    pub cgroupns: bool,
    /// Bind sources opened by `ward create` outside the user namespace, by mount index.
    pub sources: &'a [(usize, std::os::fd::OwnedFd)],
}

/// For a container in a user namespace: the sources of its bind mounts, opened (O_PATH) by the
/// runtime, still the host's root, inside the container's new mount namespace, so a source
/// behind a directory the container's root cannot enter still mounts (runc's approach). The
/// caller must be single-threaded (setns into a mount namespace); its cwd is restored.
pub fn open_bind_sources(
    init_pid: i32,
    bundle: &crate::spec::Bundle,
) -> Result<Vec<(usize, std::os::fd::OwnedFd)>> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    use std::os::fd::FromRawFd;
    let wanted: Vec<(usize, PathBuf)> = bundle
        .spec
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, m)| {
            let opts = parse_options(m.options().as_deref().unwrap_or_default()).ok()?;
            let bind = m.typ().as_deref() == Some("bind") || opts.is_bind();
            let source = m.source().as_ref().filter(|_| bind)?;
            Some((i, bundle.dir.join(source)))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // SAFETY (both): open(2) just returned these fds; nothing else owns them.
    let owned = |fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    let ours = owned(
        open(
            "/proc/self/ns/mnt",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .sys("open", "/proc/self/ns/mnt")?,
    );
    let cwd = owned(open(".", flags | OFlag::O_DIRECTORY, Mode::empty()).sys("open", "cwd")?);
    let theirs_path = format!("/proc/{init_pid}/ns/mnt");
    let theirs = owned(
        open(
            theirs_path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .sys("open", theirs_path.clone())?,
    );
    nix::sched::setns(&theirs, nix::sched::CloneFlags::CLONE_NEWNS)
        .sys("setns", "container mount namespace")?;
    // A source that cannot be opened is left to init, whose error names it.
    let fds = wanted
        .into_iter()
        .filter_map(|(i, p)| open(&p, flags, Mode::empty()).ok().map(|fd| (i, owned(fd))))
        .collect();
    let back = nix::sched::setns(&ours, nix::sched::CloneFlags::CLONE_NEWNS)
        .sys("setns", "back to the host mount namespace");
    back?;
    nix::unistd::fchdir(cwd.as_raw_fd()).sys("fchdir", "previous cwd")?;
    Ok(fds)
}

/// Mounts `m` (entry `index` of `mounts`) into the rootfs.
pub fn mount_entry(ctx: &Context, index: usize, m: &Mount) -> Result<()> {
    let opts = parse_options(m.options().as_deref().unwrap_or_default())
        .map_err(|e| Error::spec(format!("mounts[{index}].options"), e.to_string()))?;
    let typ = m.typ().clone().unwrap_or_default();
    let dest = m.destination();
    if typ == "bind" || opts.is_bind() {
        bind(ctx, index, m, &opts)?;
    } else if typ == "cgroup" || typ == "cgroup2" {
        let target = safepath::ensure(ctx.root, dest, true)?;
        mountguard::check_not_in_proc(ctx.root, index, dest, target.as_fd(), false)?;
        drop(target);
        cgroupfs::mount_cgroupfs(ctx, dest, &opts)?;
    } else {
        let target = if typ == "proc" || typ == "sysfs" {
            mountguard::special_target(ctx.root, index, dest, &typ)?
        } else {
            let target = safepath::ensure(ctx.root, dest, true)?;
            mountguard::check_not_in_proc(ctx.root, index, dest, target.as_fd(), false)?;
            target
        };
        let source = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
        let data = opts.data.join(",");
        let flags = opts.flags & !MsFlags::MS_REMOUNT;
        let res = mount(
            Some(&source),
            &safepath::fd_path(target.as_fd()),
            Some(typ.as_str()),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        );
        match res {
            // sysfs cannot be mounted without owning the network namespace (a joined or host
            // netns under a new user namespace): bind the host's /sys, as runc does.
            Err(Errno::EPERM) if typ == "sysfs" => {
                mount(
                    Some("/sys"),
                    &safepath::fd_path(target.as_fd()),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .sys("mount", format!("rbind /sys on {}", dest.display()))?;
                remount(ctx, dest, flags, MsFlags::empty())?;
            }
            // As under runc, no fallback: the host's queues are not the container's to share.
            Err(Errno::EPERM) if typ == "mqueue" && ctx.userns => {
                return Err(Error::spec(
                    format!("mounts[{index}]"),
                    format!(
                        "mqueue on {}: EPERM: a user namespace may mount mqueue only in an ipc \
                         namespace it owns: add {{\"type\": \"ipc\"}} to linux.namespaces",
                        dest.display()
                    ),
                ))
            }
            r => r.sys("mount", format!("{typ} on {}", dest.display()))?,
        }
    }
    finish(ctx, dest, &opts)
}

fn bind(ctx: &Context, index: usize, m: &Mount, opts: &Options) -> Result<()> {
    let dest = m.destination();
    let source = m.source().as_ref().ok_or_else(|| {
        Error::spec(
            format!("mounts[{index}].source"),
            "a bind mount needs a source",
        )
    })?;
    let source = if source.is_absolute() {
        source.clone()
    } else {
        ctx.bundle.join(source)
    };
    let opened = ctx
        .sources
        .iter()
        .find(|(i, _)| *i == index)
        .map(|(_, fd)| fd);
    let is_dir = match opened {
        Some(fd) => nix::sys::stat::fstat(fd.as_raw_fd())
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .sys("fstat", source.display().to_string())?,
        None => std::fs::metadata(&source)
            .map_err(|e| {
                Error::spec(
                    format!("mounts[{index}].source"),
                    format!("{}: {e}", source.display()),
                )
            })?
            .is_dir(),
    };
    let target = safepath::ensure(ctx.root, dest, is_dir)?;
    let from = opened.map_or_else(|| source.clone(), |fd| safepath::fd_path(fd.as_fd()));
    let procfs = mountguard::is_procfs(&from);
    mountguard::check_not_in_proc(ctx.root, index, dest, target.as_fd(), procfs)?;
    let rec = opts.flags & MsFlags::MS_REC;
    mount(
        Some(&from),
        &safepath::fd_path(target.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND | rec,
        None::<&str>,
    )
    .sys(
        "mount",
        format!("bind {} on {}", source.display(), dest.display()),
    )?;
    let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        remount(ctx, dest, extra, opts.cleared)?;
    }
    Ok(())
}

/// Re-applies per-mount flags to the mount now at `dest` (MS_BIND|MS_REMOUNT). Under a new user
/// namespace, flags the kernel locked on the source (nosuid, nodev, noexec, ro) are kept, since
/// clearing them fails with EPERM.
pub fn remount(ctx: &Context, dest: &Path, flags: MsFlags, cleared: MsFlags) -> Result<()> {
    let fd =
        safepath::open_path_nofollow(ctx.root, dest).sys("openat2", dest.display().to_string())?;
    let path = safepath::fd_path(fd.as_fd());
    let mut flags = flags;
    if ctx.userns {
        if let Ok(st) = nix::sys::statvfs::fstatvfs(&fd) {
            use nix::sys::statvfs::FsFlags;
            let locked = [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            ];
            for (st_flag, ms) in locked {
                if st.flags().contains(st_flag) && !cleared.contains(ms) {
                    flags |= ms;
                }
            }
        }
    }
    mount(
        None::<&str>,
        &path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
        None::<&str>,
    )
    .sys("mount", format!("remount {}", dest.display()))
}

/// The mount's propagation words (`rshared`, `slave`, ...) applied to the mount at `fd`.
pub(crate) fn propagate(fd: BorrowedFd, dest: &Path, opts: &Options) -> Result<()> {
    for flag in &opts.propagation {
        mount(
            None::<&str>,
            &safepath::fd_path(fd),
            None::<&str>,
            *flag,
            None::<&str>,
        )
        .sys("mount", format!("propagation of {}", dest.display()))?;
    }
    Ok(())
}

/// Propagation and recursive attributes, applied to the mount now at `dest`.
fn finish(ctx: &Context, dest: &Path, opts: &Options) -> Result<()> {
    if opts.propagation.is_empty() && opts.recursive == MountAttr::default() {
        return Ok(());
    }
    let fd =
        safepath::open_path_nofollow(ctx.root, dest).sys("openat2", dest.display().to_string())?;
    propagate(fd.as_fd(), dest, opts)?;
    if opts.recursive != MountAttr::default() {
        setattr(fd.as_fd(), &opts.recursive, true, dest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Options {
        parse_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_and_data() {
        let o = p(&["nosuid", "noexec", "nodev", "mode=755", "size=65536k", "ro"]);
        assert!(o
            .flags
            .contains(MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV));
        assert!(o.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
    }

    #[test]
    fn later_option_wins() {
        let o = p(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn recursive_options_go_to_mount_setattr() {
        let o = p(&["rbind", "rro", "rnosuid", "rnoatime"]);
        assert!(o.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC));
        assert_eq!(
            o.recursive.attr_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.recursive.attr_clr, MOUNT_ATTR_ATIME_MASK);
        assert!(o.data.is_empty());
        for name in RECURSIVE_OPTIONS {
            assert!(recursive_attr(name).is_some(), "{name}");
        }
    }

    #[test]
    fn propagation_words() {
        let o = p(&["rslave", "private"]);
        assert_eq!(
            o.propagation,
            vec![MsFlags::MS_SLAVE | MsFlags::MS_REC, MsFlags::MS_PRIVATE]
        );
    }

    #[test]
    fn idmap_is_refused_not_ignored() {
        assert!(parse_options(&["idmap".to_string()]).is_err());
    }
}
