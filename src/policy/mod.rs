//! Policies: each turns its part of the spec into kernel objects — seccomp filters, Landlock
//! rulesets, egress BPF programs and the observing supervisor, cgroups, devices, capabilities,
//! rlimits, scheduling, and the guards on mount targets. They import `spec` and `sys` (and
//! each other, downwards), never `init` or `container`.

pub mod capabilities;
pub mod cgroups;
pub mod credentials;
pub mod devices;
pub mod egress;
pub mod landlock;
pub mod mountguard;
pub mod observe;
pub mod proxy;
pub mod rlimits;
pub mod scheduling;
pub mod seccomp;
pub mod supervisor;
