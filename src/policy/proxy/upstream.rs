//! Which upstream addresses the egress proxy may dial (issue 16, "Upstream").
//!
//! The proxy resolves an allowed name itself and dials exactly the address it judged here, with
//! no second lookup, so a DNS answer cannot point an allowed name at the host, at a cloud's
//! metadata service or at a private network (DNS rebinding). Refused whatever the IP rules say:
//! unspecified, loopback, link-local, multicast, broadcast, reserved blocks, every address of
//! the host's own interfaces (and their subnet broadcasts), and the cloud metadata endpoints.
//! Refused unless an IP rule explicitly allows them: the private blocks (RFC 1918, shared CGNAT
//! space, ULA, ...). Refused when an IP rule denies them: anything. An IPv6 address that carries
//! an IPv4 one (mapped, translated, compatible, NAT64, 6to4, Teredo) is judged by the IPv4 it
//! carries, since that is where the packets end up. The documentation blocks (192.0.2.0/24,
//! 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20) are not refused: tests use them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};
use crate::spec::interception::{covers, Rule, Verdict};

/// Why an address is refused; `as_str` is the word the violation log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Unspecified,
    Loopback,
    LinkLocal,
    Multicast,
    Broadcast,
    /// Reserved by IANA (240.0.0.0/4, the rest of ::/8, discard-only 100::/64).
    Reserved,
    CloudMetadata,
    /// Assigned to one of the host's own interfaces.
    HostAddress,
    /// A private block and no IP rule allows it.
    Private,
    /// An IP rule denies it.
    DeniedByRule,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::Loopback => "loopback",
            Reason::LinkLocal => "link-local",
            Reason::Multicast => "multicast",
            Reason::Broadcast => "broadcast",
            Reason::Reserved => "reserved",
            Reason::CloudMetadata => "cloud-metadata",
            Reason::HostAddress => "host-address",
            Reason::Private => "private",
            Reason::DeniedByRule => "ip-rule",
        }
    }
}

/// A refused upstream address, with what the log needs to say why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The address that was asked for.
    pub addr: IpAddr,
    pub reason: Reason,
    /// The block that matched, e.g. `127.0.0.0/8`, `host interface`, `IP rule`.
    pub range: &'static str,
    /// The IPv4 address an IPv6 one carried, when that is what was judged.
    pub embedded: Option<Ipv4Addr>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.addr,
            self.reason.as_str(),
            self.range
        )?;
        if let Some(v4) = self.embedded {
            write!(f, ", judged by the IPv4 address {v4} it carries")?;
        }
        Ok(())
    }
}

/// The addresses of the host's own interfaces, and the IPv4 subnet broadcasts among them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostAddrs {
    addrs: Vec<IpAddr>,
    broadcasts: Vec<Ipv4Addr>,
}

impl HostAddrs {
    pub fn new(
        addrs: impl IntoIterator<Item = IpAddr>,
        broadcasts: impl IntoIterator<Item = Ipv4Addr>,
    ) -> Self {
        let mut addrs: Vec<IpAddr> = addrs.into_iter().collect();
        addrs.sort_unstable();
        addrs.dedup();
        let mut broadcasts: Vec<Ipv4Addr> = broadcasts.into_iter().collect();
        broadcasts.sort_unstable();
        broadcasts.dedup();
        HostAddrs { addrs, broadcasts }
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        self.addrs.binary_search(&a).is_ok()
    }

    pub fn is_broadcast(&self, a: Ipv4Addr) -> bool {
        self.broadcasts.binary_search(&a).is_ok()
    }
}

