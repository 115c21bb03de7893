//! The serving core over real sockets: each test runs in a network namespace of its own (a
//! thread that unshared one: root only), with `lo` up and carrying the reserved range, the
//! listeners on the slot's addresses, and an origin of the test's own on 127.0.0.1 (reached
//! through the test-only `allow_loopback`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::*;
use crate::policy::egress::slot::{Listeners, Slot};
use crate::policy::proxy::resolve::Upstream;
use crate::spec::domains::{compile, Fields};

const SLOT: Slot = Slot { index: 0 };

/// Runs `f` in a thread inside a new network namespace with `lo` up and 198.18.0.1/15 on it.
/// `false` when that is impossible here (not root): the caller skips.
fn in_netns(f: impl FnOnce() + Send + 'static) -> bool {
    let t = std::thread::spawn(move || {
        if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
            return false;
        }
        for args in [
            &["link", "set", "lo", "up"][..],
            &["addr", "add", "198.18.0.1/15", "dev", "lo"][..],
        ] {
            let ok = std::process::Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip {args:?}");
        }
        f();
        true
    });
    match t.join() {
        Ok(ran) => {
            if !ran {
                eprintln!("skipped: cannot unshare a network namespace (not root?)");
            }
            ran
        }
        Err(p) => std::panic::resume_unwind(p),
    }
}

struct Lab {
    log: std::path::PathBuf,
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

static LOGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Setup {
    allowed: Vec<&'static str>,
    denied: Vec<&'static str>,
    reasons: Vec<(&'static str, &'static str)>,
    hosts: String,
    transparent: SocketAddr,
    max_clients: usize,
    table_limit: Option<usize>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            allowed: vec!["example.test", "meta.test", "*.wild.test"],
            denied: vec!["denied.example.test"],
            reasons: vec![],
            hosts: "127.0.0.1 example.test a.wild.test\n169.254.169.254 meta.test\n".into(),
            transparent: "198.18.0.1:3129".parse().unwrap(),
            max_clients: MAX_CLIENTS,
            table_limit: None,
        }
    }
}

impl Lab {
    fn start(s: Setup) -> Lab {
        let strings = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (allowed, denied) = (strings(&s.allowed), strings(&s.denied));
        let reasons = s
            .reasons
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let domains = compile(
            Fields {
                allowed: Some(&allowed),
                denied: Some(&denied),
                reasons: &reasons,
                proxy_env: true,
            },
            "test",
        )
        .unwrap()
        .unwrap();
        let n = LOGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log =
            std::env::temp_dir().join(format!("ward-proxy-test-{}-{n}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let proxy = SLOT.proxy();
        // As create should make them: a backlog that holds a burst of clients.
        let tcp = |at: SocketAddr| -> OwnedFd {
            let l = TcpListener::bind(at).unwrap();
            nix::sys::socket::listen(&l, nix::sys::socket::Backlog::MAXCONN).unwrap();
            l.into()
        };
        let listeners = Listeners {
            slot: SLOT,
            dns_udp: UdpSocket::bind((proxy, 53)).unwrap().into(),
            dns_tcp: tcp((proxy, 53).into()),
            explicit: tcp((proxy, 3128).into()),
            transparent: tcp(s.transparent),
        };
        let cfg = Config {
            id: "proxy-test".into(),
            domains,
            rules: Vec::new(),
            slot: SLOT,
            upstream: Upstream::parse("", &s.hosts),
            log: file.into(),
            max_clients: s.max_clients,
            allow_loopback: true,
            table_limit: s.table_limit,
        };
        let (r, w) = nix::unistd::pipe().unwrap();
        let thread = std::thread::spawn(move || serve(cfg, listeners, r));
        Lab {
            log,
            stop: Some(w),
            thread: Some(thread),
        }
    }

    fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    /// The records whose decision starts with `prefix` and whose name is `name`.
    fn find(&self, name: &str, prefix: &str) -> Vec<serde_json::Value> {
        self.records()
            .into_iter()
            .filter(|r| r["name"] == name && r["decision"].as_str().unwrap().starts_with(prefix))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        drop(self.stop.take()); // EOF on the stop fd: the proxy returns
        if let Some(t) = self.thread.take() {
            let r = t.join().expect("the proxy thread panicked");
            if !std::thread::panicking() {
                r.expect("the proxy failed");
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn dns(name: &str, kind: RecordType) -> Message {
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(&q.to_vec().unwrap(), (SLOT.proxy(), 53))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}

fn a_of(name: &str) -> Ipv4Addr {
    let m = dns(name, RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
    match &m.answers[..] {
        [r] => match &r.data {
            RData::A(a) => {
                assert_eq!(r.ttl, super::super::dns::TTL);
                a.0
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{name}: {other:?}"),
    }
}

/// An origin on 127.0.0.1: a TLS client's first flight is answered `tls-origin <n>` (and the
/// connection closed); HTTP requests get 200 with a body naming their request line and Host,
/// as long as the connection lasts (keep-alive, bodies by Content-Length or chunked).
fn origin() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || origin_conn(c));
        }
    });
    port
}

fn origin_conn(c: TcpStream) {
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    if r.fill_buf()
        .map(|b| b.first() == Some(&0x16))
        .unwrap_or(false)
    {
        let n = r.fill_buf().unwrap().len();
        let _ = w.write_all(format!("tls-origin {n}\n").as_bytes());
        return;
    }
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut host, mut length, mut chunked) = (String::new(), 0usize, false);
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            let (k, v) = h.trim_end().split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "host" => host = v.trim().to_string(),
                "content-length" => length = v.trim().parse().unwrap(),
                "transfer-encoding" => chunked = true,
                _ => {}
            }
        }
        let mut got = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0u8; n + 2];
                r.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&chunk[..n]);
            }
        } else {
            let mut b = vec![0u8; length];
            r.read_exact(&mut b).unwrap();
            got = b;
        }
        let body = format!(
            "line={} host={host} body={}\n",
            line.trim_end(),
            String::from_utf8_lossy(&got)
        );
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn connect(to: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(to).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    c
}

