//! DNS redirect (issue 16): cgroup sock_addr programs on the container's cgroup v2 send every
//! DNS query (destination port 53, UDP or TCP, any server) to the slot's proxy, and make its
//! answers look as if they came from the server the client asked, because glibc and musl drop
//! answers whose source is not the server they sent to.
//!
//! - connect4/sendmsg4: port 53 and not the proxy itself -> the original (address, port) is
//!   kept with the socket, the destination becomes `slot.proxy()` (port 53 stays).
//! - recvmsg4 (UDP) / getpeername4: source `proxy():53` on a socket with a kept original ->
//!   the original is put back.
//! - connect6, recvmsg6/getpeername6: the same for dual-stack IPv6 sockets, with the proxy as
//!   `::ffff:<proxy>` (a v4-mapped address: the kernel sends it over IPv4). An IPv6-only
//!   socket then fails to reach it, as it would fail the wall anyway.
//! - sendmsg6 (an unconnected IPv6 UDP socket sending to a real IPv6 server; a v4-mapped
//!   destination takes the v4 path and its sendmsg4 hook): port 53 -> EPERM. The kernel does
//!   not let a sendmsg6 program rewrite the destination to a v4-mapped address (udpv6_sendmsg
//!   fails such a send with ENOTSUPP, 524, which no resolver understands), and the query must
//!   not reach the server either. glibc connects its UDP sockets (connect6 works); musl sends
//!   to its IPv4 servers as v4-mapped (sendmsg4 works), so only IPv6 nameservers used through
//!   unconnected sockets fail, visibly.
//!
//! Where the original is kept: socket-local storage (BPF_MAP_TYPE_SK_STORAGE), not a hash
//! keyed by socket cookie. The storage lives and dies with the socket, so there is no capacity
//! to exhaust (an LRU hash would evict the originals of long-lived sockets when a client opens
//! many, and its answers would then be dropped) and nothing stale to clean up. The cost is a
//! tiny BTF blob describing the map's key and value, which the kernel requires for this map.
//! A v4 program keeps the original in both forms (v4 and v4-mapped v6): a dual-stack socket's
//! sendto to a v4-mapped server runs the v4 sendmsg hook but the v6 recvmsg hook.
//!
//! One original per socket, the last server it sent to: musl sends one query to all its
//! servers from one socket and accepts an answer from any of them, so that is enough.
//!
//! If the storage cannot be had, the query still goes to the proxy (never to the original
//! server); only its answer then keeps the proxy as its source and the client drops it.
//!
//! Order: attach these BEFORE `programs::install` (the wall). Programs attached to a cgroup
//! with BPF_F_ALLOW_MULTI run in the order attached, so the wall then sees the proxy's address
//! (which it allows) instead of the original server's (which it would refuse).

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::slot::{Slot, DNS_PORT, SLOT_PREFIX};
use crate::error::{Error, Result};
use crate::sys::ebpf::{
    self, bpf, insn, owned, Insn, ADD64_K, AND64_K, CALL, END_BE, EXIT, JA, JEQ32_K, JEQ_K,
    JNE32_K, JNE_K, LDX_DW, LDX_W, LD_IMM64, MOV32_K, MOV64_K, MOV64_X, RSH64_K, STX_W, ST_W,
};

const PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
const INET4_CONNECT: u32 = 10;
const INET6_CONNECT: u32 = 11;
const UDP4_SENDMSG: u32 = 14;
const UDP6_SENDMSG: u32 = 15;
const UDP4_RECVMSG: u32 = 19;
const UDP6_RECVMSG: u32 = 20;
const INET4_GETPEERNAME: u32 = 29;
const INET6_GETPEERNAME: u32 = 30;
const MAP_TYPE_SK_STORAGE: u32 = 24;
const HELPER_SK_STORAGE_GET: i32 = 107;
const SK_STORAGE_GET_F_CREATE: i32 = 1;

