//! Credential placeholders through the serving core over real sockets (the harness is
//! `serve_tests`; the lab here also carries a vault): in plain HTTP a placeholder is refused
//! wherever it is (head or streamed body) and recorded under the binding's name, never the
//! value; with `allowPlaintextInject` the head is swapped where the binding matches (the body
//! still refused); a DNS query for a name holding a placeholder is REFUSED.

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::tests::*;
use crate::policy::credentials::{mint, Binding, Secret, Vault};
use crate::spec::domains::http::PathPattern;
use crate::spec::domains::{parse_pattern, List};

const SECRET: &str = "sk-live-0123456789abcdef";
const BINDING: &str = "credentials.envVars[0] (API_KEY)";

/// What an origin received, every connection's bytes appended.
type Seen = Arc<Mutex<Vec<u8>>>;

/// An origin on 127.0.0.1 that keeps every byte it is sent and answers each request (head,
/// then a Content-Length or chunked body) with `200 ok`.
fn capturing_origin() -> (u16, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let keep = Arc::clone(&seen);
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let keep = Arc::clone(&keep);
            std::thread::spawn(move || {
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut w = c.try_clone().unwrap();
                let mut r = c;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = r.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    keep.lock().unwrap().extend_from_slice(&chunk[..n]);
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = request_end(&buf) {
                        buf.drain(..end);
                        let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    }
                }
            });
        }
    });
    (port, seen)
}

/// Where the first complete request in `buf` ends.
fn request_end(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
    if text.contains("transfer-encoding: chunked") {
        let end = buf[head..].windows(5).position(|w| w == b"0\r\n\r\n")?;
        return Some(head + end + 5);
    }
    let length = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    (buf.len() >= head + length).then_some(head + length)
}

/// POST example.test /v1/messages only.
fn vault(allow_plaintext_inject: bool) -> Vault {
    Vault::new(
        vec![Binding {
            name: BINDING.into(),
            placeholder: mint(SECRET.len()).unwrap(),
            secret: Secret::new(SECRET.as_bytes().to_vec()),
            hosts: vec![parse_pattern("example.test", List::Allowed).unwrap()],
            methods: Some(vec!["POST".into()]),
            paths: Some(vec![PathPattern::Exact("/v1/messages".into())]),
        }],
        allow_plaintext_inject,
    )
}

/// `Lab::start` with a vault: example.test and www.example.test on the capturing origin.
fn lab(vault: Vault) -> (Lab, SocketAddr, Seen, String) {
    let placeholder = vault.bindings[0].placeholder.clone();
    let (port, seen) = capturing_origin();
    let at: SocketAddr = (Ipv4Addr::new(198, 18, 0, 2), port).into();
    let lab = Lab::start(Setup {
        allowed: vec!["example.test", "*.example.test"],
        denied: vec![],
        hosts: "127.0.0.1 example.test www.example.test\n".into(),
        transparent: at,
        vault,
        ..Setup::default()
    });
    assert_eq!(a_of("example.test."), Ipv4Addr::new(198, 18, 0, 2));
    (lab, at, seen, placeholder)
}

fn send(at: SocketAddr, bytes: &[u8]) -> (String, Vec<(String, String)>, String) {
    let c = connect(at);
    (&c).write_all(bytes).unwrap();
    response(&mut BufReader::new(c))
}

/// Refused, naming the binding; its record names the binding and holds neither value.
fn assert_refused(lab: &Lab, got: (String, Vec<(String, String)>, String), placeholder: &str) {
    let (status, headers, body) = got;
    assert_eq!(status, "HTTP/1.1 403 Forbidden", "{body}");
    assert_eq!(
        header(&headers, "X-Ward-Denied"),
        Some("credential binding")
    );
    assert!(body.contains(BINDING), "{body}");
    assert!(body.contains("exfiltration attempt"), "{body}");
    assert!(!body.contains(placeholder), "{body}");
    let log = std::fs::read_to_string(&lab.log).unwrap();
    assert!(!log.contains(placeholder), "{log}");
    assert!(!log.contains(SECRET), "{log}");
}

fn credential_records(lab: &Lab) -> Vec<serde_json::Value> {
    lab.records()
        .into_iter()
        .filter(|r| r["rule"] == "credential binding")
        .collect()
}

