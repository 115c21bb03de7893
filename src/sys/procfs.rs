//! Writes into the container's procfs that cannot be redirected (CVE-2025-52881 class).
//!
//! A config can bind-mount anything over a /proc path (or an image can shape /proc), so a plain
//! `write("/proc/sys/...")` may land in a file of the attacker's choosing — e.g. a sysctl write
//! turned into a write to core_pattern. Every write goes through a /proc handle that is checked
//! to be a real procfs, then resolved beneath it without crossing a mount (RESOLVE_NO_XDEV) and
//! without magic links.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

use crate::error::{Error, Result, SysContext};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Opens `/proc` (as the caller's root sees it) and checks it is a procfs.
pub fn open_proc() -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys("open", "/proc")?;
    // SAFETY: `open` just returned this fd; we own it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = nix::sys::statfs::fstatfs(&fd).sys("fstatfs", "/proc")?;
    if st.filesystem_type().0 as i64 != PROC_SUPER_MAGIC {
        return Err(Error::Init(
            "/proc in the container is not a procfs: refusing to write through it".into(),
        ));
    }
    Ok(fd)
}

/// Writes `value` to `/proc/<rel>`, refusing anything that is not the procfs file itself.
pub fn write(rel: &str, value: &str) -> Result<()> {
    let proc = open_proc()?;
    let how = OpenHow::new()
        .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let what = format!("/proc/{rel}");
    let fd = openat2(proc.as_raw_fd(), Path::new(rel), how).map_err(|e| match e {
        nix::errno::Errno::EXDEV => Error::Init(format!(
            "{what} is covered by another mount: refusing to write to it"
        )),
        e => Error::sys("openat2", what.clone(), e),
    })?;
    // SAFETY: openat2 just returned this fd; we own it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = nix::sys::statfs::fstatfs(&fd).sys("fstatfs", what.clone())?;
    if st.filesystem_type().0 as i64 != PROC_SUPER_MAGIC {
        return Err(Error::Init(format!(
            "{what} is not a procfs file: refusing to write to it"
        )));
    }
    nix::unistd::write(fd.as_fd(), value.as_bytes()).sys("write", what)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_a_real_proc_file() {
        let before = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        super::write("self/oom_score_adj", before.trim()).unwrap();
        assert!(super::write("self/../../etc/passwd", "x").is_err());
    }
}
