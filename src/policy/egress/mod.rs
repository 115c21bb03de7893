//! Egress walls the kernel enforces: ward's `process.interception.network` policy (or the same
//! JSON in the annotation `org.ward.interception`; types and validation in
//! `spec::interception`) compiled into cgroup BPF programs on the container's cgroup v2
//! directory (connect4/6 for TCP, sendmsg4/6 for unconnected UDP), with the rules in LPM tries,
//! and a seccomp filter limiting socket families and types.
//!
//! The kernel evaluates its own copy of the address, in the caller's credentials, on every path
//! that reaches connect/sendmsg (io_uring, sendmmsg, 32-bit syscalls included), and every
//! process born in the cgroup — `ward exec` too — is covered. A denied call fails with EPERM.

pub mod families;
pub mod listeners;
pub mod netwall;
pub mod programs;
pub mod redirect;
pub mod slot;
pub mod steer;
pub mod unix;
