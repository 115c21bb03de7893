//! The serving core's client-facing paths over real sockets (the harness is `serve_tests`):
//! the transparent listener (TLS by SNI, HTTP by Host, server-first protocols, addresses and
//! ports it refuses) and the explicit proxy (CONNECT, absolute-form HTTP, SOCKS5).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use super::tests::*;
use super::SERVER_FIRST;

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