#[test]
fn a_placeholder_in_plain_http_is_refused_in_the_head_and_the_body() {
    in_netns(|| {
        let (lab, at, seen, p) = lab(vault(false));
        // An ordinary request passes.
        let ok = send(
            at,
            b"POST /v1/messages HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\nhi",
        );
        assert_eq!(ok.0, "HTTP/1.1 200 OK");
        // In a header, even on the bound request: plain HTTP never carries the secret.
        let head = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: example.test\r\nAuthorization: Bearer {p}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        assert_refused(&lab, send(at, head.as_bytes()), &p);
        // In the query, percent-escaped in the path, in Basic credentials.
        let escaped = format!("%77{}", &p[1..]);
        let basic = crate::policy::credentials::b64::encode(format!("u:{p}").as_bytes());
        let basic = String::from_utf8(basic.to_vec()).unwrap();
        for head in [
            format!("GET /?k={p} HTTP/1.1\r\nHost: example.test\r\n\r\n"),
            format!("GET /{escaped} HTTP/1.1\r\nHost: example.test\r\n\r\n"),
            format!("GET / HTTP/1.1\r\nHost: example.test\r\nAuthorization: Basic {basic}\r\n\r\n"),
        ] {
            assert_refused(&lab, send(at, head.as_bytes()), &p);
        }
        // In a body (through the explicit proxy), split across two chunks sent apart: the
        // first half is held back, so the origin never sees the placeholder, not even its
        // start.
        let c = connect(EXPLICIT.into());
        let (a, b) = p.split_at(12);
        (&c).write_all(
            format!(
                "POST http://www.example.test:{}/v1/messages HTTP/1.1\r\n\
                 Host: www.example.test:{}\r\nTransfer-Encoding: chunked\r\n\r\n\
                 {:x}\r\nkey={a}\r\n",
                at.port(),
                at.port(),
                a.len() + 4
            )
            .as_bytes(),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        (&c).write_all(format!("{:x}\r\n{b}\r\n0\r\n\r\n", b.len()).as_bytes())
            .unwrap();
        assert_refused(&lab, response(&mut BufReader::new(c)), &p);
        // In a Content-Length body.
        let req = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: example.test\r\nContent-Length: {}\r\n\r\nk={p}",
            p.len() + 2
        );
        assert_refused(&lab, send(at, req.as_bytes()), &p);
        let records = credential_records(&lab);
        assert_eq!(records.len(), 6, "{records:?}");
        for r in &records {
            let d = r["decision"].as_str().unwrap();
            assert!(
                d.starts_with(&format!(
                    "denied: placeholder of {BINDING} in the plain-HTTP request"
                )),
                "{d}"
            );
        }
        assert_eq!(records[4]["name"], "www.example.test");
        assert_eq!(records[4]["source"], "http-proxy");
        assert_eq!(records[4]["method"], "POST");
        assert_eq!(records[4]["path"], "/v1/messages");
        let seen = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        assert!(!seen.contains("ward-cr"), "{seen}");
        assert!(seen.contains("key="), "the chunk's start went out: {seen}");
    });
}

#[test]
fn allow_plaintext_inject_swaps_headers_where_the_binding_matches() {
    in_netns(|| {
        let (lab, at, seen, p) = lab(vault(true));
        let c = connect(at);
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        // Bound: swapped in the header and the query, on a kept-alive connection.
        let head = format!(
            "POST /v1/messages?key={p} HTTP/1.1\r\nHost: example.test\r\nX-Api-Key: {p}\r\n\
             Content-Length: 2\r\n\r\nhi"
        );
        for _ in 0..2 {
            w.write_all(head.as_bytes()).unwrap();
            assert_eq!(response(&mut r).0, "HTTP/1.1 200 OK");
        }
        let got = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        assert_eq!(
            got.matches(&format!("POST /v1/messages?key={SECRET} HTTP/1.1\r\n"))
                .count(),
            2,
            "{got}"
        );
        assert_eq!(got.matches(&format!("X-Api-Key: {SECRET}\r\n")).count(), 2);
        assert!(!got.contains(&p));
        // Another path, another method: refused.
        for line in ["POST /v1/files", "GET /v1/messages"] {
            let req = format!("{line} HTTP/1.1\r\nHost: example.test\r\nX-Api-Key: {p}\r\n\r\n");
            assert_refused(&lab, send(at, req.as_bytes()), &p);
        }
        // Another host (through the explicit proxy): refused.
        let req = format!(
            "POST http://www.example.test:{}/v1/messages HTTP/1.1\r\nX-Api-Key: {p}\r\n\r\n",
            at.port()
        );
        assert_refused(&lab, send(EXPLICIT.into(), req.as_bytes()), &p);
        // The body: still refused.
        let req = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: example.test\r\nContent-Length: {}\r\n\r\n{p}",
            p.len()
        );
        assert_refused(&lab, send(at, req.as_bytes()), &p);
        let records = credential_records(&lab);
        let places: Vec<&str> = records
            .iter()
            .map(|r| r["decision"].as_str().unwrap())
            .collect();
        assert_eq!(places.len(), 4, "{places:?}");
        assert!(
            places[0].contains("in the header x-api-key: POST /v1/files is not among its paths")
        );
        assert!(places[1].contains("GET is not among its methods"));
        assert!(places[2].contains("www.example.test:"), "{}", places[2]);
        assert!(places[3].contains("plain-HTTP request"));
        let seen = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        assert!(!seen.contains(&p), "{seen}");
    });
}

