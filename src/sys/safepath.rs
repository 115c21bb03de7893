//! Resolving paths inside the container's rootfs without ever leaving it.
//!
//! Every lookup goes through openat2(2) with RESOLVE_IN_ROOT: the rootfs directory fd acts as `/`
//! for the walk, so an absolute symlink in the image (`/mnt/x -> /etc`) or a `..` chain resolves
//! to a path *inside* the rootfs, as a chroot would — never to the host's /etc. Magic links
//! (/proc/self/fd/N) are refused during the walk. What is returned is an O_PATH fd, and the
//! callers mount onto `/proc/self/fd/<fd>`, so no path string is re-resolved between the check and
//! the use (CVE-2025-31133 / 52565 / 52881 class).

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// `path` with its leading `/` removed, so it is relative to the root fd ("" for `/`).
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect()
}

fn wrap(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful openat2/openat and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Opens `path` inside `root` with `flags` (O_CLOEXEC added).
pub fn open(root: BorrowedFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    openat2(root.as_raw_fd(), &rel, how(flags)).map(wrap)
}

/// O_PATH fd of `path` inside `root`, reached without following any symlink (ELOOP if one is
/// met): for targets that must be exactly the path named, such as procfs at /proc.
pub fn open_path_no_symlinks(root: BorrowedFd, path: &Path) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    openat2(root.as_raw_fd(), &rel, how).map(wrap)
}

/// O_PATH fd of `path` inside `root`; the final component is not followed if it is a symlink.
pub fn open_path_nofollow(root: BorrowedFd, path: &Path) -> nix::Result<OwnedFd> {
    open(root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW)
}

/// Makes every directory of `path` inside `root` (mode 0755) and returns an O_PATH fd of the last
/// one. Symlinks met on the way are resolved inside the root.
pub fn mkdir_all(root: BorrowedFd, path: &Path) -> Result<OwnedFd> {
    mkdir_all_depth(root, path, 0)
}

/// Symlinks followed while creating one path, as the kernel's own limit (ELOOP).
const MAX_LINKS: u32 = 40;

fn mkdir_all_depth(root: BorrowedFd, path: &Path, depth: u32) -> Result<OwnedFd> {
    if depth > MAX_LINKS {
        return Err(Error::sys(
            "mkdir",
            path.display().to_string(),
            Errno::ELOOP,
        ));
    }
    // Most destinations exist (/proc, /dev, /sys/fs/cgroup/<hierarchy>): one lookup of the
    // whole path finds the same directory the walk would, without a lookup per prefix. Any
    // failure takes the walk, which creates what is missing and names what is wrong.
    if let Ok(fd) = open(root, path, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        return Ok(fd);
    }
    let mut dir = open(root, Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| Error::sys("openat2", "rootfs", e))?;
    let mut walked = PathBuf::from("/");
    for comp in relative(path).components() {
        let name = comp.as_os_str();
        walked.push(name);
        dir = step_into(root, dir.as_fd(), name, &walked, depth)?;
    }
    Ok(dir)
}

fn step_into(
    root: BorrowedFd,
    dir: BorrowedFd,
    name: &OsStr,
    walked: &Path,
    depth: u32,
) -> Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match open(root, walked, flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys("openat2", walked.display().to_string(), e)),
    }
    // Missing: create it in the directory we hold (not by path), then resolve it again. A
    // dangling symlink here is refused by mkdirat (EEXIST) rather than followed.
    match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // A dangling symlink: create what it points to, read as a path inside the root.
            if let Ok(target) = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name) {
                let target = Path::new(&target);
                let inside = match walked.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target.to_path_buf(),
                };
                mkdir_all_depth(root, &inside, depth + 1)?;
            }
        }
        Err(e) => return Err(Error::sys("mkdirat", walked.display().to_string(), e)),
    }
    open(root, walked, flags).map_err(|e| Error::sys("openat2", walked.display().to_string(), e))
}

/// Makes sure `path` exists inside `root` as a directory (`dir`) or regular file, creating it and
/// its parents as needed, and returns an O_PATH fd of it. Symlinks, the last one included, are
/// followed *inside* the root (a dangling one gets its target created there), as runc's
/// securejoin does: a mount through the fd can never land outside the rootfs.
pub fn ensure(root: BorrowedFd, path: &Path, dir: bool) -> Result<OwnedFd> {
    ensure_depth(root, path, dir, 0)
}