/// Offsets in `struct bpf_sock_addr` (include/uapi/linux/bpf.h): user_family, user_ip4,
/// user_ip6[4], user_port (a 4-byte field holding the 2-byte port, network order), family,
/// type, protocol, msg_src_ip4, msg_src_ip6[4], then the socket pointer (8 bytes).
pub const CTX_USER_IP4: i16 = 4;
pub const CTX_USER_IP6: i16 = 8;
pub const CTX_USER_PORT: i16 = 24;
pub const CTX_PROTOCOL: i16 = 36;
const IPPROTO_UDP: i32 = 17;
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_SK_RELEASE: i32 = 86;
pub const CTX_SK: i16 = 64;

/// The kept original, per socket: ip4 (network order), port (as user_port), ip6[4].
const KEPT_IP4: i16 = 0;
const KEPT_PORT: i16 = 4;
const KEPT_IP6: i16 = 8;
const KEPT_SIZE: u32 = 24;

/// A u32 whose bytes in memory are `b` (how the context holds addresses, network order).
fn raw(b: [u8; 4]) -> i32 {
    i32::from_ne_bytes(b)
}

/// The four words of `::ffff:<a>` as the context holds them.
fn mapped(a: Ipv4Addr) -> [i32; 4] {
    [0, 0, raw([0, 0, 0xff, 0xff]), raw(a.octets())]
}

/// Which hook a program is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Hook {
    /// connect or sendmsg: rewrite the destination, keep the original.
    Out,
    /// recvmsg or getpeername: put the original back.
    Back,
    /// sendmsg6: refuse (EPERM), see the module doc.
    Refuse,
}

/// r0 = this socket's storage (created when `create`), or a jump to `out` when there is none.
fn storage(p: &mut Vec<Insn>, map: RawFd, create: bool) {
    p.push(insn(LD_IMM64, 1, 1, 0, map)); // BPF_PSEUDO_MAP_FD
    p.push(insn(0, 0, 0, 0, 0));
    p.push(insn(LDX_DW, 2, 6, CTX_SK, 0));
    p.push(insn(MOV64_K, 3, 0, 0, 0)); // no initial value: zeroes
    let flags = if create { SK_STORAGE_GET_F_CREATE } else { 0 };
    p.push(insn(MOV64_K, 4, 0, 0, flags));
    p.push(insn(CALL, 0, 0, 0, HELPER_SK_STORAGE_GET));
}

