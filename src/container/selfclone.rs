//! CVE-2019-5736 for containers that hold CAP_SYS_PTRACE: make sure the ward that enters a
//! container runs from a binary nobody can write, before `create`, `run` or `exec` do any work.
//!
//! init and `ward exec`'s child are non-dumpable, which keeps container processes out of
//! /proc/<pid>/exe, but CAP_SYS_PTRACE in the host's user namespace (a container without a
//! user namespace that was given SYS_PTRACE, or `exec --cap`) overrides non-dumpable: such a
//! process can open /proc/<ward>/exe with O_PATH and, once ward has left (nothing executes
//! the file, so no ETXTBSY), reopen it through /proc/self/fd/N for writing.
//!
//! So ward re-executes itself once, with the same argv, environment and fds, from a
//! **read-only, detached bind mount of its own file**: open_tree(OPEN_TREE_CLONE) of
//! /proc/self/exe, mount_setattr(MOUNT_ATTR_RDONLY) on that private copy of the mount, then
//! execveat of it. /proc/<pid>/exe of every ward process that follows (the parent, init, the
//! exec child) is then a file on a mount that is read-only, attached to no mount namespace and
//! so impossible to remount: every open for writing, also the reopen after ward has left,
//! fails EROFS. No data is copied (the cost is one execve). Where that is refused (no
//! CAP_SYS_ADMIN, kernel < 5.12) ward copies itself into a memfd sealed against writes,
//! shrinking and growing, as runc does, and executes that.
//!
//! On x86_64 Linux the binary's entry point (src/seal_entry.rs) has already done the same
//! bind-mount re-exec before ward started, so `ensure` finds the seal and returns; it stays the
//! path that retries, falls back to the memfd, reports errors, and serves other architectures.
//!
//! The marker that the re-exec happened is the binary itself: a write-sealed memfd, or a file
//! that is the root of a read-only mount (our bind mount, or an administrator's read-only bind
//! mount of ward). Nothing is put in the environment or argv.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;

use crate::error::{Error, Result};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Whether the caller could write the binary it runs from. `ward sandbox` run by a user who
/// cannot skips the copy (most of a sandbox's start otherwise): its command holds no
/// capability in any user namespace that owns the file, runs as that same user, sees no ward
/// process but its own reaper (non-dumpable, its memory owned by the host's user namespace),
/// so it can neither reach the file nor write it.
pub fn writable_by_caller() -> bool {
    nix::unistd::access("/proc/self/exe", nix::unistd::AccessFlags::W_OK).is_ok()
}

/// Returns when this process runs from a binary that cannot be written; otherwise replaces
/// it with one that cannot (and does not return). Call before any other work.
pub fn ensure() -> Result<()> {
    let exe = open("/proc/self/exe", libc::O_RDONLY)?;
    if is_sealed(exe.as_raw_fd()) {
        name_process();
        return Ok(());
    }
    let argv = cstrings(std::env::args_os())?;
    let envp = cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    // Runs before logging is set up: which of the two was used shows in /proc/<pid>/exe
    // ("/" for the bind, "/memfd:ward (deleted)" for the copy).
    let clone = match readonly_bind(c"/proc/self/exe") {
        Ok(fd) => fd,
        Err(_) => sealed_memfd(exe.as_raw_fd())?,
    };
    drop(exe);
    let err = execveat(clone.as_raw_fd(), &argv, &envp);
    Err(Error::sys(
        "execveat",
        "ward's read-only copy of itself",
        err,
    ))
}

/// Is the file at `fd` a write-sealed memfd, or the root of a read-only mount?
fn is_sealed(fd: RawFd) -> bool {
    // SAFETY: F_GET_SEALS on a valid fd only returns a value (EINVAL if not a memfd).
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    let need = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    if seals >= 0 && seals & need == need {
        return true;
    }
    // SAFETY: zeroed statx/statvfs are valid out-buffers for the calls below.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is valid, the path is an empty C string with AT_EMPTY_PATH, `stx` is ours.
    let rc = unsafe { libc::statx(fd, c"".as_ptr(), libc::AT_EMPTY_PATH, 0, &mut stx) };
    let mount_root = rc == 0
        && stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT != 0
        && stx.stx_attributes & STATX_ATTR_MOUNT_ROOT != 0;
    // SAFETY: as above.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is valid and `vfs` is ours.
    let ro = unsafe { libc::fstatvfs(fd, &mut vfs) } == 0 && vfs.f_flag & libc::ST_RDONLY != 0;
    mount_root && ro
}