/// One HTTP response: status line, headers, body by Content-Length.
fn response(r: &mut BufReader<TcpStream>) -> (String, Vec<(String, String)>, String) {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h == "\r\n" || h.is_empty() {
            break;
        }
        let (k, v) = h.trim_end().split_once(':').unwrap();
        if k.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse().unwrap();
        }
        headers.push((k.to_string(), v.trim().to_string()));
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body).unwrap();
    (
        status.trim_end().to_string(),
        headers,
        String::from_utf8(body).unwrap(),
    )
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn read_all(mut c: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

fn hello(file: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/policy/proxy/testdata")
        .join(file);
    std::fs::read(&p).unwrap()
}

const EXPLICIT: (Ipv4Addr, u16) = (Ipv4Addr::new(198, 18, 0, 1), 3128);

#[test]
fn dns_answers_allowed_denied_and_other_types() {
    in_netns(|| {
        let lab = Lab::start(Setup {
            table_limit: Some(3),
            ..Setup::default()
        });
        let a = a_of("example.test.");
        assert_eq!(a, Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(a_of("EXAMPLE.test."), a, "case-insensitive, stable");
        assert_eq!(a_of("x.wild.test."), Ipv4Addr::new(198, 18, 0, 3));
        assert_eq!(
            a_of("example.test."),
            a,
            "still the same after another name"
        );
        // AAAA, HTTPS and others for an allowed name: NODATA.
        for kind in [RecordType::AAAA, RecordType::HTTPS, RecordType::MX] {
            let m = dns("example.test.", kind);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert!(m.answers.is_empty(), "{kind}: {:?}", m.answers);
        }
        // Denied (explicitly, by default, the apex of a wildcard): NXDOMAIN, recorded.
        for name in ["denied.example.test.", "other.test.", "wild.test."] {
            let m = dns(name, RecordType::A);
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
            let n = name.trim_end_matches('.');
            assert!(!lab.find(n, "denied: NXDOMAIN").is_empty(), "{name}");
        }
        // The slot full (3 here): SERVFAIL, recorded; names given before keep theirs.
        assert_eq!(a_of("meta.test."), Ipv4Addr::new(198, 18, 0, 4));
        let m = dns("y.wild.test.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert!(!lab.find("y.wild.test", "denied: SERVFAIL").is_empty());
        assert_eq!(a_of("example.test."), a);
        // Over TCP too.
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("example.test.").unwrap(),
            RecordType::A,
        ));
        let wire = q.to_vec().unwrap();
        let mut c = connect((SLOT.proxy(), 53).into());
        c.write_all(&(wire.len() as u16).to_be_bytes()).unwrap();
        c.write_all(&wire).unwrap();
        let mut len = [0u8; 2];
        c.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        c.read_exact(&mut buf).unwrap();
        let m = Message::from_vec(&buf).unwrap();
        assert!(matches!(&m.answers[0].data, RData::A(x) if x.0 == a));
        // Allowed names are recorded once, with the address handed out.
        let first = lab.find("example.test", "allowed");
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0]["destination"], "198.18.0.2");
        assert!(first[0]["port"].is_null());
        assert_eq!(first[0]["source"], "dns");
    });
}

