//! The cgroup BPF programs of the egress policy, built as instructions in Rust (no nightly
//! toolchain or clang needed here, as runtimes build their device filter), loaded with bpf(2)
//! directly: four programs and two small maps do not justify aya's or libbpf-rs's weight.
//!
//! Maps: an LPM trie per family, key {prefixlen, address}, value up to 8 port ranges with a
//! verdict each; the longest matching prefix decides, its ranges are tried in order (deny
//! first), no match -> the policy's default. Programs: connect4/sendmsg4 and connect6/sendmsg6.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{Network, Rule, Verdict};
use crate::error::{Error, Result};

const RANGES: usize = 8;
const VALUE_SIZE: usize = RANGES * 8;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const STX_W: u8 = 0x63;
const ST_W: u8 = 0x62;
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const ADD64_K: u8 = 0x07;
const END_BE: u8 = 0xdc;
const LD_IMM64: u8 = 0x18;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const JEQ_K: u8 = 0x15;
const JGT_X: u8 = 0x2d;
const JLT_X: u8 = 0xad;

fn bpf(cmd: i64, attr: &mut [u8; 128]) -> nix::Result<i64> {
    // SAFETY: `attr` is a zeroed bpf_attr-sized buffer we own for the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    nix::errno::Errno::result(rc)
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: bpf(2) returned a new fd that nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// An LPM trie for one address family (4 or 16 address bytes).
fn create_trie(addr_len: usize) -> Result<OwnedFd> {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&11u32.to_ne_bytes()); // BPF_MAP_TYPE_LPM_TRIE
    attr[4..8].copy_from_slice(&((4 + addr_len) as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&(VALUE_SIZE as u32).to_ne_bytes());
    attr[12..16].copy_from_slice(&1024u32.to_ne_bytes());
    attr[16..20].copy_from_slice(&1u32.to_ne_bytes()); // BPF_F_NO_PREALLOC, required for tries
    bpf(0, &mut attr)
        .map(owned)
        .map_err(|e| Error::sys("bpf", "create the egress rule map", e))
}

fn update(map: BorrowedFd, key: &[u8], value: &[u8]) -> Result<()> {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(map.as_raw_fd() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(key.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(value.as_ptr() as u64).to_ne_bytes());
    bpf(2, &mut attr)
        .map(drop)
        .map_err(|e| Error::sys("bpf", "fill the egress rule map", e))
}

/// Map key and value bytes for every prefix of the policy.
pub fn entries(rules: &[Rule]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut by_prefix: BTreeMap<(Vec<u8>, u8), Vec<&Rule>> = BTreeMap::new();
    for r in rules {
        let addr = match r.addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        by_prefix.entry((addr, r.prefix)).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((addr, prefix), rs) in by_prefix {
        if rs.len() > RANGES {
            return Err(Error::spec(
                "process.interception.network",
                format!("more than {RANGES} port rules for one prefix"),
            ));
        }
        let mut key = (prefix as u32).to_ne_bytes().to_vec();
        key.extend_from_slice(&addr);
        let mut value = vec![0u8; VALUE_SIZE];
        for (i, r) in rs.iter().enumerate() {
            let v = &mut value[i * 8..i * 8 + 8];
            v[0..2].copy_from_slice(&r.ports.0.to_ne_bytes());
            v[2..4].copy_from_slice(&r.ports.1.to_ne_bytes());
            let verdict: u32 = if r.verdict == Verdict::Allow { 1 } else { 2 };
            v[4..8].copy_from_slice(&verdict.to_ne_bytes());
        }
        out.push((key, value));
    }
    Ok(out)
}

/// The program for one family: key built on the stack from the destination, trie lookup, the
/// port ranges of the match tested in order; no match -> `default`.
fn program(map: RawFd, v6: bool, default: Verdict) -> Vec<Insn> {
    let key_len: i16 = if v6 { 20 } else { 8 };
    let mut p = vec![insn(MOV64_X, 6, 1, 0, 0)]; // r6 = ctx
    p.push(insn(ST_W, 10, 0, -key_len, if v6 { 128 } else { 32 }));
    if v6 {
        for w in 0..4i16 {
            p.push(insn(LDX_W, 2, 6, 8 + 4 * w, 0)); // user_ip6[w]
            p.push(insn(STX_W, 10, 2, -16 + 4 * w, 0));
        }
    } else {
        p.push(insn(LDX_W, 2, 6, 4, 0)); // user_ip4
        p.push(insn(STX_W, 10, 2, -4, 0));
    }
    p.push(insn(LD_IMM64, 1, 1, 0, map)); // BPF_PSEUDO_MAP_FD
    p.push(insn(0, 0, 0, 0, 0));
    p.push(insn(MOV64_X, 2, 10, 0, 0));
    p.push(insn(ADD64_K, 2, 0, 0, -(key_len as i32)));
    p.push(insn(CALL, 0, 0, 0, 1)); // bpf_map_lookup_elem
    let default_at = p.len();
    p.push(insn(JEQ_K, 0, 0, 0, 0)); // if !r0 goto default (patched)
    p.push(insn(LDX_W, 3, 6, 24, 0)); // user_port, network order in the low 16 bits
    p.push(insn(END_BE, 3, 0, 0, 16)); // to host order
    let mut to_default = vec![default_at];
    let mut to_allow = Vec::new();
    for i in 0..RANGES as i16 {
        // r4 = verdict; 0 ends the list. lo <= port <= hi, else the next range.
        p.push(insn(LDX_W, 4, 0, i * 8 + 4, 0));
        to_default.push(p.len());
        p.push(insn(JEQ_K, 4, 0, 0, 0));
        p.push(insn(LDX_H, 5, 0, i * 8, 0));
        p.push(insn(JLT_X, 3, 5, 5, 0)); // port < lo: on to the next range
        p.push(insn(LDX_H, 5, 0, i * 8 + 2, 0));
        p.push(insn(JGT_X, 3, 5, 3, 0)); // port > hi: on to the next range
        to_allow.push(p.len());
        p.push(insn(JEQ_K, 4, 0, 0, 1)); // verdict allow
        p.push(insn(MOV64_K, 0, 0, 0, 0)); // verdict deny: EPERM
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    let default_label = p.len();
    p.push(insn(MOV64_K, 0, 0, 0, (default == Verdict::Allow) as i32));
    p.push(insn(EXIT, 0, 0, 0, 0));
    let allow_label = p.len();
    p.push(insn(MOV64_K, 0, 0, 0, 1));
    p.push(insn(EXIT, 0, 0, 0, 0));
    for at in to_default {
        p[at].off = (default_label - at - 1) as i16;
    }
    for at in to_allow {
        p[at].off = (allow_label - at - 1) as i16;
    }
    p
}

fn load(prog: &[Insn], attach_type: u32) -> Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&18u32.to_ne_bytes()); // BPF_PROG_TYPE_CGROUP_SOCK_ADDR
    attr[4..8].copy_from_slice(&(prog.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(prog.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[48..58].copy_from_slice(b"ward_egres");
    attr[68..72].copy_from_slice(&attach_type.to_ne_bytes());
    bpf(5, &mut attr).map(owned).map_err(|e| {
        Error::sys(
            "bpf",
            format!("load the egress program (attach type {attach_type})"),
            e,
        )
    })
}

fn attach(cgroup: BorrowedFd, prog: BorrowedFd, attach_type: u32) -> Result<()> {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(cgroup.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&attach_type.to_ne_bytes());
    attr[12..16].copy_from_slice(&2u32.to_ne_bytes()); // BPF_F_ALLOW_MULTI: beside other programs
    bpf(8, &mut attr)
        .map(drop)
        .map_err(|e| Error::sys("bpf", "attach the egress program to the cgroup", e))
}

/// Loads the maps and programs of `n` and attaches them to the cgroup at `cgroup`. The
/// attachment keeps them alive until the cgroup is removed; our fds can be dropped.
pub fn install(cgroup: BorrowedFd, n: &Network) -> Result<()> {
    let rules = n.rules()?;
    const INET4_CONNECT: u32 = 10;
    const INET6_CONNECT: u32 = 11;
    const UDP4_SENDMSG: u32 = 14;
    const UDP6_SENDMSG: u32 = 15;
    for (v6, types) in [
        (false, [INET4_CONNECT, UDP4_SENDMSG]),
        (true, [INET6_CONNECT, UDP6_SENDMSG]),
    ] {
        let map = create_trie(if v6 { 16 } else { 4 })?;
        let own: Vec<Rule> = rules
            .iter()
            .filter(|r| r.addr.is_ipv6() == v6)
            .copied()
            .collect();
        for (k, v) in entries(&own)? {
            update(std::os::fd::AsFd::as_fd(&map), &k, &v)?;
        }
        let prog = program(map.as_raw_fd(), v6, n.default);
        for t in types {
            let fd = load(&prog, t)?;
            attach(cgroup, std::os::fd::AsFd::as_fd(&fd), t)?;
        }
    }
    Ok(())
}