/// The program for one family and hook, the storage in `map`, the proxy of `slot`.
/// `listener`: the SOCKMAP holding the proxy's transparent listener (`steer::create_sockmap`).
pub fn program(map: RawFd, listener: RawFd, slot: Slot, v6: bool, hook: Hook) -> Vec<Insn> {
    let proxy = slot.proxy();
    let proxy_words = mapped(proxy);
    let mut to_out = Vec::new();
    let mut p = vec![insn(MOV64_X, 6, 1, 0, 0)]; // r6 = ctx
    if hook == Hook::Out {
        guard_the_slot(&mut p, listener, slot, v6);
    }
    p.push(insn(LDX_W, 2, 6, CTX_USER_PORT, 0));
    p.push(insn(END_BE, 2, 0, 0, 16)); // host order
    to_out.push(p.len());
    p.push(insn(JNE_K, 2, 0, 0, DNS_PORT as i32));
    // Is the address the proxy's? Out: yes -> leave it alone. Back: no -> leave it alone.
    // (sendmsg6 never sees the proxy: its v4-mapped address takes the v4 path.)
    let is_proxy_jumps: Vec<(i16, i32)> = if v6 {
        (0..4)
            .map(|w| (CTX_USER_IP6 + 4 * w as i16, proxy_words[w]))
            .collect()
    } else {
        vec![(CTX_USER_IP4, raw(proxy.octets()))]
    };
    match hook {
        Hook::Refuse => {
            p.push(insn(MOV64_K, 0, 0, 0, 0)); // EPERM
            p.push(insn(EXIT, 0, 0, 0, 0));
        }
        Hook::Out => {
            // Out when every word matches: test all but the last with "differs -> go on".
            let mut go_on = Vec::new();
            let last = is_proxy_jumps.len() - 1;
            for (i, (off, want)) in is_proxy_jumps.iter().enumerate() {
                p.push(insn(LDX_W, 2, 6, *off, 0));
                if i == last {
                    to_out.push(p.len());
                    p.push(insn(JEQ32_K, 2, 0, 0, *want));
                } else {
                    go_on.push(p.len());
                    p.push(insn(JNE32_K, 2, 0, 0, *want));
                }
            }
            let here = p.len();
            for at in go_on {
                p[at].off = (here - at - 1) as i16;
            }
            storage(&mut p, map, true);
            let no_storage = p.len();
            p.push(insn(JEQ_K, 0, 0, 0, 0));
            p.push(insn(LDX_W, 2, 6, CTX_USER_PORT, 0));
            p.push(insn(STX_W, 0, 2, KEPT_PORT, 0));
            if v6 {
                for w in 0..4i16 {
                    p.push(insn(LDX_W, 2, 6, CTX_USER_IP6 + 4 * w, 0));
                    p.push(insn(STX_W, 0, 2, KEPT_IP6 + 4 * w, 0));
                }
            } else {
                p.push(insn(LDX_W, 2, 6, CTX_USER_IP4, 0));
                p.push(insn(STX_W, 0, 2, KEPT_IP4, 0));
                // And as ::ffff:<ip4>, for a dual-stack socket's v6 recvmsg.
                for (w, word) in mapped(Ipv4Addr::UNSPECIFIED).iter().take(3).enumerate() {
                    p.push(insn(MOV32_K, 3, 0, 0, *word));
                    p.push(insn(STX_W, 0, 3, KEPT_IP6 + 4 * w as i16, 0));
                }
                p.push(insn(STX_W, 0, 2, KEPT_IP6 + 12, 0));
            }
            let rewrite = p.len();
            p[no_storage].off = (rewrite - no_storage - 1) as i16;
            // The context takes only register stores (BPF_STX), 4 bytes each.
            if v6 {
                for (w, word) in proxy_words.iter().enumerate() {
                    p.push(insn(MOV32_K, 2, 0, 0, *word));
                    p.push(insn(STX_W, 6, 2, CTX_USER_IP6 + 4 * w as i16, 0));
                }
            } else {
                p.push(insn(MOV32_K, 2, 0, 0, raw(proxy.octets())));
                p.push(insn(STX_W, 6, 2, CTX_USER_IP4, 0));
            }
        }
        Hook::Back => {
            for (off, want) in &is_proxy_jumps {
                p.push(insn(LDX_W, 2, 6, *off, 0));
                to_out.push(p.len());
                p.push(insn(JNE32_K, 2, 0, 0, *want));
            }
            storage(&mut p, map, false);
            to_out.push(p.len());
            p.push(insn(JEQ_K, 0, 0, 0, 0));
            p.push(insn(LDX_W, 2, 0, KEPT_PORT, 0));
            to_out.push(p.len());
            p.push(insn(JEQ_K, 2, 0, 0, 0)); // nothing kept for this socket
            p.push(insn(STX_W, 6, 2, CTX_USER_PORT, 0));
            if v6 {
                for w in 0..4i16 {
                    p.push(insn(LDX_W, 2, 0, KEPT_IP6 + 4 * w, 0));
                    p.push(insn(STX_W, 6, 2, CTX_USER_IP6 + 4 * w, 0));
                }
            } else {
                p.push(insn(LDX_W, 2, 0, KEPT_IP4, 0));
                p.push(insn(STX_W, 6, 2, CTX_USER_IP4, 0));
            }
        }
    }
    let out = p.len();
    p.push(insn(MOV64_K, 0, 0, 0, 1)); // allow: these programs never refuse
    p.push(insn(EXIT, 0, 0, 0, 0));
    for at in to_out {
        p[at].off = (out - at - 1) as i16;
    }
    p
}

