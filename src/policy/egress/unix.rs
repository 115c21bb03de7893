//! `network.allowUnix`: which unix socket addresses the container may connect or send to,
//! enforced by cgroup BPF programs at BPF_CGROUP_UNIX_CONNECT / UNIX_SENDMSG (Linux 6.7+).
//!
//! The kernel hands these programs its own copy of the address, after the caller's last chance
//! to change it, so matching is race-free. The path is read through two kfuncs, which is why the
//! program's license is GPL-compatible and why kernel BTF is needed: bpf_cast_to_kern_ctx gives
//! the kernel's `struct bpf_sock_addr_kern`, bpf_rdonly_cast reads its `uaddr` as a
//! `struct sockaddr_un`. Ids and offsets come from the running kernel's BTF, not from headers.
//!
//! Addresses are compared as the caller wrote them: a pathname up to its first NUL, an abstract
//! name (written `@name`) with all its bytes. A relative path, a path with `//` or `..`, or a
//! symlink to an allowed socket is a different address and is refused: the rule names an
//! address, not a file. A listed path is only as good as its directories: keep them out of the
//! container's reach (a read-only mount), or a workload could swap a directory for a link.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::spec::interception::address;
use crate::sys::ebpf::btf::{self, Btf};
use crate::sys::ebpf::{
    self, bpf, insn, owned, Insn, ADD64_K, CALL, EXIT, JEQ_K, JLE_K, LDX_B, LDX_DW, LDX_W,
    LD_IMM64, MOV64_K, MOV64_X, RSH64_K, STX_B, STX_W, ST_DW, ST_W,
};

use super::programs::{DEFAULT_RULE, KIND_CONNECT, KIND_SENDMSG};

pub use crate::spec::interception::PATH_MAX;
use crate::spec::interception::UNIX_FIELD as FIELD;
/// Map key: the address length (u32) and the address bytes, zero-padded.
const KEY: usize = 4 + PATH_MAX;
/// A denial record: the inet records' 24-byte header, then the key.
pub const RECORD: usize = 24 + KEY;
/// The record's family field for unix denials (AF_UNIX).
pub const FAMILY: u32 = 1;

const UNIX_CONNECT: u32 = 49;
const UNIX_SENDMSG: u32 = 50;
const PSEUDO_KFUNC_CALL: u8 = 2;

fn key(addr: &[u8]) -> [u8; KEY] {
    let mut k = [0u8; KEY];
    k[0..4].copy_from_slice(&(addr.len() as u32).to_ne_bytes());
    k[4..4 + addr.len()].copy_from_slice(addr);
    k
}

/// What the program needs from the running kernel's BTF.
struct Kernel {
    cast_to_kern_ctx: i32,
    rdonly_cast: i32,
    sockaddr_un: i32,
    uaddr: i16,
    uaddrlen: i16,
    sun_path: i16,
}

impl Kernel {
    fn probe() -> Result<Kernel> {
        let missing = |what: &str| {
            Error::Host(format!(
                "{FIELD}: unix socket rules need the cgroup unix socket hooks of Linux 6.7+ and \
                 kernel BTF; this kernel lacks {what}"
            ))
        };
        let b = Btf::vmlinux().map_err(|_| missing(btf::VMLINUX))?;
        if b.enum_value("bpf_attach_type", "BPF_CGROUP_UNIX_CONNECT") != Some(UNIX_CONNECT as i64)
            || b.enum_value("bpf_attach_type", "BPF_CGROUP_UNIX_SENDMSG")
                != Some(UNIX_SENDMSG as i64)
        {
            return Err(missing("BPF_CGROUP_UNIX_CONNECT/SENDMSG"));
        }
        let func = |n: &str| b.id(btf::KIND_FUNC, n).ok_or_else(|| missing(n));
        let strukt = |n: &str| b.id(btf::KIND_STRUCT, n).ok_or_else(|| missing(n));
        let member = |s: u32, sn: &str, m: &str| {
            b.member_offset(s, m)
                .map(|o| o as i16)
                .ok_or_else(|| missing(&format!("{sn}.{m}")))
        };
        let kern = strukt("bpf_sock_addr_kern")?;
        let sun = strukt("sockaddr_un")?;
        Ok(Kernel {
            cast_to_kern_ctx: func("bpf_cast_to_kern_ctx")? as i32,
            rdonly_cast: func("bpf_rdonly_cast")? as i32,
            sockaddr_un: sun as i32,
            uaddr: member(kern, "bpf_sock_addr_kern", "uaddr")?,
            uaddrlen: member(kern, "bpf_sock_addr_kern", "uaddrlen")?,
            sun_path: member(sun, "sockaddr_un", "sun_path")?,
        })
    }
}

