//! Steering (issue 16): an sk_lookup program on the container's network namespace hands every
//! TCP connection to a name address of the slot (any address of its /20 but the proxy's own,
//! any port) to the proxy's transparent listener. The kernel runs it before its own listener
//! lookup, for connections arriving in that namespace — on `lo`, where the range is local. The
//! accepted socket keeps the address and port the client dialled as its local address, which
//! tells the proxy the name and the port.
//!
//! Only the container itself may use its proxy: a packet for any address of the slot (the
//! proxy's own included, any protocol) that arrives on a link other than `lo` — a neighbour
//! that routes 198.18.0.0/15 to the container's interface — is dropped here, so the proxy
//! never serves, under this container's policy, someone else.
//!
//! The listener sits in a SOCKMAP (one entry); the program looks it up, assigns it and drops
//! its reference. Everything else (UDP, other addresses, the proxy's own address) passes on
//! to the kernel's usual lookup untouched. The program lives as long as its link: the proxy
//! holds the link fd, so when the proxy dies the steering goes with it and connections to the
//! name addresses are refused (nothing listens on them): fail closed. A closed listener also
//! leaves the SOCKMAP by itself, with the same result.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::slot::{Slot, SLOT_PREFIX};
use crate::error::{Error, Result};
use crate::sys::ebpf::{
    self, bpf, insn, owned, Insn, ADD64_K, AND64_K, CALL, END_BE, EXIT, JA, JEQ_K, JNE_K, LDX_W,
    LD_IMM64, MOV64_K, MOV64_X, RSH64_K, ST_W,
};

const PROG_TYPE_SK_LOOKUP: u32 = 30;
const ATTACH_SK_LOOKUP: u32 = 36;
const MAP_TYPE_SOCKMAP: u32 = 15;

/// Offsets in `struct bpf_sk_lookup` (include/uapi/linux/bpf.h); all 4-byte fields, read
/// whole: `sk` (8 bytes) at 0, then family, protocol, remote_ip4, remote_ip6[4], remote_port
/// (2 bytes + 2 of padding), local_ip4, local_ip6[4], local_port, ingress_ifindex (5.17+).
pub const CTX_FAMILY: i16 = 8;
pub const CTX_PROTOCOL: i16 = 12;
pub const CTX_LOCAL_IP4: i16 = 40;
pub const CTX_INGRESS_IFINDEX: i16 = 64;
/// `lo` has this index in every network namespace (LOOPBACK_IFINDEX).
const LO_IFINDEX: i32 = 1;

const AF_INET: i32 = 2;
const IPPROTO_TCP: i32 = 6;
const SK_DROP: i32 = 0;
const SK_PASS: i32 = 1;
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_SK_RELEASE: i32 = 86;
const HELPER_SK_ASSIGN: i32 = 124;

/// The sk_lookup program for `slot`, with the listener in the SOCKMAP `map` at key 0.
pub fn program(map: RawFd, slot: Slot) -> Vec<Insn> {
    let host_bits = 32 - SLOT_PREFIX as i32;
    let slot_net = (u32::from(slot.base()) >> host_bits) as i32;
    let proxy_host = (u32::from(slot.proxy()) & ((1 << host_bits) - 1)) as i32;
    let mut to_pass = Vec::new();
    let mut p = vec![insn(MOV64_X, 6, 1, 0, 0)]; // r6 = ctx
    p.push(insn(LDX_W, 2, 6, CTX_FAMILY, 0));
    to_pass.push(p.len());
    p.push(insn(JNE_K, 2, 0, 0, AF_INET));
    p.push(insn(LDX_W, 2, 6, CTX_LOCAL_IP4, 0)); // network order
    p.push(insn(END_BE, 2, 0, 0, 32)); // host order, upper half zero
    p.push(insn(MOV64_X, 3, 2, 0, 0));
    p.push(insn(RSH64_K, 3, 0, 0, host_bits));
    to_pass.push(p.len());
    p.push(insn(JNE_K, 3, 0, 0, slot_net)); // not this slot's /20
    p.push(insn(LDX_W, 3, 6, CTX_INGRESS_IFINDEX, 0));
    let to_drop = p.len();
    p.push(insn(JNE_K, 3, 0, 0, LO_IFINDEX)); // from outside the container
    p.push(insn(LDX_W, 3, 6, CTX_PROTOCOL, 0));
    to_pass.push(p.len());
    p.push(insn(JNE_K, 3, 0, 0, IPPROTO_TCP));
    p.push(insn(AND64_K, 2, 0, 0, (1 << host_bits) - 1));
    to_pass.push(p.len());
    p.push(insn(JEQ_K, 2, 0, 0, proxy_host)); // the proxy's own address: its own listeners
    p.push(insn(ST_W, 10, 0, -4, 0)); // key 0
    p.push(insn(LD_IMM64, 1, 1, 0, map)); // BPF_PSEUDO_MAP_FD
    p.push(insn(0, 0, 0, 0, 0));
    p.push(insn(MOV64_X, 2, 10, 0, 0));
    p.push(insn(ADD64_K, 2, 0, 0, -4));
    p.push(insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM)); // a reference to the listener
    to_pass.push(p.len());
    p.push(insn(JEQ_K, 0, 0, 0, 0)); // no listener (closed): the usual lookup, which refuses
    p.push(insn(MOV64_X, 7, 0, 0, 0));
    p.push(insn(MOV64_X, 1, 6, 0, 0));
    p.push(insn(MOV64_X, 2, 7, 0, 0));
    p.push(insn(MOV64_K, 3, 0, 0, 0));
    p.push(insn(CALL, 0, 0, 0, HELPER_SK_ASSIGN));
    p.push(insn(MOV64_X, 1, 7, 0, 0));
    p.push(insn(CALL, 0, 0, 0, HELPER_SK_RELEASE));
    to_pass.push(p.len());
    p.push(insn(JA, 0, 0, 0, 0));
    let pass = p.len();
    p.push(insn(MOV64_K, 0, 0, 0, SK_PASS));
    p.push(insn(EXIT, 0, 0, 0, 0));
    let drop = p.len();
    p.push(insn(MOV64_K, 0, 0, 0, SK_DROP));
    p.push(insn(EXIT, 0, 0, 0, 0));
    for at in to_pass {
        p[at].off = (pass - at - 1) as i16;
    }
    p[to_drop].off = (drop - to_drop - 1) as i16;
    p
}

