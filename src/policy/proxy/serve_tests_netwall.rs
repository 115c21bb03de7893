//! The serving core behind the netns wall (issue 18), over real sockets: the listeners made by
//! `netwall::open` in a "container" namespace of their own (only `lo`, every address local),
//! the proxy serving them from the lab's namespace (the "host", where the origin is), as
//! `ward create` arranges it.

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;

use nix::sched::{setns, CloneFlags};

use super::tests::*;
use crate::policy::egress::netwall;

/// A new network namespace, as an fd; the calling thread stays where it is.
fn new_netns() -> std::fs::File {
    std::thread::spawn(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).unwrap();
        std::fs::File::open("/proc/thread-self/ns/net").unwrap()
    })
    .join()
    .unwrap()
}

/// Runs `f` in a thread inside `ns` (the container's side).
fn inside<T: Send>(ns: &std::fs::File, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

fn get(to: SocketAddr, host: &str) -> String {
    let mut c = connect(to);
    write!(c, "GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let (status, _, body) = response(&mut BufReader::new(c));
    format!("{status}{body}")
}

fn refused(to: &str) -> bool {
    matches!(TcpStream::connect(to), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// A name reached on its address through the wildcard listener of its port, a second port
/// served by a listener of its own, the explicit proxy; a raw address and a denied name
/// refused; a port without a listener refused by the kernel; the proxy gone: refused.
#[test]
fn the_netns_wall_serves_names_and_refuses_the_rest() {
    in_netns(|| {
        let port = origin();
        let other = origin();
        let ns = new_netns();
        let listeners = netwall::open(ns.as_fd(), None, &[port, other]).unwrap();
        let lab = Lab::start(Setup {
            listeners: Some(listeners),
            ..Setup::default()
        });
        inside(&ns, || {
            let a = a_of("example.test.");
            assert_eq!(a, Ipv4Addr::new(198, 18, 0, 2));
            let got = get((a, port).into(), "example.test");
            assert!(
                got.contains("200") && got.contains("host=example.test"),
                "{got}"
            );
            let got = get((a, other).into(), "example.test");
            assert!(got.contains("200"), "{got}");
            // The explicit proxy on the proxy's address.
            let mut c = connect("198.18.0.1:3128".parse().unwrap());
            write!(
                c,
                "GET http://example.test:{port}/y HTTP/1.1\r\nHost: example.test:{port}\r\n\r\n"
            )
            .unwrap();
            let (status, _, _) = response(&mut BufReader::new(c));
            assert!(status.contains("200"), "{status}");
            // A raw address: accepted by the wildcard listener, closed by the proxy.
            let mut c = connect((Ipv4Addr::new(192, 0, 2, 80), port).into());
            let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut b = Vec::new();
            let _ = c.read_to_end(&mut b);
            assert!(b.is_empty(), "{}", String::from_utf8_lossy(&b));
            // A port nothing listens on.
            assert!(refused(&format!("{a}:{}", port.wrapping_add(1).max(1))));
            // A denied name has no address.
            let m = dns("denied.example.test.", hickory_proto::rr::RecordType::A);
            assert_eq!(
                m.metadata.response_code,
                hickory_proto::op::ResponseCode::NXDomain
            );
        });
        let raw = lab.records();
        assert!(
            raw.iter()
                .any(|r| r["destination"] == format!("192.0.2.80:{port}")
                    && r["decision"].as_str().unwrap().contains("never handed out")),
            "{raw:?}"
        );
        // The proxy gone: its listeners with it, nothing answers.
        drop(lab);
        inside(&ns, || {
            assert!(refused(&format!("198.18.0.2:{port}")));
            assert!(refused("198.18.0.1:3128"));
        });
    });
}