/// Whether this kernel can enforce unix socket rules.
pub fn available() -> bool {
    Kernel::probe().is_ok()
}

/// The program: the caller's address copied (as the kernel will use it) into a key on the
/// stack, {length, bytes}; listed -> allowed; otherwise a record {kind, 0, rule, AF_UNIX, pid,
/// 0, key} goes to the ring buffer and the call fails with EPERM.
fn program(k: &Kernel, map: RawFd, ringbuf: RawFd, kind: i32) -> Vec<Insn> {
    let key_at: i16 = -(KEY as i16); // fp-112: length; fp-108..fp: bytes
    let rec_at: i16 = -(RECORD as i16); // fp-136
                                        // r1 = ctx on entry.
    let mut p = vec![insn(CALL, 0, PSEUDO_KFUNC_CALL, 0, k.cast_to_kern_ctx)];
    p.push(insn(LDX_W, 8, 0, k.uaddrlen, 0)); // r8 = uaddrlen
    p.push(insn(LDX_DW, 1, 0, k.uaddr, 0)); // r1 = uaddr
    p.push(insn(MOV64_K, 2, 0, 0, k.sockaddr_un));
    p.push(insn(CALL, 0, PSEUDO_KFUNC_CALL, 0, k.rdonly_cast));
    p.push(insn(MOV64_X, 7, 0, 0, 0)); // r7 = (struct sockaddr_un *)uaddr, read-only
    for o in (rec_at..0).step_by(8) {
        p.push(insn(ST_DW, 10, 0, o, 0));
    }
    let mut to_lookup = Vec::new();
    to_lookup.push(p.len());
    p.push(insn(JEQ_K, 7, 0, 0, 0)); // no address: an empty key
    p.push(insn(ADD64_K, 8, 0, 0, -(k.sun_path as i32))); // r8 = bytes after the family
    p.push(insn(LDX_B, 9, 7, k.sun_path, 0)); // r9 = first byte: 0 for an abstract name
    for i in 0..PATH_MAX as i16 {
        to_lookup.push(p.len());
        p.push(insn(JLE_K, 8, 0, 0, i as i32)); // the address ends before byte i
        p.push(insn(LDX_B, 1, 7, k.sun_path + i, 0));
        p.push(insn(JEQ_K, 9, 0, 1, 0)); // abstract: NULs are part of the name
        to_lookup.push(p.len());
        p.push(insn(JEQ_K, 1, 0, 0, 0)); // a pathname ends at its first NUL
        p.push(insn(STX_B, 10, 1, key_at + 4 + i, 0));
        p.push(insn(ST_W, 10, 0, key_at, i as i32 + 1));
    }
    let lookup = p.len();
    p.push(insn(LD_IMM64, 1, 1, 0, map)); // BPF_PSEUDO_MAP_FD
    p.push(insn(0, 0, 0, 0, 0));
    p.push(insn(MOV64_X, 2, 10, 0, 0));
    p.push(insn(ADD64_K, 2, 0, 0, key_at as i32));
    p.push(insn(CALL, 0, 0, 0, 1)); // bpf_map_lookup_elem
    p.push(insn(JEQ_K, 0, 0, 2, 0));
    p.push(insn(MOV64_K, 0, 0, 0, 1)); // listed: allowed
    p.push(insn(EXIT, 0, 0, 0, 0));
    p.push(insn(ST_W, 10, 0, rec_at, kind));
    p.push(insn(
        ST_W,
        10,
        0,
        rec_at + 8,
        (2 | (DEFAULT_RULE << 8)) as i32,
    ));
    p.push(insn(ST_W, 10, 0, rec_at + 12, FAMILY as i32));
    p.push(insn(CALL, 0, 0, 0, 14)); // bpf_get_current_pid_tgid
    p.push(insn(RSH64_K, 0, 0, 0, 32));
    p.push(insn(STX_W, 10, 0, rec_at + 16, 0));
    p.push(insn(LD_IMM64, 1, 1, 0, ringbuf));
    p.push(insn(0, 0, 0, 0, 0));
    p.push(insn(MOV64_X, 2, 10, 0, 0));
    p.push(insn(ADD64_K, 2, 0, 0, rec_at as i32));
    p.push(insn(MOV64_K, 3, 0, 0, RECORD as i32));
    p.push(insn(MOV64_K, 4, 0, 0, 0));
    p.push(insn(CALL, 0, 0, 0, 130)); // bpf_ringbuf_output
    p.push(insn(MOV64_K, 0, 0, 0, 0)); // EPERM
    p.push(insn(EXIT, 0, 0, 0, 0));
    for at in to_lookup {
        p[at].off = (lookup - at - 1) as i16;
    }
    p
}