fn ensure_depth(root: BorrowedFd, path: &Path, dir: bool, depth: u32) -> Result<OwnedFd> {
    if dir {
        return mkdir_all_depth(root, path, depth);
    }
    if depth > MAX_LINKS {
        return Err(Error::sys("open", path.display().to_string(), Errno::ELOOP));
    }
    let full = Path::new("/").join(relative(path));
    match open(root, &full, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys("openat2", full.display().to_string(), e)),
    }
    let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else {
        return mkdir_all(root, Path::new("/"));
    };
    let parent_fd = mkdir_all_depth(root, parent, depth)?;
    match nix::fcntl::openat(
        Some(parent_fd.as_raw_fd()),
        name.as_bytes(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_WRONLY,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(fd) => drop(wrap(fd)),
        Err(Errno::EEXIST) => {
            // A dangling symlink: create its target inside the root.
            let target = nix::fcntl::readlinkat(Some(parent_fd.as_raw_fd()), name)
                .map_err(|e| Error::sys("readlinkat", full.display().to_string(), e))?;
            let target = Path::new(&target);
            let inside = if target.is_relative() {
                parent.join(target)
            } else {
                target.to_path_buf()
            };
            return ensure_depth(root, &inside, false, depth + 1);
        }
        Err(e) => return Err(Error::sys("openat", full.display().to_string(), e)),
    }
    open(root, &full, OFlag::O_PATH)
        .map_err(|e| Error::sys("openat2", full.display().to_string(), e))
}

/// A regular file at `path` that is not reached through a final symlink: opened (or created)
/// with O_NOFOLLOW and checked with fstat. For targets where even a redirect inside the
/// container is dangerous (/dev/console, CVE-2025-52565).
pub fn ensure_plain_file(root: BorrowedFd, path: &Path) -> Result<OwnedFd> {
    let full = Path::new("/").join(relative(path));
    let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else {
        return Err(Error::sys(
            "open",
            full.display().to_string(),
            Errno::EINVAL,
        ));
    };
    let parent_fd = open(root, parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| Error::sys("openat2", parent.display().to_string(), e))?;
    // Created if missing (O_EXCL|O_NOFOLLOW: never through a link), then opened O_PATH so that
    // nothing is opened for real (a fifo or tty would react to an open).
    let flags =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_WRONLY;
    match nix::fcntl::openat(
        Some(parent_fd.as_raw_fd()),
        name.as_bytes(),
        flags,
        Mode::from_bits_truncate(0o600),
    ) {
        Ok(fd) => drop(wrap(fd)),
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::sys("openat", full.display().to_string(), e)),
    }
    let fd = open_path_nofollow(root, &full)
        .map_err(|e| Error::sys("openat2", full.display().to_string(), e))?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd())
        .map_err(|e| Error::sys("fstat", full.display().to_string(), e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::Init(format!(
            "{} is not a regular file",
            full.display()
        )));
    }
    Ok(fd)
}

/// `/proc/self/fd/<fd>`: the path through which mount(2) reaches exactly the object we opened.
pub fn fd_path(fd: BorrowedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens the rootfs directory itself.
pub fn open_root(rootfs: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(wrap)
    .map_err(|e| Error::sys("open", rootfs.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("ward-safepath-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn absolute_symlink_stays_inside_root() {
        let base = tmp("abs");
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // /evil -> <host path of outside>: must resolve inside root, not to the host dir.
        symlink(&outside, root.join("evil")).unwrap();
        let rfd = open_root(&root).unwrap();
        ensure(rfd.as_fd(), Path::new("/evil/made"), true).unwrap();
        assert!(!outside.join("made").exists(), "escaped the root");
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("made")
            .is_dir());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn dotdot_cannot_climb_out() {
        let base = tmp("dotdot");
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let rfd = open_root(&root).unwrap();
        ensure(rfd.as_fd(), Path::new("/../../x"), false).unwrap();
        assert!(root.join("x").is_file());
        assert!(!base.join("x").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn final_symlink_resolves_inside_root() {
        let base = tmp("final");
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        symlink("/target", root.join("link")).unwrap();
        let rfd = open_root(&root).unwrap();
        let fd = ensure(rfd.as_fd(), Path::new("/link"), false).unwrap();
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFREG);
        assert!(root.join("target").is_file());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn plain_file_refuses_symlinks() {
        let base = tmp("plain");
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        symlink("/etc/passwd", root.join("console")).unwrap();
        let rfd = open_root(&root).unwrap();
        assert!(ensure_plain_file(rfd.as_fd(), Path::new("/console")).is_err());
        assert!(ensure_plain_file(rfd.as_fd(), Path::new("/new")).is_ok());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
