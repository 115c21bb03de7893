//! ward: an OCI container runtime, a drop-in replacement for runc.
//!
//! One module per concern; `container::create` reads top to bottom as the OCI create
//! lifecycle and hands over to `init`, which runs inside the new namespaces until execve.
//!
//! The runtime proper is Linux: namespaces, cgroups, seccomp, Landlock. On macOS and Windows
//! the crate is the shared modules below plus `platform`, whose translators and executors run
//! a bundle under sandbox-exec or the Host Compute Service.

/// Declares modules that exist only on Linux (the one place the crate is split by OS).
macro_rules! linux_only {
    ($(pub mod $name:ident;)*) => {
        $(#[cfg(target_os = "linux")] pub mod $name;)*
    };
}

// Every OS.
pub mod error;
pub mod logging;
pub mod platform;
#[cfg(unix)]
pub mod signals;
#[cfg(unix)]
pub mod stateroot;
pub mod template;

linux_only! {
    pub mod capabilities;
    pub mod cgroupfs;
    pub mod cgroups;
    pub mod clone;
    pub mod console;
    pub mod container;
    pub mod devices;
    pub mod ebpf;
    pub mod egress;
    pub mod features;
    pub mod gvisor_pod;
    pub mod hooks;
    pub mod init;
    pub mod landlock;
    pub mod mounts;
    pub mod mountguard;
    pub mod namespaces;
    pub mod observe;
    pub mod process;
    pub mod procfs;
    pub mod rlimits;
    pub mod rootfs;
    pub mod safepath;
    pub mod scheduling;
    pub mod seccomp;
    pub mod selfclone;
    pub mod spec;
    pub mod state;
    pub mod supervisor;
    pub mod sysctl;
    pub mod sync;
    pub mod tier;
}

pub use error::{Error, Result};

/// The OCI runtime-spec version ward implements.
pub const OCI_VERSION: &str = "1.2.1";