/// The addresses of every interface in the calling thread's network namespace (getifaddrs).
/// Interfaces come and go (a bridge, a VPN, a new DHCP lease): the proxy should take this again
/// before judging, or at least every few seconds, not once at start.
pub fn host_addrs() -> Result<HostAddrs> {
    let list = nix::ifaddrs::getifaddrs()
        .map_err(|e| Error::sys("getifaddrs", "the addresses of the host's interfaces", e))?;
    let mut addrs = Vec::new();
    let mut broadcasts = Vec::new();
    for ifa in list {
        if let Some(a) = ifa.address.as_ref() {
            if let Some(v4) = a.as_sockaddr_in() {
                addrs.push(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = a.as_sockaddr_in6() {
                addrs.push(IpAddr::V6(v6.ip()));
            }
        }
        if let Some(b) = ifa.broadcast.as_ref().and_then(|b| b.as_sockaddr_in()) {
            broadcasts.push(b.ip());
        }
    }
    Ok(HostAddrs::new(addrs, broadcasts))
}

/// What the IP rules (`process.interception.network`) say about `addr` on `port`, as the
/// kernel wall decides it: of the rules whose prefix covers the address and whose port range
/// holds the port, the longest prefix wins, deny before allow at one length. `None`: no rule
/// names it (the policy's default is not an explicit allow of a private block).
pub fn ip_verdict(rules: &[Rule], addr: IpAddr, port: u16) -> Option<Verdict> {
    rules
        .iter()
        .filter(|r| covers(r, addr) && r.ports.0 <= port && port <= r.ports.1)
        .min_by_key(|r| (std::cmp::Reverse(r.prefix), r.verdict == Verdict::Allow))
        .map(|r| r.verdict)
}

/// Whether the proxy must refuse to dial `addr`, and why. `ip_rules` tells what the IP rules
/// say about an address (see `ip_verdict`; the caller binds the port).
pub fn refuse(
    addr: IpAddr,
    host: &HostAddrs,
    ip_rules: impl Fn(IpAddr) -> Option<Verdict>,
) -> Option<Refusal> {
    let verdict = match addr {
        IpAddr::V4(a) => judge_v4(a, host, &ip_rules).map(|(r, range)| (r, range, None)),
        IpAddr::V6(a) => judge_v6(a, host, &ip_rules),
    };
    verdict.map(|(reason, range, embedded)| Refusal {
        addr,
        reason,
        range,
        embedded,
    })
}

type Block<T> = (T, u8, Reason, &'static str);

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

const fn v6(s: [u16; 8]) -> u128 {
    Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]).to_bits()
}

fn in_block<T>(a: T, net: T, len: u8) -> bool
where
    T: Copy + PartialEq + std::ops::Shr<u32, Output = T>,
{
    let width = (std::mem::size_of::<T>() * 8) as u32;
    len == 0 || a >> (width - len as u32) == net >> (width - len as u32)
}

fn first<T>(a: T, table: &[Block<T>]) -> Option<(Reason, &'static str)>
where
    T: Copy + PartialEq + std::ops::Shr<u32, Output = T>,
{
    table
        .iter()
        .find(|(net, len, _, _)| in_block(a, *net, *len))
        .map(|&(_, _, reason, range)| (reason, range))
}

/// Cloud metadata services, first (several sit inside blocks with a vaguer name).
#[rustfmt::skip]
const METADATA_V4: &[Block<u32>] = &[
    (v4(169, 254, 169, 254), 32, Reason::CloudMetadata, "169.254.169.254 (instance metadata: AWS, GCP, Azure, OCI, OpenStack, DigitalOcean)"),
    (v4(169, 254, 170, 2), 32, Reason::CloudMetadata, "169.254.170.2 (AWS ECS task metadata)"),
    (v4(169, 254, 170, 23), 32, Reason::CloudMetadata, "169.254.170.23 (AWS EKS pod identity)"),
    (v4(169, 254, 0, 23), 32, Reason::CloudMetadata, "169.254.0.23 (Tencent Cloud metadata)"),
    (v4(100, 100, 100, 200), 32, Reason::CloudMetadata, "100.100.100.200 (Alibaba Cloud metadata)"),
    (v4(168, 63, 129, 16), 32, Reason::CloudMetadata, "168.63.129.16 (Azure WireServer)"),
    (v4(192, 0, 0, 192), 32, Reason::CloudMetadata, "192.0.0.192 (Oracle Cloud metadata)"),
];

/// Refused whatever the IP rules say.
#[rustfmt::skip]
const HARD_V4: &[Block<u32>] = &[
    (v4(0, 0, 0, 0), 8, Reason::Unspecified, "0.0.0.0/8 (this network)"),
    (v4(127, 0, 0, 0), 8, Reason::Loopback, "127.0.0.0/8"),
    (v4(169, 254, 0, 0), 16, Reason::LinkLocal, "169.254.0.0/16"),
    (v4(224, 0, 0, 0), 4, Reason::Multicast, "224.0.0.0/4"),
    (v4(255, 255, 255, 255), 32, Reason::Broadcast, "255.255.255.255"),
    (v4(240, 0, 0, 0), 4, Reason::Reserved, "240.0.0.0/4"),
];

/// Refused unless an IP rule allows the address.
#[rustfmt::skip]
const PRIVATE_V4: &[Block<u32>] = &[
    (v4(10, 0, 0, 0), 8, Reason::Private, "10.0.0.0/8 (RFC 1918)"),
    (v4(172, 16, 0, 0), 12, Reason::Private, "172.16.0.0/12 (RFC 1918)"),
    (v4(192, 168, 0, 0), 16, Reason::Private, "192.168.0.0/16 (RFC 1918)"),
    (v4(100, 64, 0, 0), 10, Reason::Private, "100.64.0.0/10 (shared address space, CGNAT)"),
    (v4(192, 0, 0, 0), 24, Reason::Private, "192.0.0.0/24 (IETF protocol assignments)"),
    (v4(198, 18, 0, 0), 15, Reason::Private, "198.18.0.0/15 (benchmarking)"),
];

#[rustfmt::skip]
const METADATA_V6: &[Block<u128>] = &[
    (v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]), 128, Reason::CloudMetadata, "fd00:ec2::254 (AWS instance metadata)"),
    (v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23]), 128, Reason::CloudMetadata, "fd00:ec2::23 (AWS EKS pod identity)"),
    (v6([0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254]), 128, Reason::CloudMetadata, "fd20:ce::254 (GCP metadata)"),
];

