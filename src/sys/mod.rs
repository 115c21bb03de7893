//! Helpers over the kernel and the file system, used by every layer above: safe path
//! resolution, procfs, signals, clone, the parent/child sync channel, ptys and fd passing,
//! eBPF loading, and the state root's on-disk layout with its atomic writes. Nothing here
//! imports a project module but `error`.

pub mod signals;
pub mod stateroot;

linux_only! {
    pub mod clone;
    pub mod console;
    pub mod ebpf;
    pub mod procfs;
    pub mod safepath;
    pub mod sync;
}
