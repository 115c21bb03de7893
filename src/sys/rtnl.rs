//! The few rtnetlink requests ward makes itself (no `ip` subprocess): bring a link up, add and
//! delete an IPv4 address, add a local route (`ip route add local PREFIX dev LINK`). Each opens a NETLINK_ROUTE socket in the calling thread's network
//! namespace, sends one request with NLM_F_ACK and reads the kernel's answer; errors name the
//! request (see the kernel's include/uapi/linux/{netlink,rtnetlink,if_addr}.h for the layouts).

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use crate::error::{Error, Result};

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RT_TABLE_LOCAL: u8 = 255;
const RTPROT_BOOT: u8 = 3;
const RTN_LOCAL: u8 = 2;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFF_UP: u32 = 0x1;
/// `RT_SCOPE_HOST`: valid only inside this host (never picked as a source for other links).
pub const SCOPE_HOST: u8 = 254;

/// A netlink message: header, fixed part, then attributes (each 4-byte aligned).
fn message(kind: u16, flags: u16, fixed: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    m[4..6].copy_from_slice(&kind.to_ne_bytes());
    m[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence number
    m.extend_from_slice(fixed);
    for (kind, data) in attrs {
        let len = 4 + data.len();
        m.extend_from_slice(&(len as u16).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(data);
        m.resize(m.len().next_multiple_of(4), 0);
    }
    let total = m.len() as u32;
    m[0..4].copy_from_slice(&total.to_ne_bytes());
    m
}

/// Sends `msg` and returns the kernel's verdict (the errno of its NLMSG_ERROR answer).
fn request(msg: &[u8]) -> std::result::Result<(), Errno> {
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    sendto(
        sock.as_raw_fd(),
        msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut buf = [0u8; 4096];
    loop {
        let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if n == 0 {
            return Err(Errno::EBADMSG); // the kernel always answers an NLM_F_ACK request
        }
        let mut at = 0;
        while at + 16 <= n {
            let len = u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
            let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
            if kind == NLMSG_ERROR && at + 20 <= n {
                let b = &buf[at + 16..at + 20];
                let code = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                return match code {
                    0 => Ok(()),
                    c => Err(Errno::from_raw(-c)),
                };
            }
            if len < 16 {
                return Err(Errno::EBADMSG);
            }
            at += (len as usize).next_multiple_of(4);
        }
    }
}

/// Sets IFF_UP on the link `index` (RTM_NEWLINK with ifi_change = IFF_UP).
pub fn link_up(index: u32, name: &str) -> Result<()> {
    let mut ifi = [0u8; 16]; // struct ifinfomsg
    ifi[0] = libc::AF_UNSPEC as u8;
    ifi[4..8].copy_from_slice(&index.to_ne_bytes());
    ifi[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
    ifi[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
    request(&message(RTM_NEWLINK, 0, &ifi, &[]))
        .map_err(|e| Error::sys("netlink", format!("RTM_NEWLINK: set {name} up"), e))
}

fn address(kind: u16, flags: u16, index: u32, addr: Ipv4Addr, prefix: u8, scope: u8) -> Vec<u8> {
    let mut ifa = [0u8; 8]; // struct ifaddrmsg
    ifa[0] = libc::AF_INET as u8;
    ifa[1] = prefix;
    ifa[3] = scope;
    ifa[4..8].copy_from_slice(&index.to_ne_bytes());
    let octets = addr.octets();
    message(
        kind,
        flags,
        &ifa,
        &[(IFA_LOCAL, &octets), (IFA_ADDRESS, &octets)],
    )
}

/// Adds `addr/prefix` to the link `index`. Ok(false): the link already had it.
pub fn add_address(index: u32, name: &str, addr: Ipv4Addr, prefix: u8, scope: u8) -> Result<bool> {
    let msg = address(
        RTM_NEWADDR,
        NLM_F_CREATE | NLM_F_EXCL,
        index,
        addr,
        prefix,
        scope,
    );
    match request(&msg) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(e) => Err(Error::sys(
            "netlink",
            format!("RTM_NEWADDR: add {addr}/{prefix} to {name}"),
            e,
        )),
    }
}

/// Deletes `addr/prefix` from the link `index`. Ok(false): the link did not have it.
pub fn delete_address(index: u32, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<bool> {
    match request(&address(RTM_DELADDR, 0, index, addr, prefix, 0)) {
        Ok(()) => Ok(true),
        Err(Errno::EADDRNOTAVAIL) => Ok(false),
        Err(e) => Err(Error::sys(
            "netlink",
            format!("RTM_DELADDR: delete {addr}/{prefix} from {name}"),
            e,
        )),
    }
}

fn local_route(index: u32, net: Ipv4Addr, prefix: u8) -> Vec<u8> {
    let mut rtm = [0u8; 12]; // struct rtmsg
    rtm[0] = libc::AF_INET as u8;
    rtm[1] = prefix; // rtm_dst_len
    rtm[4] = RT_TABLE_LOCAL;
    rtm[5] = RTPROT_BOOT;
    rtm[6] = SCOPE_HOST;
    rtm[7] = RTN_LOCAL;
    let oif = index.to_ne_bytes();
    let dst = net.octets();
    message(
        RTM_NEWROUTE,
        NLM_F_CREATE | NLM_F_EXCL,
        &rtm,
        &[(RTA_DST, &dst), (RTA_OIF, &oif)],
    )
}

/// Routes every address of `net/prefix` as local on the link `index`, in the local table
/// (`ip route add local net/prefix dev name`): a connection to any of them is delivered to a
/// socket of this namespace. Ok(false): the route was there already.
pub fn add_local_route(index: u32, name: &str, net: Ipv4Addr, prefix: u8) -> Result<bool> {
    match request(&local_route(index, net, prefix)) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(e) => Err(Error::sys(
            "netlink",
            format!("RTM_NEWROUTE: add local {net}/{prefix} dev {name}"),
            e,
        )),
    }
}

/// The index of the link `name` in the calling thread's network namespace.
pub fn index(name: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(name)
        .map_err(|e| Error::sys("if_nametoindex", format!("find the link {name}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_aligned_and_sized() {
        let m = address(
            RTM_NEWADDR,
            NLM_F_CREATE,
            1,
            Ipv4Addr::new(198, 18, 0, 1),
            15,
            SCOPE_HOST,
        );
        // header 16 + ifaddrmsg 8 + two attributes of 4 + 4 bytes.
        assert_eq!(m.len(), 40);
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]), 40);
        assert_eq!(&m[16..20], &[libc::AF_INET as u8, 15, 0, SCOPE_HOST]);
        let mut attr = 8u16.to_ne_bytes().to_vec();
        attr.extend_from_slice(&IFA_LOCAL.to_ne_bytes());
        attr.extend_from_slice(&[198, 18, 0, 1]);
        assert_eq!(&m[24..32], &attr[..]);
        let odd = message(RTM_NEWLINK, 0, &[0; 16], &[(3, b"lo\0")]);
        assert_eq!(odd.len(), 16 + 16 + 8);
        // header 16 + rtmsg 12 + RTA_DST 8 + RTA_OIF 8.
        let r = local_route(1, Ipv4Addr::UNSPECIFIED, 0);
        assert_eq!(r.len(), 44);
        assert_eq!(&r[16..24], &[libc::AF_INET as u8, 0, 0, 0, 255, 3, 254, 2]);
    }
}