fn create_map(entries: usize) -> Result<OwnedFd> {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // BPF_MAP_TYPE_HASH
    attr[4..8].copy_from_slice(&(KEY as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&4u32.to_ne_bytes());
    attr[12..16].copy_from_slice(&(entries.max(1) as u32).to_ne_bytes());
    bpf(0, &mut attr)
        .map(owned)
        .map_err(|e| Error::sys("bpf", "create the unix socket rule map", e))
}

/// Loads the unix socket programs for `allowed` and attaches them to the cgroup. Refused with a
/// clear error, before anything is attached, on kernels without the hooks or BTF.
pub fn install(cgroup: BorrowedFd, allowed: &[String], ringbuf: BorrowedFd) -> Result<()> {
    let k = Kernel::probe()?;
    let map = create_map(allowed.len())?;
    for (i, rule) in allowed.iter().enumerate() {
        let key = key(&address(rule)?);
        let value = (i as u32).to_ne_bytes();
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&(map.as_raw_fd() as u32).to_ne_bytes());
        attr[8..16].copy_from_slice(&(key.as_ptr() as u64).to_ne_bytes());
        attr[16..24].copy_from_slice(&(value.as_ptr() as u64).to_ne_bytes());
        bpf(2, &mut attr).map_err(|e| Error::sys("bpf", "fill the unix socket rule map", e))?;
    }
    for (t, kind) in [(UNIX_CONNECT, KIND_CONNECT), (UNIX_SENDMSG, KIND_SENDMSG)] {
        let prog = program(&k, map.as_raw_fd(), ringbuf.as_raw_fd(), kind);
        // GPL-compatible: the kernel lets only such programs call kfuncs. This generated
        // program is offered under MIT or GPL, whichever the reader prefers.
        let fd = ebpf::load_licensed(&prog, 18, t, "the unix socket program", c"Dual MIT/GPL")?;
        ebpf::attach(cgroup, fd.as_fd(), t, 2, "the unix socket program")?;
    }
    Ok(())
}

/// The address of a denial record, as the log shows it (`@` for an abstract name).
pub fn describe(rec: &[u8]) -> String {
    let len = rec
        .get(24..28)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0)
        .min(PATH_MAX);
    let bytes = rec.get(28..28 + len).unwrap_or(&[]);
    match bytes.split_first() {
        Some((0, name)) => format!("@{}", String::from_utf8_lossy(name).replace('\0', "\\0")),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_written() {
        assert_eq!(address("/run/a.sock").unwrap(), b"/run/a.sock");
        assert_eq!(address("@bus").unwrap(), b"\0bus");
        for bad in ["run/a.sock", "", "/a\0b", &format!("/{}", "x".repeat(108))] {
            assert!(address(bad).is_err(), "{bad:?}");
        }
        let k = key(b"\0bus");
        assert_eq!(&k[0..8], &[4, 0, 0, 0, 0, b'b', b'u', b's']);
        let mut rec = vec![0u8; 24];
        rec.extend_from_slice(&k);
        assert_eq!(describe(&rec), "@bus");
    }

    #[test]
    fn the_kernel_accepts_the_program() {
        // Loading runs the verifier against this kernel's BTF: the test fails if an offset,
        // an id or the program's shape is wrong. Needs root (CAP_BPF, CAP_PERFMON).
        use std::io::Write;
        if !nix::unistd::geteuid().is_root() {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: loading a BPF program needs root"
            );
            return;
        }
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut v = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|x| x.parse().unwrap_or(0));
        let version: (u32, u32) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
        if version < (6, 7) || !std::path::Path::new(btf::VMLINUX).exists() {
            let reason = format!(
                "skipped: needs Linux 6.7+ with {}; this is {release}",
                btf::VMLINUX
            );
            let _ = writeln!(std::io::stderr(), "{}", reason.trim());
            return;
        }
        let k = Kernel::probe().expect("this kernel has the unix hooks");
        let map = create_map(1).unwrap();
        let ring = super::super::programs::create_ringbuf().unwrap();
        for (t, kind) in [(UNIX_CONNECT, KIND_CONNECT), (UNIX_SENDMSG, KIND_SENDMSG)] {
            let prog = program(&k, map.as_raw_fd(), ring.as_raw_fd(), kind);
            ebpf::load_licensed(&prog, 18, t, "test", c"Dual MIT/GPL").unwrap();
        }
    }
}