/// The one-entry SOCKMAP that holds the transparent listener (key 0). The DNS redirect's
/// connect programs read it too: an empty map (the proxy died, its listener closed) refuses
/// connections to the name addresses.
pub fn create_sockmap() -> Result<OwnedFd> {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&MAP_TYPE_SOCKMAP.to_ne_bytes());
    attr[4..8].copy_from_slice(&4u32.to_ne_bytes()); // key: u32 index
    attr[8..12].copy_from_slice(&4u32.to_ne_bytes()); // value: a socket fd
    attr[12..16].copy_from_slice(&1u32.to_ne_bytes());
    attr[28..38].copy_from_slice(b"ward_steer"); // map_name, 16 bytes
    bpf(0, &mut attr)
        .map(owned)
        .map_err(|e| Error::sys("bpf", "create the egress steering SOCKMAP", e))
}

/// Steers the name addresses of `slot` in the network namespace `netns` to the listening
/// socket `transparent`. Returns the link: closing it (every copy) detaches the program.
pub fn attach(
    netns: BorrowedFd,
    slot: Slot,
    map: BorrowedFd,
    transparent: BorrowedFd,
) -> Result<OwnedFd> {
    let fd = transparent.as_raw_fd() as u32;
    ebpf::update_elem(
        map,
        &0u32.to_ne_bytes(),
        &fd.to_ne_bytes(),
        "the egress steering SOCKMAP with the transparent listener",
    )?;
    let prog = ebpf::load(
        &program(map.as_raw_fd(), slot),
        PROG_TYPE_SK_LOOKUP,
        ATTACH_SK_LOOKUP,
        "the egress steering program",
    )?;
    // The program holds the map and the link holds the program: both fds can go.
    ebpf::link_create(
        prog.as_fd(),
        netns,
        ATTACH_SK_LOOKUP,
        "the egress steering program to the container's network namespace",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_tests_the_slots_prefix_and_skips_the_proxy() {
        let p = program(3, Slot { index: 2 });
        // 198.18.32.0/20 >> 12 and the proxy's host part (.1).
        assert!(p
            .iter()
            .any(|i| i.code == JNE_K && i.imm == (0xc612_2000u32 >> 12) as i32));
        assert!(p.iter().any(|i| i.code == JEQ_K && i.imm == 1));
        assert_eq!(p.last().map(|i| i.code), Some(EXIT));
        // Every jump lands inside the program.
        for (at, i) in p.iter().enumerate() {
            if matches!(i.code, JEQ_K | JNE_K | JA) {
                let to = at as i64 + 1 + i.off as i64;
                assert!((0..p.len() as i64).contains(&to), "jump at {at} to {to}");
            }
        }
    }

    #[test]
    fn context_offsets_match_the_running_kernel() {
        use crate::sys::ebpf::btf::{Btf, KIND_STRUCT};
        let Some((btf, id)) = Btf::vmlinux()
            .ok()
            .and_then(|b| b.id(KIND_STRUCT, "bpf_sk_lookup").map(|id| (b, id)))
        else {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: no kernel BTF with bpf_sk_lookup"
            );
            return;
        };
        for (member, offset) in [
            ("family", CTX_FAMILY),
            ("protocol", CTX_PROTOCOL),
            ("local_ip4", CTX_LOCAL_IP4),
            ("ingress_ifindex", CTX_INGRESS_IFINDEX),
        ] {
            assert_eq!(
                btf.member_offset(id, member),
                Some(offset as u32),
                "{member}"
            );
        }
    }

    #[test]
    fn the_kernel_accepts_the_program() {
        // Loading runs the verifier: a wrong offset, access size or helper fails here.
        if !nix::unistd::geteuid().is_root() {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: loading BPF programs needs root"
            );
            return;
        }
        let map = create_sockmap().unwrap();
        let prog = program(map.as_raw_fd(), Slot { index: 31 });
        ebpf::load(&prog, PROG_TYPE_SK_LOOKUP, ATTACH_SK_LOOKUP, "test").unwrap();
    }
}
