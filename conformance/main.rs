//! Kernel-level conformance tests for an OCI runtime with runc's CLI.
//!
//! Runs real containers as root. The runtime under test is `$WARD_RUNTIME` (e.g. `runc`,
//! used to validate the tests themselves) or the ward binary built by cargo.
//! Run: `cargo test --test conformance` or `WARD_RUNTIME=runc cargo test --test conformance`.
//! Linux only: on macOS and Windows the suite compiles to nothing.
#![cfg(target_os = "linux")]

mod badinput;
mod cgroups;
mod cgroups_cmds;
mod cgroups_exec;
mod cli_output;
mod console;
mod credentials;
mod drop_in;
mod egress;
mod egress_attacks;
mod egress_ca;
mod egress_domains;
mod egress_http;
mod egress_kernel;
mod egress_netwall;
mod exec;
mod features;
mod gvisor;
mod harness;
mod hooks;
mod hostile;
mod landlock;
mod lifecycle;
mod lifecycle_faults;
mod lifecycle_kills;
mod lifecycle_races;
mod mounts;
mod namespaces;
mod observe;
mod process;
#[cfg(target_arch = "x86_64")]
mod reexec;
mod rootless;
mod sandbox;
mod seccomp;
mod seccomp_notify;
mod seccomp_order;
mod seccomp_profile;
mod security;
mod security_ptrace;
mod sidebyside;
mod skip;
mod validation;
