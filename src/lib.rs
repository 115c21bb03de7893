//! ward: an OCI container runtime, a drop-in replacement for runc.
//!
//! One module per concern; `container::create` reads top to bottom as the OCI create
//! lifecycle and hands over to `init`, which runs inside the new namespaces until execve.
//!
//! The runtime proper is Linux: namespaces, cgroups, seccomp, Landlock. On macOS and Windows
//! the crate is the shared modules below plus `platform`, whose translators and executors run
//! a bundle under sandbox-exec or the Host Compute Service.

// The layers, bottom to top; each may import only from the layers below it (README
// "Layout", checked by tests/layers.rs). `error` and `logging` serve every layer.
pub mod error;
/// Tests only: the seeded generator and driver of the fuzz targets (issue 21); imports
/// nothing of ward's, so every layer's tests may use it. Its targets are Linux modules'.
#[cfg(target_os = "linux")]
#[cfg(test)]
mod fuzzkit;
pub mod logging;
/// The config: the parsed bundle and ward's extensions (types, JSON, validation).
pub mod spec;
/// Helpers over the kernel: no project imports but `error`.
#[cfg(unix)]
pub mod sys;

/// The container: lifecycle operations, state, isolation tiers.
#[cfg(target_os = "linux")]
pub mod container;
/// The create path: what runs inside the new namespaces until execve.
#[cfg(target_os = "linux")]
pub mod init;
/// Policies: each turns part of the spec into kernel objects.
#[cfg(target_os = "linux")]
pub mod policy;

/// macOS and Windows: translators and executors (a front end, beside `cli`).
pub mod platform;

pub use error::{Error, Result};

/// The OCI runtime-spec version ward implements.
pub const OCI_VERSION: &str = "1.2.1";
