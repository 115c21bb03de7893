//! The egress proxy's sockets, made by ward create inside the container's network namespace
//! (issue 16): `lo` up carrying 198.18.0.1/15, so that the kernel routes the whole reserved
//! range as local there; the first free slot; its four listeners (see `slot`). A socket stays
//! in the namespace it was made in, so the proxy process can serve them from anywhere.
//!
//! The calling thread enters the namespace with setns(2) and comes back before returning; the
//! rest of the process stays where it is.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn,
};

use super::slot::{
    Listeners, Slot, DNS_PORT, EXPLICIT_PORT, LO_ADDR, RANGE, SLOTS, TRANSPARENT_PORT,
};
use crate::error::{Error, Result};
use crate::sys::rtnl;

const BACKLOG: i32 = 1024;

/// Brings the calling thread back to ward's own network namespace when dropped: at the end of
/// `in_netns`, and on an unwinding panic in between.
struct Home(File);

impl Drop for Home {
    fn drop(&mut self) {
        if let Err(e) = setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET) {
            // A ward thread left in a container's network namespace must never go on: whatever
            // it did next (a socket, an address, the proxy's upstream dial) would happen in the
            // container's network, under the container's control. Nothing can be trusted any
            // more, so abort the whole process rather than return.
            tracing::error!("setns back to ward's own network namespace failed: {e}; aborting");
            eprintln!("ward: setns back to its own network namespace failed: {e}; aborting");
            std::process::abort();
        }
    }
}

/// Runs `f` with the calling thread in the network namespace `netns`, then puts the thread
/// back in the namespace it was in (or aborts the process, see `Home`).
pub(super) fn in_netns<T>(
    netns: BorrowedFd,
    what: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    const OWN: &str = "/proc/thread-self/ns/net";
    let home = File::open(OWN).map_err(|e| Error::io("open", OWN, e))?;
    let id = |fd: BorrowedFd| {
        nix::sys::stat::fstat(fd.as_raw_fd())
            .ok()
            .map(|st| (st.st_dev, st.st_ino))
    };
    if id(netns).is_some() && id(netns) == id(home.as_fd()) {
        return Err(Error::Host(format!(
            "egress proxy: refusing to {what} in ward's own network namespace (the container \
             needs a network namespace of its own or one joined by path)"
        )));
    }
    setns(netns, CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::sys(
            "setns",
            format!("enter the container's network namespace to {what}"),
            e,
        )
    })?;
    let _home = Home(home);
    f()
}

/// `lo` up with 198.18.0.1/15 (host scope: never chosen as the source address of traffic
/// leaving by another link), in the calling thread's namespace.
pub(super) fn prepare_lo() -> Result<u32> {
    let lo = rtnl::index("lo")?;
    rtnl::link_up(lo, "lo")?;
    rtnl::add_address(lo, "lo", LO_ADDR, RANGE.1, rtnl::SCOPE_HOST)?;
    Ok(lo)
}

pub(super) fn tcp_listener(addr: Ipv4Addr, port: u16) -> Result<OwnedFd> {
    let what = format!("the egress proxy's TCP listener on {addr}:{port}");
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socket", what.clone(), e))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)
        .map_err(|e| Error::sys("setsockopt", format!("SO_REUSEADDR on {what}"), e))?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(addr, port)),
    )
    .map_err(|e| Error::sys("bind", what.clone(), e))?;
    let backlog = Backlog::new(BACKLOG).map_err(|e| Error::sys("listen", what.clone(), e))?;
    listen(&fd, backlog).map_err(|e| Error::sys("listen", what, e))?;
    Ok(fd)
}

/// The UDP DNS socket of `slot`; Ok(None) when another proxy of this namespace holds the slot.
pub(super) fn dns_udp(slot: Slot) -> Result<Option<OwnedFd>> {
    let addr = SocketAddrV4::new(slot.proxy(), DNS_PORT);
    let what = format!("the egress proxy's DNS socket on {addr}/udp");
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socket", what.clone(), e))?;
    match bind(fd.as_raw_fd(), &SockaddrIn::from(addr)) {
        Ok(()) => Ok(Some(fd)),
        Err(Errno::EADDRINUSE) => Ok(None),
        Err(e) => Err(Error::sys("bind", what, e)),
    }
}

/// Whether a proxy of this namespace holds `slot` (its DNS port is bound).
fn held(slot: Slot) -> Result<bool> {
    match dns_udp(slot) {
        Ok(free) => Ok(free.is_none()),
        // The range is not (or no longer) on lo: nobody can hold the slot.
        Err(Error::Sys {
            source: Errno::EADDRNOTAVAIL,
            ..
        }) => Ok(false),
        Err(e) => Err(e),
    }
}

fn claim_slot() -> Result<Listeners> {
    for index in 0..SLOTS {
        let slot = Slot { index };
        let Some(dns_udp) = dns_udp(slot)? else {
            continue;
        };
        return Ok(Listeners {
            slot,
            dns_udp,
            dns_tcp: tcp_listener(slot.proxy(), DNS_PORT)?,
            explicit: tcp_listener(slot.proxy(), EXPLICIT_PORT)?,
            transparent: vec![tcp_listener(slot.proxy(), TRANSPARENT_PORT)?],
        });
    }
    Err(Error::Host(format!(
        "egress proxy: all {SLOTS} slots of {}/{} in the container's network namespace are in \
         use (one per container with domain rules sharing it)",
        RANGE.0, RANGE.1
    )))
}

/// Prepares `lo` of the network namespace `netns` and opens the listeners of its first free
/// slot (the first whose proxy address has port 53/udp free), from the calling thread.
pub fn open(netns: BorrowedFd) -> Result<Listeners> {
    in_netns(netns, "open the egress proxy's listeners", || {
        prepare_lo()?;
        claim_slot()
    })
}

/// Deletes 198.18.0.1/15 from `lo` of `netns` when a joined namespace outlives the container
/// (a namespace of its own goes with it). Call it once the container's proxy is gone. Ok(true):
/// the range is gone (or was never there); Ok(false): left in place because another proxy
/// still holds a slot of this namespace (a pod's other container).
pub fn remove_range(netns: BorrowedFd) -> Result<bool> {
    in_netns(netns, "remove the egress proxy's address range", || {
        for index in 0..SLOTS {
            if held(Slot { index })? {
                tracing::info!("egress: slot {index} still in use; the range stays on lo");
                return Ok(false);
            }
        }
        let lo = rtnl::index("lo")?;
        rtnl::delete_address(lo, "lo", LO_ADDR, RANGE.1)?;
        Ok(true)
    })
}