/// The slot's addresses are local on `lo`, so what the proxy does not take there lands on
/// whatever else listens on every address of the namespace (a pod neighbour's 0.0.0.0
/// socket), around the proxy. Hence, to any address of the slot:
/// - UDP but on port 53 (which the rest of the program sends to the proxy's DNS) -> EPERM;
/// - TCP to a name address while the proxy's transparent listener is gone from `listener`
///   (the proxy died: its steering went with it) -> EPERM, so a dead proxy fails closed.
fn guard_the_slot(p: &mut Vec<Insn>, listener: RawFd, slot: Slot, v6: bool) {
    let host_bits = 32 - SLOT_PREFIX as i32;
    let slot_net = (u32::from(slot.base()) >> host_bits) as i32;
    let proxy_host = (u32::from(slot.proxy()) & ((1 << host_bits) - 1)) as i32;
    let mut to_rest = Vec::new();
    let ip4_at = if v6 {
        let prefix = mapped(Ipv4Addr::UNSPECIFIED);
        for (w, word) in prefix.iter().enumerate().take(3) {
            p.push(insn(LDX_W, 2, 6, CTX_USER_IP6 + 4 * w as i16, 0));
            to_rest.push(p.len());
            p.push(insn(JNE32_K, 2, 0, 0, *word));
        }
        CTX_USER_IP6 + 12
    } else {
        CTX_USER_IP4
    };
    p.push(insn(LDX_W, 7, 6, ip4_at, 0));
    p.push(insn(END_BE, 7, 0, 0, 32)); // host order, upper half zero
    p.push(insn(MOV64_X, 2, 7, 0, 0));
    p.push(insn(RSH64_K, 2, 0, 0, host_bits));
    to_rest.push(p.len());
    p.push(insn(JNE_K, 2, 0, 0, slot_net));
    p.push(insn(LDX_W, 2, 6, CTX_PROTOCOL, 0));
    let to_tcp = p.len();
    p.push(insn(JNE_K, 2, 0, 0, IPPROTO_UDP));
    p.push(insn(LDX_W, 2, 6, CTX_USER_PORT, 0));
    p.push(insn(END_BE, 2, 0, 0, 16));
    to_rest.push(p.len());
    p.push(insn(JEQ_K, 2, 0, 0, DNS_PORT as i32));
    let to_refuse_udp = p.len();
    p.push(insn(JA, 0, 0, 0, 0));
    let tcp = p.len();
    p[to_tcp].off = (tcp - to_tcp - 1) as i16;
    // Not UDP: a name address (not the proxy's own) needs the listener alive.
    p.push(insn(AND64_K, 7, 0, 0, (1 << host_bits) - 1));
    to_rest.push(p.len());
    p.push(insn(JEQ_K, 7, 0, 0, proxy_host));
    p.push(insn(ST_W, 10, 0, -4, 0)); // key 0
    p.push(insn(LD_IMM64, 1, 1, 0, listener)); // BPF_PSEUDO_MAP_FD
    p.push(insn(0, 0, 0, 0, 0));
    p.push(insn(MOV64_X, 2, 10, 0, 0));
    p.push(insn(ADD64_K, 2, 0, 0, -4));
    p.push(insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM)); // a reference to the listener
    let to_refuse = p.len();
    p.push(insn(JEQ_K, 0, 0, 0, 0));
    p.push(insn(MOV64_X, 1, 0, 0, 0));
    p.push(insn(CALL, 0, 0, 0, HELPER_SK_RELEASE));
    to_rest.push(p.len());
    p.push(insn(JA, 0, 0, 0, 0));
    let refuse = p.len();
    p[to_refuse].off = (refuse - to_refuse - 1) as i16;
    p[to_refuse_udp].off = (refuse - to_refuse_udp - 1) as i16;
    p.push(insn(MOV64_K, 0, 0, 0, 0)); // EPERM
    p.push(insn(EXIT, 0, 0, 0, 0));
    let rest = p.len();
    for at in to_rest {
        p[at].off = (rest - at - 1) as i16;
    }
}

