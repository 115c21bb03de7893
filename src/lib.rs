//! ward: an OCI container runtime, a drop-in replacement for runc.
//!
//! One module per concern; `container::create` reads top to bottom as the OCI create
//! lifecycle and hands over to `init`, which runs inside the new namespaces until execve.

pub mod capabilities;
pub mod cgroupfs;
pub mod cgroups;
pub mod clone;
pub mod console;
pub mod container;
pub mod devices;
pub mod ebpf;
pub mod egress;
pub mod error;
pub mod features;
pub mod hooks;
pub mod init;
pub mod landlock;
pub mod logging;
pub mod mounts;
pub mod namespaces;
pub mod observe;
pub mod platform;
pub mod process;
pub mod procfs;
pub mod rlimits;
pub mod rootfs;
pub mod safepath;
pub mod scheduling;
pub mod seccomp;
pub mod signals;
pub mod spec;
pub mod state;
pub mod stateroot;
pub mod supervisor;
pub mod sync;
pub mod template;
pub mod tier;

pub use error::{Error, Result};

/// The OCI runtime-spec version ward implements.
pub const OCI_VERSION: &str = "1.2.1";
