//! `linux.seccomp`: compiled to BPF in Rust (`compile`), cached by content, installed in init
//! as late as possible, and — for SCMP_ACT_NOTIFY — the listener fd handed out of the container.
//!
//! Hand-off of the notify fd: init loads the filter with SECCOMP_FILTER_FLAG_NEW_LISTENER and
//! passes the fd it gets to `ward create` over the sync channel, then closes it: the container
//! never holds it across execve. `ward create` (with the host's view of the filesystem) then
//! gives it to its destination — today the `listenerPath` socket of the runtime-spec; the
//! embedded supervisor later plugs in at the same place (`deliver`).

pub mod bpf;
pub mod compile;
pub mod syscalls;

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

pub use compile::{compile, Program};

use crate::error::{Error, Result};

/// Bumped whenever the compiler's output for the same profile changes.
const COMPILER_VERSION: &str = "ward-seccomp-1";

/// The cache file for `s` under `root`: keyed by the profile, the running kernel and the
/// compiler, so a changed profile (or kernel, or ward) never gets a stale filter.
fn cache_path(root: &Path, s: &LinuxSeccomp) -> Option<PathBuf> {
    let profile = serde_json::to_vec(s).ok()?;
    let uname = nix::sys::utsname::uname().ok()?;
    let mut h = Sha256::new();
    h.update(COMPILER_VERSION);
    h.update([0]);
    h.update(uname.release().as_encoded_bytes());
    h.update([0]);
    h.update(&profile);
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some(
        root.join(crate::sys::stateroot::CACHE_DIR)
            .join("seccomp")
            .join(hex),
    )
}

fn decode(bytes: &[u8]) -> Option<Program> {
    let flags = u32::from_ne_bytes(bytes.get(0..4)?.try_into().ok()?);
    let body = bytes.get(4..)?;
    if body.is_empty() || body.len() % 8 != 0 {
        return None;
    }
    let insns = body
        .chunks(8)
        .map(bpf::SockFilter::from_bytes)
        .collect::<Option<Vec<_>>>()?;
    Some(Program { insns, flags })
}

fn encode(p: &Program) -> Vec<u8> {
    let mut out = p.flags.to_ne_bytes().to_vec();
    for i in &p.insns {
        out.extend_from_slice(&i.to_bytes());
    }
    out
}

/// Compiles `s`, or reads the program compiled for the same profile and kernel before.
pub fn prepare(state_root: &Path, s: &LinuxSeccomp) -> Result<Program> {
    let path = cache_path(state_root, s);
    if let Some(p) = path
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| decode(&b))
    {
        tracing::debug!("seccomp: filter from cache");
        return Ok(p);
    }
    let program = compile(s)?;
    if let Some(path) = path {
        // The cache is an optimisation: failing to write it must not fail the container.
        let stored = path
            .parent()
            .map(|d| std::fs::create_dir_all(d).is_ok())
            .unwrap_or(false)
            && crate::sys::stateroot::write_atomic(&path, &encode(&program)).is_ok();
        if !stored {
            tracing::debug!("seccomp: could not cache the filter at {}", path.display());
        }
    }
    Ok(program)
}

/// Loads the filter into the calling thread. Returns the notify fd when the filter has
/// SCMP_ACT_NOTIFY rules. Needs no_new_privs or CAP_SYS_ADMIN.
pub fn install(p: &Program) -> Result<Option<OwnedFd>> {
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const bpf::SockFilter,
    }
    let prog = SockFprog {
        len: p.insns.len() as u16,
        filter: p.insns.as_ptr(),
    };
    // SAFETY: `prog` points at `p.insns`, alive for the call; the kernel copies the program.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1, /* SECCOMP_SET_MODE_FILTER */
            p.flags,
            &prog as *const SockFprog,
        )
    };
    let rc = nix::errno::Errno::result(rc)
        .map_err(|e| Error::sys("seccomp", format!("load filter (flags {:#x})", p.flags), e))?;
    if p.wants_listener() {
        // SAFETY: with NEW_LISTENER the kernel returned a new fd that we now own.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as i32) }))
    } else {
        Ok(None)
    }
}

/// Hands the notify fd to its destination: the `listenerPath` socket, with the container
/// process state JSON (runtime-spec config-linux.md, "seccomp listener").
pub fn deliver(
    s: &LinuxSeccomp,
    fd: BorrowedFd,
    pid: i32,
    state: &serde_json::Value,
) -> Result<()> {
    let path = s.listener_path().as_ref().ok_or_else(|| {
        Error::spec(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY needs a listenerPath",
        )
    })?;
    let msg = serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": s.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    });
    let sock = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| Error::io("connect to seccomp listener", path, e))?;
    crate::sys::console::send_master(std::os::fd::AsFd::as_fd(&sock), fd, &msg.to_string())?;
    Ok(())
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
