//! Helpers over the kernel and the file system, used by every layer above: safe path
//! resolution, procfs, signals, clone, the parent/child sync channel, ptys and fd passing,
//! ward's daemons (double fork, fd cleanup), eBPF loading, rtnetlink requests, and the state root's on-disk layout with its atomic
//! writes. Nothing here imports a project module but `error`.

pub mod signals;
pub mod stateroot;

#[cfg(target_os = "linux")]
pub mod clone;
#[cfg(target_os = "linux")]
pub mod console;
#[cfg(target_os = "linux")]
pub mod daemon;
#[cfg(target_os = "linux")]
pub mod ebpf;
#[cfg(target_os = "linux")]
pub mod procfs;
#[cfg(target_os = "linux")]
pub mod rtnl;
#[cfg(target_os = "linux")]
pub mod safepath;
#[cfg(target_os = "linux")]
pub mod sync;