/// The transparent listener bound straight to the name's address and the origin's port (the
/// sk_lookup steering is the kernel part's).
fn transparent_lab() -> (Lab, SocketAddr) {
    let port = origin();
    let at: SocketAddr = (Ipv4Addr::new(198, 18, 0, 2), port).into();
    let lab = Lab::start(Setup {
        transparent: at,
        ..Setup::default()
    });
    assert_eq!(
        a_of("example.test."),
        at.ip().to_string().parse::<Ipv4Addr>().unwrap()
    );
    (lab, at)
}

#[test]
fn transparent_tls_is_judged_by_its_sni() {
    in_netns(|| {
        let (lab, at) = transparent_lab();
        // SNI example.test, the name the client resolved: spliced to the origin.
        let mut c = connect(at);
        let h = hello("openssl-s_client-tls13.bin");
        c.write_all(&h).unwrap();
        let got = String::from_utf8(read_all(c)).unwrap();
        assert!(got.starts_with("tls-origin"), "{got:?}");
        let ok = lab.find("example.test", "allowed");
        assert!(ok.iter().any(|r| r["source"] == "transparent"
            && r["destination"] == format!("127.0.0.1:{}", at.port())));
        // SNI www.example.test on example.test's address: a TLS alert, recorded.
        for (file, what) in [
            ("openssl-s_client-tls12.bin", "www.example.test"),
            ("openssl-s_client-noservername.bin", "names no server"),
        ] {
            let mut c = connect(at);
            c.write_all(&hello(file)).unwrap();
            let got = read_all(c);
            assert_eq!(got, [0x15, 3, 1, 0, 2, 2, 0x31], "{file}");
            let denied = lab.find("example.test", "denied");
            assert!(
                denied
                    .iter()
                    .any(|r| r["decision"].as_str().unwrap().contains(what)),
                "{file}: {denied:?}"
            );
        }
    });
}