/// A private, read-only (nosuid, nodev) bind mount of the file at `path`, attached nowhere: an
/// O_PATH fd of it. The mount lives as long as a file (this fd, then the exec'd mm) refers to it.
fn readonly_bind(path: &std::ffi::CStr) -> std::result::Result<OwnedFd, Errno> {
    // SAFETY: the path is a valid C string; the flags ask for a new O_PATH fd that we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: open_tree just returned this fd; nothing else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `tree` is a valid fd, the empty path with AT_EMPTY_PATH names it, and `attr` is
    // a mount_attr of the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc)?;
    Ok(tree)
}

/// A memfd holding a copy of the file at `exe`, sealed against any change.
fn sealed_memfd(exe: RawFd) -> Result<OwnedFd> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: the name is a valid C string; memfd_create returns a new fd that we own.
    let mut fd = unsafe { libc::memfd_create(c"ward".as_ptr(), flags | MFD_EXEC) };
    if fd < 0 {
        // Kernels before 6.3 know no MFD_EXEC (their memfds are executable anyway).
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(c"ward".as_ptr(), flags) };
    }
    let fd = Errno::result(fd).map_err(|e| Error::sys("memfd_create", "ward's copy", e))?;
    // SAFETY: memfd_create just returned this fd; nothing else owns it.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut offset: libc::off_t = 0;
    loop {
        // SAFETY: both fds are valid and `offset` is ours.
        let n = unsafe { libc::sendfile(memfd.as_raw_fd(), exe, &mut offset, 1 << 30) };
        match Errno::result(n) {
            Ok(0) => break,
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("sendfile", "ward's binary into a memfd", e)),
        }
    }
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS on our memfd only changes its seals.
    let rc = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    Errno::result(rc).map_err(|e| Error::sys("fcntl", "F_ADD_SEALS on ward's copy", e))?;
    Ok(memfd)
}

fn open(path: &str, flags: libc::c_int) -> Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| Error::Init(format!("NUL in {path}")))?;
    // SAFETY: `c` is a valid C string; open returns a new fd that we own.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    let fd = Errno::result(fd).map_err(|e| Error::sys("open", path, e))?;
    // SAFETY: open just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cstrings(items: impl Iterator<Item = OsString>) -> Result<Vec<CString>> {
    items
        .map(|s| CString::new(s.into_vec()).map_err(|_| Error::Init("NUL in argv/env".into())))
        .collect()
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH); returns only on failure.
fn execveat(fd: RawFd, argv: &[CString], envp: &[CString]) -> Errno {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: `fd` is valid, both arrays are NULL-terminated arrays of valid C strings that
    // outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last()
}

/// After execveat(fd) the kernel names the process after the fd ("3"); give it back its name.
fn name_process() {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let base = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_os_string().into_vec())
        .unwrap_or_else(|| b"ward".to_vec());
    let name = CString::new(base.into_iter().take(15).collect::<Vec<u8>>())
        .unwrap_or_else(|_| c"ward".to_owned());
    let _ = nix::sys::prctl::set_name(&name);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (open_tree of a clone needs CAP_SYS_ADMIN). A copy of a file, not the running
    /// test binary, whose write-opens fail ETXTBSY anyway.
    #[test]
    fn the_copies_count_as_sealed_and_refuse_writers_the_file_does_not() {
        let file = std::env::temp_dir().join(format!("ward-selfclone-{}", std::process::id()));
        std::fs::write(&file, b"\x7fELF not really").unwrap();
        let c = CString::new(file.to_str().unwrap()).unwrap();
        let plain = open(file.to_str().unwrap(), libc::O_RDONLY).unwrap();
        assert!(!is_sealed(plain.as_raw_fd()), "the file itself");
        let bind = readonly_bind(&c).unwrap();
        assert!(is_sealed(bind.as_raw_fd()), "the read-only bind");
        let path = format!("/proc/self/fd/{}", bind.as_raw_fd());
        let err = open(&path, libc::O_WRONLY).err().map(|e| e.to_string());
        assert!(
            err.as_ref().is_some_and(|e| e.contains("EROFS")),
            "reopen for writing: {err:?}"
        );
        let memfd = sealed_memfd(plain.as_raw_fd()).unwrap();
        assert!(is_sealed(memfd.as_raw_fd()), "the sealed memfd");
        assert_eq!(nix::unistd::write(&memfd, b"x"), Err(Errno::EPERM));
        std::fs::remove_file(&file).unwrap();
    }
}