/// The BTF the kernel needs for an sk_storage map: [1] int, [2] int[6] (the kept original).
fn btf_blob() -> Vec<u8> {
    let strings = b"\0int\0";
    let mut types = Vec::new();
    let word = |types: &mut Vec<u8>, w: u32| types.extend_from_slice(&w.to_ne_bytes());
    // [1] INT "int": name, info (kind 1), size 4, then encoding SIGNED | bits 32.
    for w in [1, 1 << 24, 4, (1 << 24) | 32] {
        word(&mut types, w);
    }
    // [2] ARRAY: no name, info (kind 3), 0, then element type 1, index type 1, 6 elements.
    for w in [0, 3 << 24, 0, 1, 1, KEPT_SIZE / 4] {
        word(&mut types, w);
    }
    let mut blob = 0xeb9fu16.to_ne_bytes().to_vec(); // magic: the kernel reads native order
    blob.extend_from_slice(&[1, 0]); // version 1, no flags
    for w in [
        24,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.len() as u32,
    ] {
        blob.extend_from_slice(&w.to_ne_bytes()); // hdr_len, type off/len, str off/len
    }
    blob.extend_from_slice(&types);
    blob.extend_from_slice(strings);
    blob
}

fn create_storage() -> Result<OwnedFd> {
    let btf = ebpf::load_btf(&btf_blob(), "the DNS redirect's socket storage")?;
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&MAP_TYPE_SK_STORAGE.to_ne_bytes());
    attr[4..8].copy_from_slice(&4u32.to_ne_bytes());
    attr[8..12].copy_from_slice(&KEPT_SIZE.to_ne_bytes());
    attr[16..20].copy_from_slice(&1u32.to_ne_bytes()); // BPF_F_NO_PREALLOC, required
    attr[28..36].copy_from_slice(b"ward_dns");
    attr[48..52].copy_from_slice(&(btf.as_raw_fd() as u32).to_ne_bytes());
    attr[52..56].copy_from_slice(&1u32.to_ne_bytes()); // key: int
    attr[56..60].copy_from_slice(&2u32.to_ne_bytes()); // value: int[6]
    bpf(0, &mut attr)
        .map(owned)
        .map_err(|e| Error::sys("bpf", "create the DNS redirect's socket storage", e))
}

