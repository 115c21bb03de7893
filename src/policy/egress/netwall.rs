//! The netns wall (issue 18): egress by domain name with no cgroup BPF and no privilege, for a
//! container whose network namespace is new and has only `lo`. The namespace itself is the
//! wall (no link leads out); ward's proxy, running outside it, serves listeners made inside:
//!
//! - `lo` up carrying 198.18.0.1/15 (as `listeners`), and `local 0.0.0.0/0 dev lo` ("AnyIP"):
//!   every IPv4 address is local, so a connection to any address lands on whatever listens on
//!   its port in the namespace;
//! - slot 0's DNS (UDP and TCP on 198.18.0.1:53) and explicit proxy (198.18.0.1:3128);
//! - one transparent listener on 0.0.0.0:P for each port of `ports` (80, 443 and every port an
//!   allowedDomains entry names). A connection to a name address 198.18.x.y:P lands on the
//!   0.0.0.0:P listener, whose accepted socket's local address says which name (as with the
//!   sk_lookup steering); a raw address lands there too and the proxy refuses it. A port with
//!   no listener gets ECONNREFUSED: refused either way, unlike the kernel path's any port.
//!
//! Who makes them: root enters the namespace from a thread (`listeners::in_netns`). A user
//! without privilege cannot enter a network namespace its container's user namespace owns from
//! the initial one (setns needs CAP_SYS_ADMIN in the caller's own user namespace too), so a
//! short-lived child enters the container's user namespace first (its owner may), then the
//! network namespace, makes the sockets, hands them back over a socketpair (SCM_RIGHTS) and
//! exits. A socket stays in the namespace it was made in wherever its fd goes.

use std::io::{IoSlice, IoSliceMut};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

use super::listeners::{dns_udp, in_netns, prepare_lo, tcp_listener};
use super::slot::{Listeners, Slot, DNS_PORT, EXPLICIT_PORT};
use crate::error::{Error, Result};
use crate::spec::domains::Domains;
use crate::sys::rtnl;

/// The ports every container in this mode gets a transparent listener on.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];
/// The most transparent listeners (distinct ports) one container gets.
pub const MAX_PORTS: usize = 64;

/// The transparent ports for `domains`: 80, 443 and each port an allowedDomains entry names,
/// sorted, less the proxy's own (53 and 3128 are its DNS and explicit proxy on 198.18.0.1: a
/// wildcard listener there would collide, so names get no transparent service on them).
pub fn ports(domains: &Domains, field: &str) -> Result<Vec<u16>> {
    let mut ports: Vec<u16> = DEFAULT_PORTS
        .into_iter()
        .chain(domains.allowed.iter().filter_map(|p| p.port))
        .filter(|p| *p != DNS_PORT && *p != EXPLICIT_PORT)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    if ports.len() > MAX_PORTS {
        return Err(Error::spec(
            format!("{field}.allowedDomains"),
            format!(
                "{} distinct ports: a network namespace wall serves at most {MAX_PORTS} (one \
                 listener each)",
                ports.len()
            ),
        ));
    }
    Ok(ports)
}

/// The listeners of the namespace `netns` (made now, see the module's text). `userns`: the
/// user namespace that owns it, entered first by a helper child (`None`: the calling thread
/// enters `netns` itself, which needs CAP_SYS_ADMIN over it: root).
pub fn open(netns: BorrowedFd, userns: Option<BorrowedFd>, ports: &[u16]) -> Result<Listeners> {
    match userns {
        None => in_netns(netns, "open the egress proxy's listeners", || make(ports)),
        Some(userns) => via_helper(netns, userns, ports),
    }
}

/// In the calling thread's namespace: `lo`, AnyIP, the sockets.
fn make(ports: &[u16]) -> Result<Listeners> {
    let lo = prepare_lo()?;
    rtnl::add_local_route(lo, "lo", Ipv4Addr::UNSPECIFIED, 0)?;
    let slot = Slot { index: 0 };
    let dns_udp = dns_udp(slot)?.ok_or_else(|| {
        Error::Host(format!(
            "egress proxy: {}:{DNS_PORT}/udp is taken in the container's new network namespace",
            slot.proxy()
        ))
    })?;
    let mut transparent = Vec::with_capacity(ports.len());
    for &p in ports {
        transparent.push(tcp_listener(Ipv4Addr::UNSPECIFIED, p)?);
    }
    Ok(Listeners {
        slot,
        dns_udp,
        dns_tcp: tcp_listener(slot.proxy(), DNS_PORT)?,
        explicit: tcp_listener(slot.proxy(), EXPLICIT_PORT)?,
        transparent,
    })
}