#[test]
fn transparent_http_checks_every_request_host() {
    in_netns(|| {
        let (lab, at) = transparent_lab();
        let c = connect(at);
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        // Two requests on one connection, a chunked body in the first.
        w.write_all(
            b"POST /a HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\nabc\r\n0\r\n\r\n",
        )
        .unwrap();
        let (status, _, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            body.contains("line=POST /a HTTP/1.1 host=example.test body=abc"),
            "{body}"
        );
        let hostport = format!("example.test:{}", at.port());
        w.write_all(
            format!("GET /b HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 2\r\n\r\nhi")
                .as_bytes(),
        )
        .unwrap();
        let (status, _, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(body.contains("body=hi"), "{body}");
        // The next request on the same connection names another host: 403, closed.
        w.write_all(b"GET /c HTTP/1.1\r\nHost: denied.example.test\r\n\r\n")
            .unwrap();
        let (status, headers, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        assert!(header(&headers, "X-Ward-Denied").is_some(), "{headers:?}");
        assert!(body.starts_with("ward: example.test:"), "{body}");
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        assert!(rest.is_empty());
        assert!(!lab.find("example.test", "denied: the Host").is_empty());
        assert_eq!(
            lab.find("example.test", "allowed")
                .iter()
                .filter(|r| r["source"] == "transparent")
                .count(),
            2,
            "one record per request"
        );
        // A first request with another Host: 403 at once.
        let c = connect(at);
        let mut w = c.try_clone().unwrap();
        w.write_all(b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n")
            .unwrap();
        let (status, headers, _) = response(&mut BufReader::new(c));
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        assert_eq!(
            header(&headers, "X-Ward-Denied"),
            Some("name agreement (Host)")
        );
    });
}

fn connect_request(target: &str) -> (String, Vec<(String, String)>, BufReader<TcpStream>) {
    let c = connect(EXPLICIT.into());
    let mut w = c.try_clone().unwrap();
    w.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .unwrap();
    let mut r = BufReader::new(c);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h == "\r\n" || h.is_empty() {
            break;
        }
        let (k, v) = h.trim_end().split_once(':').unwrap();
        headers.push((k.to_string(), v.trim().to_string()));
    }
    (status.trim_end().to_string(), headers, r)
}

#[test]
fn connect_allowed_denied_and_refused_upstream() {
    in_netns(|| {
        let port = origin();
        let lab = Lab::start(Setup {
            denied: vec!["denied.example.test"],
            reasons: vec![("denied.example.test", "use the mirror")],
            ..Setup::default()
        });
        // Allowed: 200, then the tunnel's ClientHello (SNI example.test) reaches the origin.
        let (status, _, r) = connect_request(&format!("example.test:{port}"));
        assert_eq!(status, "HTTP/1.1 200 Connection established");
        let mut c = r.into_inner();
        c.write_all(&hello("openssl-s_client-tls13.bin")).unwrap();
        let got = String::from_utf8(read_all(c)).unwrap();
        assert!(got.starts_with("tls-origin"), "{got:?}");
        // Allowed, but the tunnel's SNI is another name: alert.
        let (status, _, r) = connect_request(&format!("example.test:{port}"));
        assert!(status.contains("200"));
        let mut c = r.into_inner();
        c.write_all(&hello("openssl-s_client-tls12.bin")).unwrap();
        assert_eq!(read_all(c), [0x15, 3, 1, 0, 2, 2, 0x31]);
        // Denied, with its reason in the body.
        let (status, headers, mut r) = connect_request("denied.example.test:443");
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        let rule = header(&headers, "X-Ward-Denied").unwrap().to_string();
        assert_eq!(rule, "deniedDomains[0] \"denied.example.test\"");
        let mut body = String::new();
        r.read_to_string(&mut body).unwrap();
        assert_eq!(
            body,
            format!("ward: denied.example.test:443 denied by {rule}: use the mirror\n")
        );
        // Allowed name whose address is the cloud metadata service: refused, recorded.
        let (status, headers, _) = connect_request("meta.test:80");
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        assert!(header(&headers, "X-Ward-Denied")
            .unwrap()
            .contains("cloud-metadata"));
        let refused = lab.find(
            "meta.test",
            "denied: upstream address refused (cloud-metadata)",
        );
        assert_eq!(refused.len(), 1, "{:?}", lab.records());
        assert_eq!(refused[0]["source"], "connect");
        assert!(refused[0]["rule"]
            .as_str()
            .unwrap()
            .starts_with("169.254.169.254"));
        assert_eq!(lab.find("denied.example.test", "denied: by").len(), 1);
    });
}

#[test]
fn absolute_form_requests_are_forwarded_in_origin_form() {
    in_netns(|| {
        let port = origin();
        let lab = Lab::start(Setup::default());
        let c = connect(EXPLICIT.into());
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        w.write_all(
            format!(
                "GET http://example.test:{port}/x?y=1 HTTP/1.1\r\nHost: example.test:{port}\r\n\
                 Proxy-Connection: keep-alive\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let (status, _, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            body.starts_with(&format!(
                "line=GET /x?y=1 HTTP/1.1 host=example.test:{port}"
            )),
            "{body}"
        );
        // The next one is for another allowed name: a new upstream, same client connection.
        w.write_all(
            format!(
                "POST http://a.wild.test:{port}/w HTTP/1.1\r\nHost: a.wild.test:{port}\r\n\
                 Content-Length: 3\r\n\r\nxyz"
            )
            .as_bytes(),
        )
        .unwrap();
        let (status, _, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            body.starts_with(&format!(
                "line=POST /w HTTP/1.1 host=a.wild.test:{port} body=xyz"
            )),
            "{body}"
        );
        // The next request on the connection is for a denied name: 403.
        w.write_all(b"GET http://other.test/ HTTP/1.1\r\nHost: other.test\r\n\r\n")
            .unwrap();
        let (status, headers, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        assert_eq!(
            header(&headers, "X-Ward-Denied"),
            Some("not in allowedDomains")
        );
        assert_eq!(
            body,
            "ward: other.test:80 denied by not in allowedDomains\n"
        );
        assert_eq!(
            lab.find("example.test", "allowed")[0]["source"],
            "http-proxy"
        );
    });
}

fn socks(atyp_domain: &str, port: u16) -> (u8, TcpStream) {
    let mut c = connect(EXPLICIT.into());
    c.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    c.read_exact(&mut m).unwrap();
    assert_eq!(m, [5, 0]);
    let mut req = vec![5, 1, 0, 3, atyp_domain.len() as u8];
    req.extend_from_slice(atyp_domain.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    c.write_all(&req).unwrap();
    let mut rep = [0u8; 10];
    c.read_exact(&mut rep).unwrap();
    assert_eq!(rep[0], 5);
    (rep[1], c)
}

#[test]
fn socks5_by_domain() {
    in_netns(|| {
        let port = origin();
        let lab = Lab::start(Setup::default());
        let (code, c) = socks("example.test", port);
        assert_eq!(code, 0);
        let mut w = c.try_clone().unwrap();
        w.write_all(b"GET /s HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .unwrap();
        let (status, _, body) = response(&mut BufReader::new(c));
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(body.contains("line=GET /s"), "{body}");
        let (code, _) = socks("other.test", port);
        assert_eq!(code, 2, "connection not allowed by ruleset");
        assert_eq!(lab.find("other.test", "denied")[0]["source"], "socks");
        // A SOCKS address (not a name) that no IP rule allows: refused.
        let mut c = connect(EXPLICIT.into());
        c.write_all(&[5, 1, 0]).unwrap();
        let mut m = [0u8; 2];
        c.read_exact(&mut m).unwrap();
        c.write_all(&[5, 1, 0, 1, 127, 0, 0, 1]).unwrap();
        c.write_all(&port.to_be_bytes()).unwrap();
        let mut rep = [0u8; 10];
        c.read_exact(&mut rep).unwrap();
        assert_eq!(rep[1], 2);
    });
}

#[test]
fn thousands_of_idle_clients_are_bounded_and_the_proxy_stays_up() {
    in_netns(|| {
        let port = origin();
        let lab = Lab::start(Setup::default());
        let t0 = std::time::Instant::now();
        let clients: Vec<TcpStream> = (0..2000).map(|_| connect(EXPLICIT.into())).collect();
        std::thread::sleep(Duration::from_millis(200));
        let took = t0.elapsed();
        assert!(took < HEAD_TIMEOUT / 2, "2000 connects took {took:?}");
        // Beyond the bound the proxy accepts and closes: those clients read EOF.
        let mut closed = 0;
        for c in &clients {
            c.set_nonblocking(true).unwrap();
            let mut b = [0u8; 1];
            if matches!((&*c).read(&mut b), Ok(0)) {
                closed += 1;
            }
        }
        assert!(
            (2000 - MAX_CLIENTS..=2000 - MAX_CLIENTS + 50).contains(&closed),
            "{closed} closed"
        );
        let overflow: Vec<_> = lab
            .records()
            .into_iter()
            .filter(|r| r["rule"] == "connection bound")
            .collect();
        assert!(!overflow.is_empty() && overflow.len() <= 5, "{overflow:?}");
        drop(clients);
        // Still serving: DNS at once, and a new client once the idle ones are gone.
        assert_eq!(a_of("example.test."), Ipv4Addr::new(198, 18, 0, 2));
        std::thread::sleep(Duration::from_millis(300));
        let (code, _) = socks("example.test", port);
        assert_eq!(code, 0);
    });
}

#[test]
fn record_lines_are_json_with_every_field() {
    in_netns(|| {
        let lab = Lab::start(Setup::default());
        dns("other.test.", RecordType::A);
        a_of("example.test.");
        let (status, _, _) = connect_request("other.test:443");
        assert!(status.contains("403"));
        let recs = lab.records();
        assert!(recs.len() >= 3, "{recs:?}");
        for r in recs {
            for f in [
                "time",
                "type",
                "id",
                "pid",
                "source",
                "name",
                "port",
                "destination",
                "rule",
                "decision",
            ] {
                assert!(r.get(f).is_some(), "{f} missing in {r}");
            }
            assert_eq!(r["type"], "egress");
            assert_eq!(r["id"], "proxy-test");
            assert!(r["pid"].is_null());
            assert!(chrono::DateTime::parse_from_rfc3339(r["time"].as_str().unwrap()).is_ok());
        }
    });
}

/// An origin that speaks first (an SMTP-like banner), then echoes lines.
fn banner_origin() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                w.write_all(b"220 banner\r\n").unwrap();
                let mut r = BufReader::new(c);
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    let _ = w.write_all(format!("echo {line}").as_bytes());
                    line.clear();
                }
            });
        }
    });
    port
}