#[test]
fn a_dns_name_holding_a_placeholder_is_refused() {
    in_netns(|| {
        let (lab, _, _, p) = lab(vault(false));
        for name in [
            format!("{p}.example.test."),
            format!("{}.example.test.", p.to_ascii_uppercase()),
            format!("x.{}.{}.example.test.", &p[..15], &p[15..]),
        ] {
            let m = dns(&name, RecordType::A);
            assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
            assert!(m.answers.is_empty());
        }
        let records = credential_records(&lab);
        assert_eq!(records.len(), 3, "{records:?}");
        assert_eq!(records[0]["name"], "[placeholder].example.test");
        assert_eq!(records[1]["name"], "[placeholder].example.test");
        assert_eq!(records[2]["name"], "(a name holding a placeholder)");
        assert_eq!(records[0]["source"], "dns");
        let d = records[0]["decision"].as_str().unwrap();
        assert_eq!(
            d,
            format!(
                "denied: placeholder of {BINDING} in the DNS name: a query for a name that \
                 holds it (exfiltration attempt)"
            )
        );
        let log = std::fs::read_to_string(&lab.log).unwrap();
        assert!(!log.to_ascii_lowercase().contains(&p[10..]), "{log}");
        // Other names are answered as before.
        assert_eq!(a_of("www.example.test."), Ipv4Addr::new(198, 18, 0, 3));
    });
}

/// The data of the chunked body `bytes` starts with.
fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&bytes[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&bytes[eol + 2..eol + 2 + size]);
        assert_eq!(&bytes[eol + 2 + size..eol + 4 + size], b"\r\n");
        bytes = &bytes[eol + 4 + size..];
    }
}

#[test]
fn a_chunked_body_without_placeholders_arrives_whole_and_the_connection_goes_on() {
    in_netns(|| {
        let (lab, at, seen, p) = lab(vault(false));
        let c = connect(at);
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        // The first chunk ends in what may begin a placeholder (held back, then released
        // when the next chunk shows it is not one): the body is re-framed, its data intact.
        let head = "POST /v1/messages HTTP/1.1\r\nHost: example.test\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        w.write_all(format!("{head}9\r\nabc ward-\r\n").as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        w.write_all(b"6\r\ncrane!\r\n0\r\n\r\n").unwrap();
        assert_eq!(response(&mut r).0, "HTTP/1.1 200 OK");
        // Kept alive: the next request on the same connection.
        w.write_all(format!("{head}2\r\nhi\r\n0\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(response(&mut r).0, "HTTP/1.1 200 OK");
        let got = seen.lock().unwrap().clone();
        let bodies: Vec<Vec<u8>> = String::from_utf8(got)
            .unwrap()
            .split("POST /v1/messages HTTP/1.1\r\n")
            .skip(1)
            .map(|req| dechunk(&req.as_bytes()[req.find("\r\n\r\n").unwrap() + 4..]))
            .collect();
        assert_eq!(bodies, [b"abc ward-crane!".to_vec(), b"hi".to_vec()]);
        // A placeholder in a chunk extension or a trailer: refused too.
        for tail in [
            format!("2;x={p}\r\nhi\r\n0\r\n\r\n"),
            format!("2\r\nhi\r\n0\r\nX-Trailer: {p}\r\n\r\n"),
        ] {
            let req = format!("{head}{tail}");
            assert_refused(&lab, send(at, req.as_bytes()), &p);
        }
        assert_eq!(credential_records(&lab).len(), 2);
    });
}

#[test]
fn a_placeholder_in_a_connect_target_is_refused_whatever_the_rules() {
    in_netns(|| {
        let (lab, _at, _seen, p) = lab(vault(false));
        // *.example.test is allowed: only the placeholder makes this an exfiltration.
        let (status, headers, _) = super::tests::connect_request(&format!("{p}.example.test:443"));
        assert!(status.starts_with("HTTP/1.1 403"), "{status}");
        assert_eq!(
            header(&headers, "X-Ward-Denied"),
            Some("credential binding")
        );
        let recs = credential_records(&lab);
        assert_eq!(recs.len(), 1, "{recs:?}");
        assert!(recs[0]["decision"]
            .as_str()
            .is_some_and(|d| d.contains(BINDING) && d.contains("host name")));
        let log = std::fs::read_to_string(&lab.log).unwrap();
        assert!(!log.contains(SECRET), "{log}");
    });
}
