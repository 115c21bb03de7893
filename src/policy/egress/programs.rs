//! The cgroup BPF programs of the egress policy, built as instructions in Rust (no nightly
//! toolchain or clang needed here, as runtimes build their device filter), loaded with bpf(2)
//! directly: four programs and two small maps do not justify aya's or libbpf-rs's weight.
//!
//! Maps: an LPM trie per family, key {prefixlen, address}, value up to 8 port ranges with a
//! verdict each; the longest matching prefix decides, its ranges are tried in order (deny
//! first), no match -> the policy's default. Programs: connect4/sendmsg4 and connect6/sendmsg6.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::spec::interception::{Network, Rule, Verdict};
use crate::sys::ebpf::{
    self, bpf, insn, owned, Insn, ADD64_K, CALL, END_BE, EXIT, JA, JEQ_K, JGT_X, JLT_X, LDX_H,
    LDX_W, LD_IMM64, MOV64_K, MOV64_X, RSH64_K, STX_W, ST_W,
};

const RANGES: usize = 8;
const VALUE_SIZE: usize = RANGES * 8;

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
/// Rules come with their index in `Network::rules()`, which denial records carry. The trie
/// returns only the longest matching prefix, so each prefix's value also carries the port rules
/// of every shorter prefix covering it, most specific first: a /32 rule for one port does not
/// hide a /8 rule for another.
pub fn entries(rules: &[(usize, Rule)]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut prefixes: Vec<(IpAddr, u8)> = rules.iter().map(|(_, r)| (r.addr, r.prefix)).collect();
    prefixes.sort();
    prefixes.dedup();
    let mut out = Vec::new();
    for (addr, prefix) in prefixes {
        let mut applicable: Vec<&(usize, Rule)> = rules
            .iter()
            .filter(|(_, r)| r.prefix <= prefix && crate::spec::interception::covers(r, addr))
            .collect();
        applicable.sort_by_key(|(id, r)| {
            (
                std::cmp::Reverse(r.prefix),
                r.verdict == Verdict::Allow,
                *id,
            )
        });
        if applicable.len() > RANGES {
            return Err(Error::spec(
                "process.interception.network",
                format!("more than {RANGES} port rules apply to {addr}/{prefix}"),
            ));
        }
        let bytes = match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let mut key = (prefix as u32).to_ne_bytes().to_vec();
        key.extend_from_slice(&bytes);
        let mut value = vec![0u8; VALUE_SIZE];
        for (i, (rule_id, r)) in applicable.iter().enumerate() {
            let v = &mut value[i * 8..i * 8 + 8];
            v[0..2].copy_from_slice(&r.ports.0.to_ne_bytes());
            v[2..4].copy_from_slice(&r.ports.1.to_ne_bytes());
            let verdict: u32 = if r.verdict == Verdict::Allow {
                1
            } else {
                2 | ((*rule_id as u32) << 8)
            };
            v[4..8].copy_from_slice(&verdict.to_ne_bytes());
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Which call a record comes from.
pub const KIND_CONNECT: i32 = 0;
pub const KIND_SENDMSG: i32 = 1;
/// The rule id a default-policy denial carries.
pub const DEFAULT_RULE: u32 = 0x00ff_ffff;

/// The program for one family and attach point: key built on the stack from the destination,
/// trie lookup, the port ranges of the match tested in order; no match -> `default`. A denial
/// writes a record {kind, port, rule, family, pid, 0, address[16]} to the ring buffer for the
/// violation log, then fails the call with EPERM.
fn program(map: RawFd, ringbuf: RawFd, v6: bool, default: Verdict, kind: i32) -> Vec<Insn> {
    let key_len: i16 = if v6 { 20 } else { 8 };
    let mut p = vec![insn(MOV64_X, 6, 1, 0, 0)]; // r6 = ctx (callee-saved)
    p.push(insn(LDX_W, 3, 6, 24, 0)); // user_port, network order in the low 16 bits
    p.push(insn(END_BE, 3, 0, 0, 16)); // to host order
    p.push(insn(STX_W, 10, 3, -60, 0)); // record.port (calls clobber r1-r5)
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
    let mut to_default = vec![p.len()];
    p.push(insn(JEQ_K, 0, 0, 0, 0)); // no prefix matched
    p.push(insn(LDX_W, 3, 10, -60, 0)); // port again
    let mut to_allow = Vec::new();
    let mut to_deny = Vec::new();
    for i in 0..RANGES as i16 {
        // r4 = verdict word; 0 ends the list. lo <= port <= hi, else the next range.
        p.push(insn(LDX_W, 4, 0, i * 8 + 4, 0));
        to_default.push(p.len());
        p.push(insn(JEQ_K, 4, 0, 0, 0));
        p.push(insn(LDX_H, 5, 0, i * 8, 0));
        p.push(insn(JLT_X, 3, 5, 4, 0)); // port < lo: on to the next range
        p.push(insn(LDX_H, 5, 0, i * 8 + 2, 0));
        p.push(insn(JGT_X, 3, 5, 2, 0)); // port > hi: on to the next range
        to_allow.push(p.len());
        p.push(insn(JEQ_K, 4, 0, 0, 1)); // verdict allow
        to_deny.push(p.len());
        p.push(insn(JA, 0, 0, 0, 0)); // verdict deny, r4 = 2 | rule << 8
    }
    let default_label = p.len();
    if default == Verdict::Allow {
        to_allow.push(p.len());
        p.push(insn(JA, 0, 0, 0, 0));
    } else {
        p.push(insn(MOV64_K, 4, 0, 0, (2 | (DEFAULT_RULE << 8)) as i32));
    }
    let deny_label = p.len();
    p.push(insn(STX_W, 10, 4, -56, 0)); // record.rule
    p.push(insn(ST_W, 10, 0, -64, kind));
    p.push(insn(ST_W, 10, 0, -52, if v6 { 6 } else { 4 }));
    p.push(insn(CALL, 0, 0, 0, 14)); // bpf_get_current_pid_tgid
    p.push(insn(RSH64_K, 0, 0, 0, 32));
    p.push(insn(STX_W, 10, 0, -48, 0)); // record.pid (tgid)
    p.push(insn(ST_W, 10, 0, -44, 0));
    for w in 0..4i16 {
        if v6 {
            p.push(insn(LDX_W, 2, 6, 8 + 4 * w, 0));
            p.push(insn(STX_W, 10, 2, -40 + 4 * w, 0));
        } else if w == 0 {
            p.push(insn(LDX_W, 2, 6, 4, 0));
            p.push(insn(STX_W, 10, 2, -40, 0));
        } else {
            p.push(insn(ST_W, 10, 0, -40 + 4 * w, 0));
        }
    }
    p.push(insn(LD_IMM64, 1, 1, 0, ringbuf));
    p.push(insn(0, 0, 0, 0, 0));
    p.push(insn(MOV64_X, 2, 10, 0, 0));
    p.push(insn(ADD64_K, 2, 0, 0, -64));
    p.push(insn(MOV64_K, 3, 0, 0, RECORD as i32));
    p.push(insn(MOV64_K, 4, 0, 0, 0));
    p.push(insn(CALL, 0, 0, 0, 130)); // bpf_ringbuf_output: a full buffer only loses the record
    p.push(insn(MOV64_K, 0, 0, 0, 0)); // EPERM
    p.push(insn(EXIT, 0, 0, 0, 0));
    let allow_label = p.len();
    p.push(insn(MOV64_K, 0, 0, 0, 1));
    p.push(insn(EXIT, 0, 0, 0, 0));
    for (list, label) in [
        (to_default, default_label),
        (to_allow, allow_label),
        (to_deny, deny_label),
    ] {
        for at in list {
            p[at].off = (label - at - 1) as i16;
        }
    }
    p
}

/// Size of one violation record in the ring buffer.
pub const RECORD: usize = 40;

/// A BPF ring buffer for denial records (the supervisor reads it).
pub fn create_ringbuf() -> Result<OwnedFd> {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&27u32.to_ne_bytes()); // BPF_MAP_TYPE_RINGBUF
    attr[12..16].copy_from_slice(&(64u32 * 1024).to_ne_bytes()); // bytes, a power of 2
    bpf(0, &mut attr)
        .map(owned)
        .map_err(|e| Error::sys("bpf", "create the violation ring buffer", e))
}

/// Loads the maps and programs of `n`, with denials reported to `ringbuf`, and attaches them to
/// the cgroup at `cgroup`. The attachment keeps them alive until the cgroup is removed.
pub fn install(cgroup: BorrowedFd, n: &Network, ringbuf: BorrowedFd) -> Result<()> {
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
        let own: Vec<(usize, Rule)> = rules
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, r)| r.addr.is_ipv6() == v6)
            .collect();
        for (k, v) in entries(&own)? {
            update(std::os::fd::AsFd::as_fd(&map), &k, &v)?;
        }
        for t in types {
            let kind = if t == INET4_CONNECT || t == INET6_CONNECT {
                KIND_CONNECT
            } else {
                KIND_SENDMSG
            };
            let prog = program(map.as_raw_fd(), ringbuf.as_raw_fd(), v6, n.default, kind);
            let fd = ebpf::load(
                &prog,
                18, /* CGROUP_SOCK_ADDR */
                t,
                "the egress program",
            )?;
            // BPF_F_ALLOW_MULTI: beside programs others attached.
            ebpf::attach(
                cgroup,
                std::os::fd::AsFd::as_fd(&fd),
                t,
                2,
                "the egress program",
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_prefix_keeps_the_ports_of_wider_rules() {
        let n = Network {
            deny: vec!["127.0.0.0/8:53".into(), "127.0.0.1:9090".into()],
            ..Default::default()
        };
        let rules: Vec<(usize, Rule)> = n
            .rules()
            .unwrap()
            .into_iter()
            .enumerate()
            .filter(|(_, r)| r.addr.is_ipv4())
            .collect();
        let e = entries(&rules).unwrap();
        let host = e
            .iter()
            .find(|(k, _)| k[0..4] == 32u32.to_ne_bytes() && k[4..8] == [127, 0, 0, 1])
            .unwrap();
        let ports: Vec<(u16, u16)> = host
            .1
            .chunks(8)
            .filter(|c| c[4..8] != [0; 4])
            .map(|c| {
                (
                    u16::from_ne_bytes([c[0], c[1]]),
                    u16::from_ne_bytes([c[2], c[3]]),
                )
            })
            .collect();
        assert_eq!(ports, vec![(9090, 9090), (53, 53)]);
    }
}
