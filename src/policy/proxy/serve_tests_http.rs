//! HTTP method/path rules (issue 17) over real sockets (the harness is `serve_tests`): each
//! plain-HTTP request to a host with rules is judged by method and normalised path, on the
//! transparent listener, in a CONNECT tunnel and in absolute form; what the proxy cannot
//! inspect there (TLS, an Upgrade, opaque bytes) is refused and recorded.

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};

use serde_json::json;

use super::tests::*;

/// example.test (the origin, 127.0.0.1) has rules: POST to messages, GET anywhere, files
/// denied. www.example.test (the same origin) has none.
fn http_lab() -> (Lab, SocketAddr) {
    let port = origin();
    let at: SocketAddr = (Ipv4Addr::new(198, 18, 0, 2), port).into();
    let lab = Lab::start(Setup {
        transparent: at,
        allowed: vec!["example.test", "www.example.test"],
        hosts: "127.0.0.1 example.test www.example.test\n".into(),
        http: Some(json!([{
            "host": "example.test",
            "allow": [
                {"methods": ["POST"], "paths": ["/v1/messages", "/v1/messages/*"]},
                {"methods": ["GET"], "paths": ["/*"]}
            ],
            "deny": [{"paths": ["/v1/files", "/v1/files/*"]}]
        }])),
        ..Setup::default()
    });
    assert_eq!(a_of("example.test."), Ipv4Addr::new(198, 18, 0, 2));
    (lab, at)
}

fn request(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n{extra}\r\nhi")
        .into_bytes()
}

/// Sends one request on a new connection to the transparent listener; the response.
fn one(at: SocketAddr, bytes: &[u8]) -> (String, Vec<(String, String)>, String) {
    let c = connect(at);
    (&c).write_all(bytes).unwrap();
    response(&mut BufReader::new(c))
}

fn assert_denied(
    got: (String, Vec<(String, String)>, String),
    rule: &str,
    what: &str,
) -> Vec<(String, String)> {
    let (status, headers, body) = got;
    assert_eq!(status, "HTTP/1.1 403 Forbidden", "{what}: {body}");
    assert_eq!(header(&headers, "X-Ward-Denied"), Some(rule), "{what}");
    assert!(body.starts_with("ward: example.test:"), "{what}: {body}");
    headers
}

