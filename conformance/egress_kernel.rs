//! The kernel side of the egress proxy (issue 16), called as ward's library functions against
//! the real kernel: the listeners and `lo` of a network namespace (`listeners`), sk_lookup
//! steering of the name addresses to the transparent listener (`steer`), and the cgroup DNS
//! redirect (`redirect`). Each test makes its own network namespace (`ip netns`) and cgroup v2
//! directory and removes them. No container runtime is involved, so these run the same under
//! `WARD_RUNTIME=runc` (they test ward's library, not the runtime).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ward::policy::egress::{listeners, redirect, slot::Slot, steer};

/// A network namespace of this test's own, deleted on drop.
struct Netns {
    name: String,
    fd: File,
}

impl Netns {
    fn new(what: &str) -> Netns {
        let name = format!("ward-test-{what}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {name}");
        let fd = File::open(format!("/run/netns/{name}")).unwrap();
        Netns { name, fd }
    }

    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A cgroup v2 directory of this test's own, removed on drop (once its processes are gone).
struct Cgroup {
    path: PathBuf,
    fd: File,
}

impl Cgroup {
    fn new(what: &str) -> Cgroup {
        let path = PathBuf::from(format!(
            "/sys/fs/cgroup/unified/ward-test-{what}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).unwrap();
        let fd = File::open(&path).unwrap();
        Cgroup { path, fd }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs a python3 script in `netns` (and in `cgroup`, when given); returns its stdout.
fn python(netns: &Netns, cgroup: Option<&Cgroup>, script: &str) -> String {
    let join = match cgroup {
        Some(cg) => format!("echo $$ > {}/cgroup.procs && ", cg.path.display()),
        None => String::new(),
    };
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "{join}exec nsenter --net={} python3 -c \"$1\"",
                netns.path()
            ),
            "sh",
            script,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "client: {stdout}{}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    stdout
}

/// TCP connect to `to` from a thread inside `netns`.
fn connect_in(netns: &Netns, to: SocketAddrV4) -> std::io::Result<TcpStream> {
    let fd = netns.fd.try_clone().unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        TcpStream::connect_timeout(&SocketAddr::V4(to), Duration::from_secs(5))
    })
    .join()
    .unwrap()
}

/// The next connection on `l` (non-blocking), within 5 s.
fn accept(l: &TcpListener) -> Option<TcpStream> {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Ok((s, _)) = l.accept() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Whether `cond` holds within 3 s.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(3);
    while !cond() {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn listeners_take_the_first_free_slot_and_prepare_lo() {
    let ns = Netns::new("slots");
    assert!(!ns
        .ip(&["-o", "addr", "show", "dev", "lo"])
        .contains("198.18.0.1/15"));
    let first = listeners::open(ns.fd.as_fd()).expect("listeners in a fresh netns");
    assert_eq!(first.slot, Slot { index: 0 });
    let second = listeners::open(ns.fd.as_fd()).expect("a second proxy in the same netns");
    assert_eq!(second.slot, Slot { index: 1 });
    let link = ns.ip(&["-o", "link", "show", "lo"]);
    assert!(link.contains("UP"), "lo is not up: {link}");
    let addrs = ns.ip(&["-o", "addr", "show", "dev", "lo"]);
    assert!(addrs.contains("198.18.0.1/15"), "lo has no range: {addrs}");
    // The four sockets are where slot.rs says, in the namespace, not in the test's own.
    let tcp = TcpListener::from(second.transparent.into_iter().next().unwrap());
    assert_eq!(
        tcp.local_addr().unwrap(),
        "198.18.16.1:3129".parse::<SocketAddr>().unwrap()
    );
    let udp = UdpSocket::from(second.dns_udp);
    assert_eq!(
        udp.local_addr().unwrap(),
        "198.18.16.1:53".parse::<SocketAddr>().unwrap()
    );
    // The test's own thread came back to its own namespace, which has no range.
    let own = Command::new("ip").args(["-o", "addr"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&own.stdout).contains("198.18.0.1/15"));
    // While a proxy of the namespace holds a slot, the range stays.
    assert!(!listeners::remove_range(ns.fd.as_fd()).unwrap());
    assert!(ns.ip(&["-o", "addr"]).contains("198.18.0.1/15"));
    drop((first, tcp, udp));
    // Retried: a child forked by a parallel test holds copies of the sockets until its exec.
    assert!(eventually(
        || listeners::remove_range(ns.fd.as_fd()).expect("remove the range")
    ));
    let addrs = ns.ip(&["-o", "addr", "show", "dev", "lo"]);
    assert!(!addrs.contains("198.18.0.1/15"), "still there: {addrs}");
    assert!(listeners::remove_range(ns.fd.as_fd()).expect("removing it again is not an error"));
}

#[test]
fn listeners_fail_clearly_when_every_slot_is_taken_or_the_fd_is_no_netns() {
    let ns = Netns::new("full");
    let held: Vec<_> = (0..32)
        .map(|_| listeners::open(ns.fd.as_fd()).unwrap())
        .collect();
    assert_eq!(held[31].slot, Slot { index: 31 });
    let err = listeners::open(ns.fd.as_fd()).unwrap_err().to_string();
    assert!(err.contains("all 32 slots"), "{err}");
    drop(held);
    // Freed slots are taken again (retried, as above).
    let mut again = Slot { index: 99 };
    eventually(|| {
        again = listeners::open(ns.fd.as_fd()).unwrap().slot;
        again == Slot { index: 0 }
    });
    assert_eq!(again, Slot { index: 0 });
    let own = File::open("/proc/thread-self/ns/net").unwrap();
    let err = listeners::open(own.as_fd()).unwrap_err().to_string();
    assert!(err.contains("ward's own network namespace"), "{err}");
    let not_a_netns = File::open("/dev/null").unwrap();
    let err = listeners::open(not_a_netns.as_fd())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("setns") && err.contains("network namespace"),
        "{err}"
    );
    // The calling thread is still in the test's own namespace.
    let own = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    assert_eq!(own, std::fs::read_link("/proc/self/ns/net").unwrap());
}

#[test]
fn steering_hands_name_addresses_to_the_transparent_listener() {
    let ns = Netns::new("steer");
    let l = listeners::open(ns.fd.as_fd()).unwrap();
    let transparent = TcpListener::from(l.transparent.into_iter().next().unwrap());
    let name = |port| SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 77), port);
    // Without the program nothing listens on a name address.
    assert!(connect_in(&ns, name(443)).is_err());
    let link = steer::attach(
        ns.fd.as_fd(),
        l.slot,
        steer::create_sockmap().unwrap().as_fd(),
        transparent.as_fd(),
    )
    .expect("attach");
    for port in [443, 8443] {
        let _client = connect_in(&ns, name(port)).expect("connect to a name address");
        let accepted = accept(&transparent).expect("accepted on the transparent listener");
        assert_eq!(accepted.local_addr().unwrap(), SocketAddr::V4(name(port)));
    }
    // A dual-stack IPv6 socket dialling the v4-mapped form goes out as IPv4: steered too.
    let mapped = SocketAddr::new(Ipv4Addr::new(198, 18, 0, 77).to_ipv6_mapped().into(), 443);
    let fd = ns.fd.try_clone().unwrap();
    let _client6 = std::thread::spawn(move || {
        nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        TcpStream::connect_timeout(&mapped, Duration::from_secs(5))
    })
    .join()
    .unwrap()
    .expect("connect to a v4-mapped name address");
    let accepted = accept(&transparent).unwrap();
    assert_eq!(accepted.local_addr().unwrap(), SocketAddr::V4(name(443)));
    let proxy = SocketAddrV4::new(l.slot.proxy(), 3129);
    let _direct = connect_in(&ns, proxy).expect("the listener's own address still works");
    let accepted = accept(&transparent).unwrap();
    assert_eq!(accepted.local_addr().unwrap(), SocketAddr::V4(proxy));
    // The proxy's own address is not steered: nothing listens on its port 443.
    assert!(connect_in(&ns, SocketAddrV4::new(l.slot.proxy(), 443)).is_err());
    // Nor is another slot's range.
    assert!(connect_in(&ns, SocketAddrV4::new(Ipv4Addr::new(198, 18, 16, 77), 443)).is_err());
    drop(link);
    let end = Instant::now() + Duration::from_secs(5);
    let mut refused = false;
    while Instant::now() < end && !refused {
        refused = connect_in(&ns, name(443)).is_err();
        if !refused {
            let _ = accept(&transparent);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(refused, "still steered after the link was closed");
}

/// The proxy's side of the redirect test: answers each UDP query and TCP connection on the
/// slot's DNS sockets with "answer:<query>", and returns the queries it saw.
fn dns_server(l: listeners_t::Dns, want: usize) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let end = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 512];
        while seen.len() < want && Instant::now() < end {
            if let Ok((n, from)) = l.udp.recv_from(&mut buf) {
                let q = String::from_utf8_lossy(&buf[..n]).into_owned();
                let _ = l.udp.send_to(format!("answer:{q}").as_bytes(), from);
                seen.push(q);
            }
            if let Ok((mut s, _)) = l.tcp.accept() {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                if let Ok(n) = s.read(&mut buf) {
                    let q = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let _ = s.write_all(format!("answer:{q}").as_bytes());
                    seen.push(q);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    })
}

mod listeners_t {
    pub struct Dns {
        pub udp: std::net::UdpSocket,
        pub tcp: std::net::TcpListener,
    }
}

fn dns_sockets(l: ward::policy::egress::slot::Listeners) -> listeners_t::Dns {
    listeners_t::Dns {
        udp: UdpSocket::from(l.dns_udp),
        tcp: TcpListener::from(l.dns_tcp),
    }
}

const CLIENT: &str = r#"
import socket
def show(tag, f):
    try:
        print(tag, *f())
    except Exception as e:
        print(tag, 'error', e)
def sendto(fam, dst):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(b'q-sendto-' + dst[0].encode(), dst); d, a = s.recvfrom(512)
    return a[0], a[1], d.decode()
def connected(fam, dst):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(3); s.connect(dst)
    s.send(b'q-connected-' + dst[0].encode()); d, a = s.recvfrom(512)
    return a[0], a[1], s.getpeername()[0], d.decode()
def tcp(fam, dst):
    s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(3); s.connect(dst)
    p = s.getpeername(); s.sendall(b'q-tcp-' + dst[0].encode())
    return p[0], p[1], s.recv(512).decode()
"#;

#[test]
fn dns_queries_from_the_cgroup_reach_the_proxy_and_answers_keep_the_servers_address() {
    let ns = Netns::new("redirect");
    let cg = Cgroup::new("redirect");
    let l = listeners::open(ns.fd.as_fd()).unwrap();
    let slot = l.slot;
    redirect::install(
        cg.fd.as_fd(),
        slot,
        steer::create_sockmap().unwrap().as_fd(),
    )
    .expect("install the redirect");
    let server = dns_server(dns_sockets(l), 8);
    let script = format!(
        "{CLIENT}
A = socket.AF_INET; B = socket.AF_INET6
show('sendto', lambda: sendto(A, ('192.0.2.53', 53)))
show('connected', lambda: connected(A, ('192.0.2.53', 53)))
show('tcp', lambda: tcp(A, ('192.0.2.53', 53)))
show('sendto6m', lambda: sendto(B, ('::ffff:192.0.2.53', 53)))
show('connected6', lambda: connected(B, ('2001:db8::53', 53)))
show('tcp6', lambda: tcp(B, ('2001:db8::53', 53)))
show('sendto6', lambda: sendto(B, ('2001:db8::53', 53)))
show('tcp6m', lambda: tcp(B, ('::ffff:192.0.2.53', 53)))
show('direct', lambda: sendto(A, ('{}', 53)))
",
        slot.proxy()
    );
    let out = python(&ns, Some(&cg), &script);
    let seen = server.join().unwrap();
    let line = |tag: &str| {
        out.lines()
            .find(|l| l.split(' ').next() == Some(tag))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        line("sendto"),
        "sendto 192.0.2.53 53 answer:q-sendto-192.0.2.53"
    );
    assert_eq!(
        line("connected"),
        "connected 192.0.2.53 53 192.0.2.53 answer:q-connected-192.0.2.53"
    );
    assert_eq!(line("tcp"), "tcp 192.0.2.53 53 answer:q-tcp-192.0.2.53");
    assert_eq!(
        line("sendto6m"),
        "sendto6m ::ffff:192.0.2.53 53 answer:q-sendto-::ffff:192.0.2.53"
    );
    assert_eq!(
        line("connected6"),
        "connected6 2001:db8::53 53 2001:db8::53 answer:q-connected-2001:db8::53"
    );
    assert_eq!(
        line("tcp6"),
        "tcp6 2001:db8::53 53 answer:q-tcp-2001:db8::53"
    );
    // An unconnected IPv6 socket sending to an IPv6 server: the kernel cannot rewrite that to
    // the proxy's v4-mapped address, so it is refused (see redirect.rs), never sent.
    assert_eq!(
        line("sendto6"),
        "sendto6 error [Errno 1] Operation not permitted"
    );
    assert_eq!(
        line("tcp6m"),
        "tcp6m ::ffff:192.0.2.53 53 answer:q-tcp-::ffff:192.0.2.53"
    );
    // A query to the proxy itself is neither rewritten nor disguised.
    let direct = format!(
        "direct {} 53 answer:q-sendto-{}",
        slot.proxy(),
        slot.proxy()
    );
    assert_eq!(line("direct"), direct);
    assert_eq!(seen.len(), 8, "the proxy saw: {seen:?}");
}

#[test]
fn processes_outside_the_cgroup_are_not_redirected() {
    let ns = Netns::new("noredir");
    let cg = Cgroup::new("noredir");
    let l = listeners::open(ns.fd.as_fd()).unwrap();
    redirect::install(
        cg.fd.as_fd(),
        l.slot,
        steer::create_sockmap().unwrap().as_fd(),
    )
    .expect("install the redirect");
    let server = dns_server(dns_sockets(l), 1);
    let script = format!(
        "{CLIENT}
show('sendto', lambda: sendto(socket.AF_INET, ('192.0.2.53', 53)))
show('tcp', lambda: tcp(socket.AF_INET, ('192.0.2.53', 53)))
"
    );
    // Outside: the namespace has no route to 192.0.2.53, so the query fails there.
    let out = python(&ns, None, &script);
    assert!(
        out.lines().all(|l| l.contains(" error ")),
        "outside the cgroup: {out}"
    );
    // The control: the same query from inside the cgroup is answered by the proxy.
    let inside = python(
        &ns,
        Some(&cg),
        &format!("{CLIENT}\nshow('sendto', lambda: sendto(socket.AF_INET, ('192.0.2.53', 53)))\n"),
    );
    assert!(
        inside.starts_with("sendto 192.0.2.53 53 answer:"),
        "{inside}"
    );
    assert_eq!(server.join().unwrap(), vec!["q-sendto-192.0.2.53"]);
}

/// The redirect runs before the wall when attached first: the wall (default deny, the slot's
/// /20 allowed, as create will install it) then sees the proxy's address and lets the query
/// through, while everything else stays refused. Attached after the wall, the query is refused:
/// the order the module doc asks for is the one that works.
#[test]
fn the_redirect_attached_before_the_wall_gets_dns_through_it() {
    use ward::policy::egress::programs;
    use ward::spec::interception::{Network, Verdict};
    let ns = Netns::new("wall");
    let l = listeners::open(ns.fd.as_fd()).unwrap();
    let slot = l.slot;
    let wall = Network {
        default: Verdict::Deny,
        allow: vec![format!("{}/20", slot.base())],
        ..Default::default()
    };
    let ringbuf = programs::create_ringbuf().unwrap();
    let before = Cgroup::new("wall-before");
    redirect::install(
        before.fd.as_fd(),
        slot,
        steer::create_sockmap().unwrap().as_fd(),
    )
    .unwrap();
    programs::install(before.fd.as_fd(), &wall, ringbuf.as_fd()).unwrap();
    let after = Cgroup::new("wall-after");
    programs::install(after.fd.as_fd(), &wall, ringbuf.as_fd()).unwrap();
    redirect::install(
        after.fd.as_fd(),
        slot,
        steer::create_sockmap().unwrap().as_fd(),
    )
    .unwrap();
    let server = dns_server(dns_sockets(l), 3);
    let script = format!(
        "{CLIENT}
A = socket.AF_INET; B = socket.AF_INET6
show('sendto', lambda: sendto(A, ('192.0.2.53', 53)))
show('tcp', lambda: tcp(A, ('192.0.2.53', 53)))
show('tcp6', lambda: tcp(B, ('2001:db8::53', 53)))
show('other', lambda: sendto(A, ('192.0.2.99', 5353)))
"
    );
    let out = python(&ns, Some(&before), &script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "sendto 192.0.2.53 53 answer:q-sendto-192.0.2.53",
            "tcp 192.0.2.53 53 answer:q-tcp-192.0.2.53",
            "tcp6 2001:db8::53 53 answer:q-tcp-2001:db8::53",
            "other error [Errno 1] Operation not permitted",
        ]
    );
    let out = python(&ns, Some(&after), &script);
    assert!(
        out.lines()
            .all(|l| l.ends_with("error [Errno 1] Operation not permitted")),
        "the wall first refuses the original server: {out}"
    );
    assert_eq!(server.join().unwrap().len(), 3);
}

/// A neighbour that routes the reserved range to the container's interface reaches neither
/// the steered name addresses nor the proxy's own listeners: the steering program drops what
/// arrives for the slot on any link but `lo`.
#[test]
fn steering_drops_the_slot_for_traffic_from_outside() {
    let ns = Netns::new("inside");
    let peer = Netns::new("outside");
    let (a, b) = (
        format!("wka{}", std::process::id() % 100_000),
        format!("wkb{}", std::process::id() % 100_000),
    );
    let sh = |cmd: String| {
        let ok = Command::new("sh").args(["-c", &cmd]).status().unwrap();
        assert!(ok.success(), "{cmd}");
    };
    sh(format!(
        "ip link add {a} netns {} type veth peer name {b} netns {}",
        ns.name, peer.name
    ));
    sh(format!(
        "ip -n {0} addr add 10.99.0.1/24 dev {a} && ip -n {0} link set {a} up",
        ns.name
    ));
    sh(format!(
        "ip -n {0} addr add 10.99.0.2/24 dev {b} && ip -n {0} link set {b} up && \
         ip -n {0} route add 198.18.0.0/15 via 10.99.0.1",
        peer.name
    ));
    let l = listeners::open(ns.fd.as_fd()).unwrap();
    let transparent = TcpListener::from(l.transparent.into_iter().next().unwrap());
    let explicit = SocketAddrV4::new(l.slot.proxy(), 3128);
    let name = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 77), 443);
    // The control, before the program: the neighbour reaches the proxy's own address.
    let _reached = connect_in(&peer, explicit).expect("the neighbour reaches 3128 unsteered");
    let link = steer::attach(
        ns.fd.as_fd(),
        l.slot,
        steer::create_sockmap().unwrap().as_fd(),
        transparent.as_fd(),
    )
    .unwrap();
    let fd = peer.fd.try_clone().unwrap();
    let outside = |to: SocketAddrV4| {
        let fd = fd.try_clone().unwrap();
        std::thread::spawn(move || {
            nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            TcpStream::connect_timeout(&SocketAddr::V4(to), Duration::from_millis(700))
        })
        .join()
        .unwrap()
    };
    assert!(
        outside(name).is_err(),
        "the neighbour reached a name address"
    );
    assert!(
        outside(explicit).is_err(),
        "the neighbour reached the proxy"
    );
    assert!(
        transparent.accept().is_err(),
        "the transparent listener got a connection"
    );
    // The container itself still is steered.
    let _client = connect_in(&ns, name).expect("the container reaches a name address");
    assert!(accept(&transparent).is_some());
    drop(link);
}