/// Loads the DNS redirect for `slot` and attaches it to the cgroup `cgroup` (BPF_F_ALLOW_MULTI).
/// Call it BEFORE `programs::install` on the same cgroup (see the module doc). The attachment
/// keeps the programs alive until the cgroup is removed; on an error part of them may stay
/// attached until then (create removes the cgroup of a failed container).
/// `listener`: the SOCKMAP the proxy's transparent listener is put in (see `guard_the_slot`).
pub fn install(cgroup: BorrowedFd, slot: Slot, listener: BorrowedFd) -> Result<()> {
    let map = create_storage()?;
    let hooks = [
        (false, Hook::Out, INET4_CONNECT),
        (false, Hook::Out, UDP4_SENDMSG),
        (false, Hook::Back, UDP4_RECVMSG),
        (false, Hook::Back, INET4_GETPEERNAME),
        (true, Hook::Out, INET6_CONNECT),
        (true, Hook::Refuse, UDP6_SENDMSG),
        (true, Hook::Back, UDP6_RECVMSG),
        (true, Hook::Back, INET6_GETPEERNAME),
    ];
    for (v6, hook, attach_type) in hooks {
        let prog = ebpf::load(
            &program(map.as_raw_fd(), listener.as_raw_fd(), slot, v6, hook),
            PROG_TYPE_CGROUP_SOCK_ADDR,
            attach_type,
            "the DNS redirect program",
        )?;
        ebpf::attach(
            cgroup,
            prog.as_fd(),
            attach_type,
            2,
            "the DNS redirect program",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_have_jumps_inside_and_end_in_allow() {
        for v6 in [false, true] {
            for hook in [Hook::Out, Hook::Back, Hook::Refuse] {
                let p = program(3, 4, Slot { index: 1 }, v6, hook);
                let n = p.len();
                assert_eq!(p[n - 1].code, EXIT);
                assert_eq!((p[n - 2].code, p[n - 2].imm), (MOV64_K, 1));
                for (at, i) in p.iter().enumerate() {
                    if matches!(i.code, JEQ_K | JNE_K | JEQ32_K | JNE32_K) {
                        let to = at as i64 + 1 + i.off as i64;
                        assert!(to > at as i64 && to < n as i64, "{v6} {hook:?}: {at}->{to}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_proxy_is_written_in_network_order() {
        let p = program(3, 4, Slot { index: 1 }, false, Hook::Out);
        let want = i32::from_ne_bytes([198, 18, 16, 1]);
        assert!(p.iter().any(|i| i.code == MOV32_K && i.imm == want));
        assert_eq!(mapped(Ipv4Addr::new(198, 18, 16, 1))[3], want);
        assert_eq!(
            mapped(Ipv4Addr::UNSPECIFIED)[2],
            i32::from_ne_bytes([0, 0, 255, 255])
        );
    }

    #[test]
    fn the_btf_blob_parses() {
        let blob = btf_blob();
        let btf = crate::sys::ebpf::btf::Btf::parse(blob).unwrap();
        assert_eq!(btf.id(1 /* INT */, "int"), Some(1));
    }

    #[test]
    fn context_offsets_match_the_running_kernel() {
        use crate::sys::ebpf::btf::{Btf, KIND_STRUCT};
        let Some((btf, id)) = Btf::vmlinux()
            .ok()
            .and_then(|b| b.id(KIND_STRUCT, "bpf_sock_addr").map(|id| (b, id)))
        else {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: no kernel BTF with bpf_sock_addr"
            );
            return;
        };
        for (member, offset) in [
            ("user_ip4", CTX_USER_IP4),
            ("user_ip6", CTX_USER_IP6),
            ("user_port", CTX_USER_PORT),
        ] {
            assert_eq!(
                btf.member_offset(id, member),
                Some(offset as u32),
                "{member}"
            );
        }
    }

    #[test]
    fn the_kernel_accepts_the_programs() {
        // Loading runs the verifier: a wrong offset, access size or helper fails here.
        // Needs root; attaching is the conformance tests' (conformance/egress_kernel.rs).
        if !nix::unistd::geteuid().is_root() {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: loading BPF programs needs root"
            );
            return;
        }
        let map = create_storage().expect("an sk_storage map with its BTF");
        let listener = super::super::steer::create_sockmap().expect("a SOCKMAP");
        for (v6, hook, t) in [
            (false, Hook::Out, INET4_CONNECT),
            (false, Hook::Out, UDP4_SENDMSG),
            (false, Hook::Back, UDP4_RECVMSG),
            (false, Hook::Back, INET4_GETPEERNAME),
            (true, Hook::Out, INET6_CONNECT),
            (true, Hook::Refuse, UDP6_SENDMSG),
            (true, Hook::Back, UDP6_RECVMSG),
            (true, Hook::Back, INET6_GETPEERNAME),
        ] {
            let prog = program(
                map.as_raw_fd(),
                listener.as_raw_fd(),
                Slot { index: 5 },
                v6,
                hook,
            );
            ebpf::load(&prog, PROG_TYPE_CGROUP_SOCK_ADDR, t, "test").unwrap();
        }
    }
}