#[test]
fn requests_are_judged_by_method_and_path_one_by_one() {
    in_netns(|| {
        let (lab, at) = http_lab();
        let c = connect(at);
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        // Allowed, then allowed by another rule, on one kept-alive connection.
        w.write_all(&request("POST", "/v1/messages", "")).unwrap();
        let (status, _, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(body.contains("line=POST /v1/messages HTTP/1.1"), "{body}");
        w.write_all(&request("GET", "/v1/files/../models?key=1", ""))
            .unwrap();
        let (status, _, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            body.contains("line=GET /v1/files/../models?key=1"),
            "{body}"
        );
        // The third is denied: 403 naming the rule, and the connection is closed.
        w.write_all(&request("POST", "/v1/files", "")).unwrap();
        let (status, headers, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        assert_eq!(header(&headers, "X-Ward-Denied"), Some("http[0].deny[0]"));
        assert_eq!(
            body,
            format!(
                "ward: example.test:{} POST /v1/files denied by http[0].deny[0]\n",
                at.port()
            )
        );
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{rest:?}");
        // Recorded with method and path (never the query).
        let allowed: Vec<_> = lab
            .find("example.test", "allowed")
            .into_iter()
            .filter(|r| r["source"] != "dns")
            .collect();
        let paths: Vec<_> = allowed
            .iter()
            .map(|r| (r["method"].clone(), r["path"].clone()))
            .collect();
        assert_eq!(
            paths,
            [
                (json!("POST"), json!("/v1/messages")),
                (json!("GET"), json!("/v1/models"))
            ],
            "{allowed:?}"
        );
        assert!(allowed[0]["rule"]
            .as_str()
            .unwrap()
            .ends_with("; http[0].allow[0]"));
        assert!(allowed[1]["rule"]
            .as_str()
            .unwrap()
            .ends_with("; http[0].allow[1]"));
        let denied = lab.find("example.test", "denied");
        assert_eq!(denied.len(), 1, "{denied:?}");
        assert_eq!(denied[0]["rule"], "http[0].deny[0]");
        assert_eq!(denied[0]["method"], "POST");
        assert_eq!(denied[0]["path"], "/v1/files");
        assert_eq!(denied[0]["source"], "transparent");
        assert_eq!(
            denied[0]["destination"],
            format!("127.0.0.1:{}", at.port()),
            "the connection's upstream"
        );
        assert!(!lab
            .records()
            .iter()
            .any(|r| r.to_string().contains("key=1")));
    });
}

#[test]
fn path_tricks_methods_and_upgrades_are_refused() {
    in_netns(|| {
        let (lab, at) = http_lab();
        for path in [
            "/v1/%66iles",
            "/v1/./files",
            "/v1//files",
            "/v1/messages/%2e%2e/files",
            "/V1/Files",
        ] {
            assert_denied(one(at, &request("POST", path, "")), "http[0].deny[0]", path);
        }
        for path in ["/v1/messages%2f..%2ffiles", "/v1/messages/..;/files"] {
            assert_denied(
                one(at, &request("POST", path, "")),
                "http: ambiguous request",
                path,
            );
        }
        // Nothing allows PUT; DELETE anywhere.
        assert_denied(
            one(at, &request("PUT", "/v1/messages", "")),
            "http: not allowed",
            "PUT",
        );
        // A lower-case method on a kept-alive connection (the first request classifies the
        // connection; a later one is parsed as HTTP): refused, not matched by case.
        let c = connect(at);
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        w.write_all(&request("GET", "/", "")).unwrap();
        assert_eq!(response(&mut r).0, "HTTP/1.1 200 OK");
        w.write_all(&request("post", "/v1/messages", "")).unwrap();
        assert_denied(response(&mut r), "http: ambiguous request", "post");
        // An Upgrade (WebSocket) even where GET is allowed: what follows could not be judged.
        assert_denied(
            one(
                at,
                b"GET /ws HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\n\
                  Upgrade: websocket\r\n\r\n",
            ),
            "http: cannot inspect",
            "upgrade",
        );
        // The origin saw none of them: every denial is recorded, none allowed but the GET.
        let allowed: Vec<_> = lab
            .find("example.test", "allowed")
            .into_iter()
            .filter(|r| r["source"] != "dns")
            .collect();
        assert_eq!(allowed.len(), 1, "{allowed:?}");
        assert_eq!(lab.find("example.test", "denied").len(), 10);
    });
}

#[test]
fn what_cannot_be_inspected_on_a_host_with_rules_is_refused() {
    in_netns(|| {
        let (lab, at) = http_lab();
        // TLS on the transparent listener: an alert, recorded with the reason.
        let mut c = connect(at);
        c.write_all(&hello("openssl-s_client-tls13.bin")).unwrap();
        assert_eq!(read_all(c), [0x15, 3, 1, 0, 2, 2, 0x31]);
        let tls = lab.find(
            "example.test",
            "denied: host has http rules; no CA to terminate TLS here",
        );
        assert_eq!(tls.len(), 1, "{:?}", lab.records());
        assert_eq!(tls[0]["rule"], "http: cannot inspect");
        // Opaque bytes: closed unrelayed.
        let mut c = connect(at);
        c.write_all(b"EHLO x\r\n").unwrap();
        assert!(read_all(c).is_empty());
        assert_eq!(
            lab.find("example.test", "denied: host has http rules; only plain")
                .len(),
            1
        );
        // In a CONNECT tunnel: TLS refused; plain HTTP judged request by request.
        let (status, _, r) = connect_request(&format!("example.test:{}", at.port()));
        assert!(status.contains("200"), "{status}");
        let mut c = r.into_inner();
        c.write_all(&hello("openssl-s_client-tls13.bin")).unwrap();
        assert_eq!(read_all(c), [0x15, 3, 1, 0, 2, 2, 0x31]);
        let (status, _, r) = connect_request(&format!("example.test:{}", at.port()));
        assert!(status.contains("200"), "{status}");
        let mut w: TcpStream = r.get_ref().try_clone().unwrap();
        let mut r = r;
        w.write_all(&request("POST", "/v1/messages/1", "")).unwrap();
        assert_eq!(response(&mut r).0, "HTTP/1.1 200 OK");
        w.write_all(&request("POST", "/v1/%66iles", "")).unwrap();
        assert_denied(response(&mut r), "http[0].deny[0]", "tunnel");
        // Through SOCKS5: TLS refused too.
        let (code, mut c) = socks("example.test", at.port());
        assert_eq!(code, 0);
        c.write_all(&hello("openssl-s_client-tls13.bin")).unwrap();
        assert_eq!(read_all(c), [0x15, 3, 1, 0, 2, 2, 0x31]);
        assert_eq!(
            lab.find("example.test", "denied: host has http rules; no CA")
                .len(),
            3
        );
        // A host without rules is spliced as before (TLS reaches the origin).
        let (code, mut c) = socks("www.example.test", at.port());
        assert_eq!(code, 0);
        c.write_all(&hello("openssl-s_client-tls12.bin")).unwrap();
        let got = String::from_utf8(read_all(c)).unwrap();
        assert!(got.starts_with("tls-origin"), "{got:?}");
    });
}

#[test]
fn absolute_form_requests_are_judged_by_path() {
    in_netns(|| {
        let port = origin();
        let lab = Lab::start(Setup {
            http: Some(json!([{
                "host": "example.test",
                "allow": [{"methods": ["POST"], "paths": ["/v1/messages"]}]
            }])),
            ..Setup::default()
        });
        let c = connect(EXPLICIT.into());
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        let req = |path: &str| {
            format!(
                "POST http://example.test:{port}{path} HTTP/1.1\r\nHost: example.test:{port}\r\n\
                 Content-Length: 0\r\n\r\n"
            )
        };
        w.write_all(req("/v1/./messages").as_bytes()).unwrap();
        let (status, _, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            body.starts_with("line=POST /v1/./messages HTTP/1.1"),
            "{body}"
        );
        w.write_all(req("/v1/files").as_bytes()).unwrap();
        let (status, headers, _) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        assert_eq!(header(&headers, "X-Ward-Denied"), Some("http: not allowed"));
        let denied = lab.find("example.test", "denied");
        assert_eq!(denied.len(), 1, "{denied:?}");
        assert_eq!(denied[0]["source"], "http-proxy");
        assert_eq!(denied[0]["path"], "/v1/files");
    });
}

/// A client that says nothing at first (a server-first protocol, or a slow one): for a host
/// without rules the proxy dials after `SERVER_FIRST`; for one with rules nothing is dialled
/// until a request has been judged.
#[test]
fn nothing_is_dialled_for_a_silent_client_of_a_host_with_rules() {
    in_netns(|| {
        let (lab, at) = http_lab();
        let c = connect(at);
        std::thread::sleep(super::SERVER_FIRST * 3);
        let dialled = |lab: &Lab| {
            lab.records()
                .into_iter()
                .filter(|r| r["source"] == "transparent" && r["decision"] == "allowed")
                .count()
        };
        assert_eq!(dialled(&lab), 0, "{:?}", lab.records());
        // The request, when it comes, is judged and then dialled.
        let mut w = c.try_clone().unwrap();
        w.write_all(&request("POST", "/v1/messages", "")).unwrap();
        assert_eq!(response(&mut BufReader::new(c)).0, "HTTP/1.1 200 OK");
        assert_eq!(dialled(&lab), 1, "{:?}", lab.records());
    });
}