/// Before the forms that carry IPv4 (`::/96` would read these as 0.0.0.0 and 0.0.0.1).
#[rustfmt::skip]
const EXACT_V6: &[Block<u128>] = &[
    (0, 128, Reason::Unspecified, "::"),
    (1, 128, Reason::Loopback, "::1"),
];

#[rustfmt::skip]
const HARD_V6: &[Block<u128>] = &[
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10, Reason::LinkLocal, "fe80::/10"),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8, Reason::Multicast, "ff00::/8"),
    (0, 8, Reason::Reserved, "::/8 (reserved by IETF)"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64, Reason::Reserved, "100::/64 (discard-only)"),
];

#[rustfmt::skip]
const PRIVATE_V6: &[Block<u128>] = &[
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7, Reason::Private, "fc00::/7 (unique local)"),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0]), 10, Reason::Private, "fec0::/10 (site-local, deprecated)"),
];

type Judged = (Reason, &'static str);

fn judge_v4(
    a: Ipv4Addr,
    host: &HostAddrs,
    ip_rules: &impl Fn(IpAddr) -> Option<Verdict>,
) -> Option<Judged> {
    let bits = a.to_bits();
    if let Some(j) = first(bits, METADATA_V4).or_else(|| first(bits, HARD_V4)) {
        return Some(j);
    }
    if host.contains(IpAddr::V4(a)) {
        return Some((Reason::HostAddress, "host interface"));
    }
    if host.is_broadcast(a) {
        return Some((Reason::Broadcast, "subnet broadcast of a host interface"));
    }
    match ip_rules(IpAddr::V4(a)) {
        Some(Verdict::Deny) => Some((Reason::DeniedByRule, "IP rule")),
        Some(Verdict::Allow) => None,
        None => first(bits, PRIVATE_V4),
    }
}

/// The IPv4 addresses an IPv6 one carries (RFC 4291 mapped and compatible, RFC 6145
/// translated, RFC 6052 NAT64, RFC 3056 6to4, RFC 4380 Teredo): the name of the form, the
/// addresses, and whether the form itself leads into a private network.
fn embedded(a: u128) -> Option<(&'static str, Vec<Ipv4Addr>, bool)> {
    let low = Ipv4Addr::from_bits(a as u32);
    let at = |shift: u32| Ipv4Addr::from_bits((a >> shift) as u32);
    let is = |net: u128, len: u8| in_block(a, net, len);
    if is(v6([0, 0, 0, 0, 0, 0xffff, 0, 0]), 96) {
        Some(("::ffff:0:0/96 (IPv4-mapped)", vec![low], false))
    } else if is(v6([0, 0, 0, 0, 0xffff, 0, 0, 0]), 96) {
        Some(("::ffff:0:0:0/96 (IPv4-translated)", vec![low], false))
    } else if is(0, 96) {
        Some(("::/96 (IPv4-compatible, deprecated)", vec![low], false))
    } else if is(v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96) {
        Some(("64:ff9b::/96 (NAT64)", vec![low], false))
    } else if is(v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48) {
        // Local-use NAT64 (RFC 8215): the operator's prefix length (48..=96) is unknown, so
        // every RFC 6052 position counts; bits 64..72 (the "u" octet) never hold address bits.
        // A position reading into 0.0.0.0/8 is the zero padding of a longer prefix (NAT64 does
        // not translate to "this network"), not an address.
        let b = a.to_be_bytes();
        let pick = |i: [usize; 4]| Ipv4Addr::new(b[i[0]], b[i[1]], b[i[2]], b[i[3]]);
        let positions = [
            pick([6, 7, 9, 10]),
            pick([7, 9, 10, 11]),
            pick([9, 10, 11, 12]),
            low,
        ];
        Some((
            "64:ff9b:1::/48 (local-use NAT64)",
            positions
                .into_iter()
                .filter(|p| p.octets()[0] != 0)
                .collect(),
            true,
        ))
    } else if is(v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16) {
        Some(("2002::/16 (6to4)", vec![at(80)], false))
    } else if is(v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 32) {
        // The client's public address is stored inverted; the server's follows the prefix.
        Some(("2001::/32 (Teredo)", vec![!low, at(64)], false))
    } else {
        None
    }
}

fn judge_v6(
    a: Ipv6Addr,
    host: &HostAddrs,
    ip_rules: &impl Fn(IpAddr) -> Option<Verdict>,
) -> Option<(Reason, &'static str, Option<Ipv4Addr>)> {
    let bits = a.to_bits();
    let plain = |j: Option<Judged>| j.map(|(r, range)| (r, range, None));
    if let Some(j) = first(bits, EXACT_V6).or_else(|| first(bits, METADATA_V6)) {
        return plain(Some(j));
    }
    if host.contains(IpAddr::V6(a)) {
        return plain(Some((Reason::HostAddress, "host interface")));
    }
    if ip_rules(IpAddr::V6(a)) == Some(Verdict::Deny) {
        return plain(Some((Reason::DeniedByRule, "IP rule")));
    }
    if let Some((form, carried, private)) = embedded(bits) {
        for v4 in &carried {
            if let Some((reason, range)) = judge_v4(*v4, host, ip_rules) {
                return Some((reason, range, Some(*v4)));
            }
        }
        // Local-use NAT64 leads into the operator's own network: private in itself.
        if private && ip_rules(IpAddr::V6(a)) != Some(Verdict::Allow) {
            return plain(Some((Reason::Private, form)));
        }
        return None;
    }
    if let Some(j) = first(bits, HARD_V6) {
        return plain(Some(j));
    }
    match ip_rules(IpAddr::V6(a)) {
        Some(_) => None, // Deny returned above
        None => plain(first(bits, PRIVATE_V6)),
    }
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