/// The fds of `l` in the order `receive` takes them back.
fn fds(l: &Listeners) -> Vec<RawFd> {
    let mut v = vec![
        l.dns_udp.as_raw_fd(),
        l.dns_tcp.as_raw_fd(),
        l.explicit.as_raw_fd(),
    ];
    v.extend(l.transparent.iter().map(|f| f.as_raw_fd()));
    v
}

const WHAT: &str = "the egress proxy's listener helper";

fn via_helper(netns: BorrowedFd, userns: BorrowedFd, ports: &[u16]) -> Result<Listeners> {
    if ports.len() > MAX_PORTS {
        return Err(Error::Host(format!("{WHAT}: too many ports")));
    }
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", WHAT, e))?;
    // SAFETY: create is single-threaded (the proxy's and the supervisor's double forks rely on
    // it too); the child runs ward's own code only and leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::sys("fork", WHAT, e))? {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            let made = enter(netns, userns).and_then(|()| make(ports));
            let code = match &made {
                Ok(l) => send(theirs.as_fd(), b"ok", &fds(l)),
                Err(e) => send(theirs.as_fd(), format!("error: {e}").as_bytes(), &[]),
            };
            let code = i32::from(code.is_err() || made.is_err());
            // SAFETY: _exit ends the helper without running the parent's handlers or drops.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let got = receive(ours.as_fd(), ports.len() + 3);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut fds = got?.into_iter();
            let mut next = || {
                fds.next()
                    .ok_or_else(|| Error::Host(format!("{WHAT}: fewer sockets than asked")))
            };
            let (dns_udp, dns_tcp, explicit) = (next()?, next()?, next()?);
            let transparent = (0..ports.len()).map(|_| next()).collect::<Result<_>>()?;
            Ok(Listeners {
                slot: Slot { index: 0 },
                dns_udp,
                dns_tcp,
                explicit,
                transparent,
            })
        }
    }
}

/// The helper's way in: the user namespace (its owner has every capability there), then the
/// network namespace it owns.
fn enter(netns: BorrowedFd, userns: BorrowedFd) -> Result<()> {
    setns(userns, CloneFlags::CLONE_NEWUSER).map_err(|e| {
        Error::sys(
            "setns",
            "enter the container's user namespace (CLONE_NEWUSER)",
            e,
        )
    })?;
    setns(netns, CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::sys(
            "setns",
            "enter the container's network namespace (CLONE_NEWNET)",
            e,
        )
    })
}

fn send(sock: BorrowedFd, payload: &[u8], fds: &[RawFd]) -> Result<()> {
    let iov = [IoSlice::new(payload)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsg: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("sendmsg", format!("{WHAT}: SCM_RIGHTS"), e)),
        }
    }
}

