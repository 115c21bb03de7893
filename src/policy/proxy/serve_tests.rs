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

pub(super) const SLOT: Slot = Slot { index: 0 };

/// Runs `f` in a thread inside a new network namespace with `lo` up and 198.18.0.1/15 on it.
/// `false` when that is impossible here (not root): the caller skips.
pub(super) fn in_netns(f: impl FnOnce() + Send + 'static) -> bool {
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

/// A bind of the slot's fixed addresses, retried while they are still in use: a test that
/// drops one Lab and starts another rebinds them at once, and a child another test forks in
/// that instant holds a copy of every fd of the process (the old listeners too) until it
/// executes, where CLOEXEC closes them. Seen as AddrInUse under load, 1 run in 10.
fn rebind<T>(bind: impl Fn() -> std::io::Result<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match bind() {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10))
            }
            r => return r.unwrap(),
        }
    }
}

pub(super) struct Lab {
    pub(super) log: std::path::PathBuf,
    pub(super) stop: Option<OwnedFd>,
    pub(super) thread: Option<std::thread::JoinHandle<Result<()>>>,
}

static LOGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub(super) struct Setup {
    pub(super) allowed: Vec<&'static str>,
    pub(super) denied: Vec<&'static str>,
    pub(super) reasons: Vec<(&'static str, &'static str)>,
    pub(super) hosts: String,
    pub(super) transparent: SocketAddr,
    /// Further transparent listeners (the netns wall's, one per port on 0.0.0.0).
    pub(super) more_transparent: Vec<SocketAddr>,
    /// Listeners made elsewhere (another namespace): served instead of the lab's own.
    pub(super) listeners: Option<Listeners>,
    pub(super) max_clients: usize,
    pub(super) table_limit: Option<usize>,
    /// `http` rules (issue 17), as the config writes them.
    pub(super) http: Option<serde_json::Value>,
    /// The container's CA (TLS termination), the roots trusted upstream, the credentials.
    pub(super) ca: Option<crate::policy::proxy::ca::Authority>,
    pub(super) extra_roots_pem: Vec<u8>,
    pub(super) vault: crate::policy::credentials::Vault,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            allowed: vec!["example.test", "meta.test", "*.wild.test"],
            denied: vec!["denied.example.test"],
            reasons: vec![],
            hosts: "127.0.0.1 example.test a.wild.test\n169.254.169.254 meta.test\n".into(),
            transparent: "198.18.0.1:3129".parse().unwrap(),
            more_transparent: Vec::new(),
            listeners: None,
            max_clients: MAX_CLIENTS,
            table_limit: None,
            http: None,
            ca: None,
            extra_roots_pem: Vec::new(),
            vault: Default::default(),
        }
    }
}

impl Lab {
    pub(super) fn start(s: Setup) -> Lab {
        let strings = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (allowed, denied) = (strings(&s.allowed), strings(&s.denied));
        let reasons = s
            .reasons
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut domains = compile(
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
        if let Some(h) = s.http {
            let entries = serde_json::from_value::<Vec<_>>(h).unwrap();
            domains.http = crate::spec::domains::http::compile(&entries, &domains, "test").unwrap();
        }
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
            let l = rebind(|| TcpListener::bind(at));
            nix::sys::socket::listen(&l, nix::sys::socket::Backlog::MAXCONN).unwrap();
            l.into()
        };
        let listeners = s.listeners.unwrap_or_else(|| Listeners {
            slot: SLOT,
            dns_udp: rebind(|| UdpSocket::bind((proxy, 53))).into(),
            dns_tcp: tcp((proxy, 53).into()),
            explicit: tcp((proxy, 3128).into()),
            transparent: std::iter::once(s.transparent)
                .chain(s.more_transparent)
                .map(tcp)
                .collect(),
        });
        let cfg = Config {
            id: "proxy-test".into(),
            domains,
            rules: Vec::new(),
            slot: SLOT,
            upstream: Upstream::parse("", &s.hosts),
            log: file.into(),
            max_clients: s.max_clients,
            ca: s.ca,
            extra_roots_pem: s.extra_roots_pem,
            vault: s.vault,
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

    pub(super) fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    /// The records whose decision starts with `prefix` and whose name is `name`.
    pub(super) fn find(&self, name: &str, prefix: &str) -> Vec<serde_json::Value> {
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

pub(super) fn dns(name: &str, kind: RecordType) -> Message {
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

pub(super) fn a_of(name: &str) -> Ipv4Addr {
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
pub(super) fn origin() -> u16 {
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

pub(super) fn connect(to: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(to).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    c
}

/// One HTTP response: status line, headers, body by Content-Length.
pub(super) fn response(r: &mut BufReader<TcpStream>) -> (String, Vec<(String, String)>, String) {
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

pub(super) fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub(super) fn read_all(mut c: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

pub(super) fn hello(file: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/policy/proxy/testdata")
        .join(file);
    std::fs::read(&p).unwrap()
}

pub(super) const EXPLICIT: (Ipv4Addr, u16) = (Ipv4Addr::new(198, 18, 0, 1), 3128);

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

pub(super) fn connect_request(
    target: &str,
) -> (String, Vec<(String, String)>, BufReader<TcpStream>) {
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

pub(super) fn socks(atyp_domain: &str, port: u16) -> (u8, TcpStream) {
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