#[test]
fn server_first_protocols_get_the_banner_after_300_ms() {
    in_netns(|| {
        let port = banner_origin();
        let at: SocketAddr = (Ipv4Addr::new(198, 18, 0, 2), port).into();
        let lab = Lab::start(Setup {
            transparent: at,
            ..Setup::default()
        });
        a_of("example.test.");
        let c = connect(at);
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        let t0 = std::time::Instant::now();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "220 banner\r\n");
        assert!(t0.elapsed() >= SERVER_FIRST, "{:?}", t0.elapsed());
        // The client's bytes, when they come, are judged (not TLS, not HTTP: spliced).
        w.write_all(b"EHLO x\r\n").unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "echo EHLO x\r\n");
        assert!(lab
            .find("example.test", "allowed")
            .iter()
            .any(|r| r["source"] == "transparent"));
        // A server-first connection whose first client bytes are a ClientHello for another
        // name: alert, closed.
        let mut c = connect(at);
        let mut banner = [0u8; 12];
        c.read_exact(&mut banner).unwrap();
        c.write_all(&hello("openssl-s_client-tls12.bin")).unwrap();
        assert_eq!(
            read_all(c),
            [0x15, 3, 1, 0, 2, 2, 0x31],
            "{:?}",
            lab.records()
        );
    });
}

