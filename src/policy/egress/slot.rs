//! Where a container's egress proxy lives inside its network namespace (issue 16).
//!
//! ward routes the reserved range 198.18.0.0/15 (RFC 2544, benchmarking: never on the
//! internet) as local on the namespace's loopback. The range is cut into 32 slots of 4096
//! addresses, one per container whose proxy serves that namespace (containers of a pod share
//! one namespace, each with its own policy and proxy). In slot `k`:
//! - `base + 1` is the proxy's own address: DNS on port 53 (UDP and TCP), the explicit proxy
//!   (HTTP CONNECT, absolute-form HTTP and SOCKS5, told apart by the first byte) on port 3128,
//!   and the transparent listener on port 3129;
//! - `base + 2 ..= base + 4094` are handed out by the proxy's DNS, one per allowed name; a TCP
//!   connection to any port of one of them is steered (sk_lookup) to the transparent listener,
//!   whose accepted socket's local address says which name the client resolved.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

/// The whole reserved range (routed as local on the namespace's `lo`).
pub const RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 15);
/// Address given to `lo` so that the kernel routes all of `RANGE` as local.
pub const LO_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const SLOTS: u8 = 32;
pub const SLOT_PREFIX: u8 = 20;
pub const SLOT_SIZE: u32 = 1 << (32 - SLOT_PREFIX);
pub const DNS_PORT: u16 = 53;
pub const EXPLICIT_PORT: u16 = 3128;
pub const TRANSPARENT_PORT: u16 = 3129;

/// One container's share of the reserved range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub index: u8,
}

impl Slot {
    pub fn base(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(RANGE.0) + u32::from(self.index) * SLOT_SIZE)
    }

    /// The proxy's own address (DNS, explicit proxy, transparent listener).
    pub fn proxy(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base()) + 1)
    }

    /// The addresses the DNS hands out for names, in order.
    pub fn names(self) -> impl Iterator<Item = Ipv4Addr> {
        let b = u32::from(self.base());
        (b + 2..b + SLOT_SIZE - 1).map(Ipv4Addr::from)
    }

    pub fn contains(self, a: Ipv4Addr) -> bool {
        u32::from(a) >> (32 - SLOT_PREFIX) == u32::from(self.base()) >> (32 - SLOT_PREFIX)
    }

    /// The `proxyEnv` URL of the explicit proxy.
    pub fn proxy_url(self, scheme: &str) -> String {
        format!("{scheme}://{}:{EXPLICIT_PORT}", self.proxy())
    }
}

/// The proxy's sockets, made inside the container's network namespace (bound, listening,
/// non-blocking, close-on-exec) before the proxy process exists.
#[derive(Debug)]
pub struct Listeners {
    pub slot: Slot,
    /// UDP, bound to `proxy():53`.
    pub dns_udp: OwnedFd,
    /// TCP, listening on `proxy():53`.
    pub dns_tcp: OwnedFd,
    /// TCP, listening on `proxy():3128`.
    pub explicit: OwnedFd,
    /// TCP: the kernel path's one, listening on `proxy():3129`, to which every other address
    /// of the slot is steered; the netns wall's, one on 0.0.0.0:P per port P (`netwall`).
    pub transparent: Vec<OwnedFd>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_tile_the_range() {
        let first = Slot { index: 0 };
        let last = Slot { index: SLOTS - 1 };
        assert_eq!(first.proxy(), LO_ADDR);
        assert_eq!(last.base(), Ipv4Addr::new(198, 19, 240, 0));
        assert!(last.contains(Ipv4Addr::new(198, 19, 255, 255)));
        assert!(!first.contains(Ipv4Addr::new(198, 18, 16, 0)));
        assert_eq!(first.names().next(), Some(Ipv4Addr::new(198, 18, 0, 2)));
        assert_eq!(first.names().last(), Some(Ipv4Addr::new(198, 18, 15, 254)));
        assert_eq!(first.names().count(), 4093);
        assert_eq!(first.proxy_url("http"), "http://198.18.0.1:3128");
    }
}