/// The helper's one message: "ok" and `want` fds, or "error: ..." (its error, as it said it).
fn receive(sock: BorrowedFd, want: usize) -> Result<Vec<OwnedFd>> {
    let mut data = [0u8; 4096];
    let mut space = nix::cmsg_space!([RawFd; MAX_PORTS + 3]);
    let (bytes, truncated, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut data)];
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => {
                let mut fds = Vec::new();
                for c in m.cmsgs().map_err(|e| Error::sys("recvmsg", WHAT, e))? {
                    if let ControlMessageOwned::ScmRights(got) = c {
                        // SAFETY: the kernel just installed these fds in our table; nothing
                        // else owns them.
                        fds.extend(
                            got.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                break (m.bytes, m.flags.contains(MsgFlags::MSG_CTRUNC), fds);
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("recvmsg", WHAT, e)),
        }
    };
    let said = String::from_utf8_lossy(&data[..bytes]);
    if bytes == 0 {
        return Err(Error::Host(format!("{WHAT} exited without an answer")));
    }
    if said != "ok" {
        return Err(Error::Host(format!(
            "egress proxy: the listeners in the container's network namespace: {}",
            said.strip_prefix("error: ").unwrap_or(&said)
        )));
    }
    if truncated || fds.len() != want {
        return Err(Error::Host(format!(
            "{WHAT}: {} sockets received, {want} expected",
            fds.len()
        )));
    }
    Ok(fds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};

    fn domains(allowed: &[&str]) -> Domains {
        crate::spec::domains::for_tests(allowed, &[])
    }

    #[test]
    fn ports_are_80_443_and_the_rules_own_less_the_proxys() {
        let d = domains(&[
            "a.example",
            "b.example:8443",
            "c.example:53",
            "d.example:3128",
        ]);
        assert_eq!(ports(&d, "f").unwrap(), vec![80, 443, 8443]);
        let many: Vec<String> = (0..70).map(|i| format!("x.example:{}", 1000 + i)).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let e = ports(&domains(&many), "f").unwrap_err().to_string();
        assert!(
            e.contains("f.allowedDomains") && e.contains("at most 64"),
            "{e}"
        );
    }

    fn local(fd: &OwnedFd) -> SocketAddr {
        let l = std::net::TcpListener::from(fd.try_clone().unwrap());
        l.local_addr().unwrap()
    }

    /// What a client in the namespace sees: a name address and a raw address on a listened
    /// port both land on the wildcard listener (with the address dialled as its local one), a
    /// port without a listener is refused.
    fn check_inside(l: &Listeners) {
        assert_eq!(local(&l.explicit), "198.18.0.1:3128".parse().unwrap());
        assert_eq!(local(&l.dns_tcp), "198.18.0.1:53".parse().unwrap());
        assert_eq!(local(&l.transparent[1]), "0.0.0.0:443".parse().unwrap());
        let listener = std::net::TcpListener::from(l.transparent[1].try_clone().unwrap());
        listener.set_nonblocking(false).unwrap();
        for to in ["198.18.0.7:443", "1.2.3.4:443"] {
            let mut c = TcpStream::connect(to).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            assert_eq!(s.local_addr().unwrap(), to.parse().unwrap());
            c.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
        }
        let e = TcpStream::connect("198.18.0.7:444").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    }

    /// Root: the calling thread enters the namespace.
    #[test]
    fn root_makes_them_from_a_thread() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: root only");
            return;
        }
        std::thread::spawn(|| {
            let home = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).unwrap();
            let ns = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
            setns(home.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
            let l = open(ns.as_fd(), None, &[80, 443]).unwrap();
            assert_eq!(l.transparent.len(), 2);
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
            check_inside(&l);
        })
        .join()
        .unwrap();
    }

    /// The helper path: a user namespace with a network namespace of its own (`unshare -Urn`,
    /// as a rootless container's init has), entered through the user namespace.
    #[test]
    fn a_helper_makes_them_through_the_user_namespace() {
        let child = std::process::Command::new("unshare")
            .args(["--user", "--net", "--map-root-user", "sleep", "30"])
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("skipped: no unshare(1)");
            return;
        };
        let pid = child.id();
        let ns = |kind: &str| {
            let own = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
            for _ in 0..200 {
                match std::fs::read_link(format!("/proc/{pid}/ns/{kind}")) {
                    Ok(l) if l != own => {
                        return Some(std::fs::File::open(format!("/proc/{pid}/ns/{kind}")).unwrap())
                    }
                    _ => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
            None
        };
        let (Some(user), Some(net)) = (ns("user"), ns("net")) else {
            let _ = child.kill();
            eprintln!("skipped: no unprivileged user namespaces here");
            return;
        };
        let made = open(net.as_fd(), Some(user.as_fd()), &[80, 443]);
        if let (Ok(l), true) = (&made, nix::unistd::Uid::effective().is_root()) {
            // Only root can follow them in to look (the test thread has no user namespace).
            std::thread::scope(|s| {
                s.spawn(|| {
                    setns(net.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
                    check_inside(l);
                });
            });
        }
        let _ = child.kill();
        let _ = child.wait();
        let l = made.unwrap();
        assert_eq!(l.transparent.len(), 2);
        assert_eq!(local(&l.transparent[0]), "0.0.0.0:80".parse().unwrap());
    }
}