#[test]
fn transparent_refuses_unknown_addresses_and_denied_ports() {
    in_netns(|| {
        let port = origin();
        // An address the DNS never handed out: closed at once, recorded.
        let at: SocketAddr = (Ipv4Addr::new(198, 18, 0, 9), port).into();
        let lab = Lab::start(Setup {
            transparent: at,
            ..Setup::default()
        });
        let mut c = connect(at);
        let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n");
        assert!(read_all(c).is_empty());
        let recs = lab.records();
        assert!(
            recs.iter().any(|r| r["destination"] == at.to_string()
                && r["decision"].as_str().unwrap().contains("never handed out")),
            "{recs:?}"
        );
        drop(lab);
        // A name allowed on 443 only, reached on another port: 403 for HTTP, closed for TLS.
        let at: SocketAddr = (Ipv4Addr::new(198, 18, 0, 2), port).into();
        let lab = Lab::start(Setup {
            transparent: at,
            allowed: vec!["example.test:443"],
            ..Setup::default()
        });
        a_of("example.test.");
        let c = connect(at);
        let mut w = c.try_clone().unwrap();
        w.write_all(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .unwrap();
        let (status, headers, body) = response(&mut BufReader::new(c));
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        assert_eq!(
            header(&headers, "X-Ward-Denied"),
            Some("not in allowedDomains")
        );
        assert_eq!(
            body,
            format!("ward: example.test:{port} denied by not in allowedDomains\n")
        );
        let mut c = connect(at);
        c.write_all(&hello("openssl-s_client-tls13.bin")).unwrap();
        assert!(read_all(c).is_empty());
        assert_eq!(
            lab.find("example.test", "denied: by not in allowedDomains")
                .len(),
            2
        );
    });
}
