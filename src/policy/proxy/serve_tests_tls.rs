//! TLS termination (issue 17) over real sockets: a proxy with the container's CA terminates TLS
//! to hosts with http rules or credentials, judges each request (HTTP/1.1 and HTTP/2), and
//! sends it on over its own verified TLS connection to an origin of the test, kept alive; a
//! host without either is still spliced. The harness is `serve_tests_tls_lab` (and the
//! proxy's, `serve_tests`).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpStream;

use super::tests::*;
use super::tests_tls_lab::*;
use crate::policy::credentials::{Binding, Secret, Vault};

#[test]
fn terminated_http1_requests_are_judged_and_kept_alive() {
    in_netns(|| {
        let l = tls_lab(Vault::default());
        let host = format!("example.test:{}", l.at.port());
        runtime().block_on(async {
            let tcp = TcpStream::connect(l.at).await.unwrap();
            let tls = tls_connect(tcp, &l.ca_pem, "example.test", &[b"http/1.1"])
                .await
                .unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
            let mut s = h1(tls).await;
            let (st, _, body) = call(&mut s, "GET", "/v1/models?key=1", &host, None, "").await;
            assert_eq!(st, StatusCode::OK, "{body}");
            assert!(body.starts_with("GET /v1/models?key=1 host="), "{body}");
            let (st, _, body) = call(&mut s, "POST", "/v1/./messages", &host, None, "hi").await;
            assert_eq!(st, StatusCode::OK, "{body}");
            assert!(body.contains("body=hi"), "{body}");
            // Denied by path (and its tricks): 403 naming the rule; the connection goes on.
            for p in ["/v1/files", "/v1/%66iles", "/v1//files"] {
                let (st, h, body) = call(&mut s, "POST", p, &host, None, "x").await;
                assert_eq!(st, StatusCode::FORBIDDEN, "{p}: {body}");
                assert_eq!(h["x-ward-denied"], "http[0].deny[0]", "{p}");
            }
            let (st, h, _) =
                call(&mut s, "POST", "/v1/messages%2f..%2ffiles", &host, None, "").await;
            assert_eq!(st, StatusCode::FORBIDDEN);
            assert_eq!(h["x-ward-denied"], "http: ambiguous request");
            // Another Host on the same connection: 421.
            let (st, h, body) = call(&mut s, "GET", "/", "www.example.test", None, "").await;
            assert_eq!(st, StatusCode::MISDIRECTED_REQUEST, "{body}");
            assert_eq!(h["x-ward-denied"], "name agreement (Host)");
            let (st, _, _) = call(&mut s, "GET", "/", "example.test:1", None, "").await;
            assert_eq!(st, StatusCode::MISDIRECTED_REQUEST);
            // Still the same client connection, and one upstream connection for all of it.
            let (st, _, _) = call(&mut s, "GET", "/last", &host, None, "").await;
            assert_eq!(st, StatusCode::OK);
        });
        assert_eq!(
            l.good.accepted.load(Ordering::SeqCst),
            1,
            "one kept-alive upstream"
        );
        let recs = l.lab.records();
        let allowed: Vec<_> = l
            .lab
            .find("example.test", "allowed")
            .into_iter()
            .filter(|r| r["source"] == "transparent")
            .map(|r| (r["method"].clone(), r["path"].clone()))
            .collect();
        assert_eq!(
            allowed,
            [
                (json!("GET"), json!("/v1/models")),
                (json!("POST"), json!("/v1/messages")),
                (json!("GET"), json!("/last"))
            ],
            "{recs:?}"
        );
        let denied = l.lab.find("example.test", "denied");
        assert_eq!(denied.len(), 6, "{denied:?}");
        assert_eq!(denied[0]["rule"], "http[0].deny[0]");
        assert_eq!(denied[0]["path"], "/v1/files");
        assert_eq!(denied[5]["rule"], "name agreement (Host)");
        assert!(!recs.iter().any(|r| r.to_string().contains("key=1")));
    });
}

#[test]
fn http2_clients_are_served_by_alpn_in_a_tunnel() {
    in_netns(|| {
        let l = tls_lab(Vault::default());
        let port = l.good.port;
        runtime().block_on(async {
            let tls = tls_connect(
                tunnel(&format!("example.test:{port}")),
                &l.ca_pem,
                "example.test",
                &[b"h2", b"http/1.1"],
            )
            .await
            .unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let get = |path: &str, authority: &str| {
                Request::builder()
                    .method("GET")
                    .uri(format!("https://{authority}{path}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap()
            };
            let a = format!("example.test:{port}");
            // Two streams at once, then a denied one and a misdirected one.
            let (r1, r2) = tokio::join!(
                send.clone().send_request(get("/one", &a)),
                send.clone().send_request(get("/two", &a))
            );
            for (r, p) in [(r1, "/one"), (r2, "/two")] {
                let r = r.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                assert_eq!(r.version(), http::Version::HTTP_2);
                let b = r.into_body().collect().await.unwrap().to_bytes();
                assert!(
                    b.starts_with(format!("GET {p} host={a}").as_bytes()),
                    "{b:?}"
                );
            }
            let r = send.send_request(get("/v1/files", &a)).await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            let r = send
                .send_request(get("/", &format!("www.example.test:{port}")))
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
        });
        // A refused request whose body is still coming: the 403 arrives whole (the stream
        // is not cancelled before the answer).
        runtime().block_on(async {
            let tls = tls_connect(
                tunnel(&format!("example.test:{port}")),
                &l.ca_pem,
                "example.test",
                &[b"h2"],
            )
            .await
            .unwrap();
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
            tx.send(Bytes::from_static(b"first part")).await.unwrap();
            let req = Request::builder()
                .method("POST")
                .uri(format!("https://example.test:{port}/v1/files"))
                .body(Chunks(rx))
                .unwrap();
            let r = send.send_request(req).await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            let b = r.into_body().collect().await.unwrap().to_bytes();
            assert!(b.starts_with(b"ward: example.test:"), "{b:?}");
            drop(tx);
        });
        let denied = l.lab.find("example.test", "denied");
        assert_eq!(denied.len(), 3, "{denied:?}");
        assert!(denied.iter().all(|d| d["source"] == "connect"));
    });
}

#[test]
fn server_sent_events_arrive_event_by_event() {
    // Without a vault (the body passed on as it is), and with one (through its filter).
    in_netns(|| sse(Vault::default()));
    in_netns(|| {
        let ph = crate::policy::credentials::mint(0).unwrap();
        sse(vault(&ph, "sk-live-secret-1234", "example.test"))
    });
}

fn sse(v: Vault) {
    {
        let l = tls_lab(v);
        let host = format!("example.test:{}", l.at.port());
        runtime().block_on(async {
            let tcp = TcpStream::connect(l.at).await.unwrap();
            let tls = tls_connect(tcp, &l.ca_pem, "example.test", &[b"http/1.1"])
                .await
                .unwrap();
            let mut s = h1(tls).await;
            let req = Request::builder()
                .uri("/sse")
                .header("host", &host)
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = s.send_request(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let mut body = resp.into_body();
            // The first event arrives while the origin still holds the second back.
            let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
                .await
                .expect("the first event did not arrive before the origin sent the second")
                .unwrap()
                .unwrap();
            assert_eq!(first.into_data().unwrap(), "data: 1\n\n");
            l.good.release.notify_one();
            let mut rest = Vec::new();
            while let Some(f) = body.frame().await {
                if let Ok(d) = f.unwrap().into_data() {
                    rest.extend_from_slice(&d);
                }
            }
            assert_eq!(rest, b"data: 2\n\n");
        });
    }
}

#[test]
fn an_untrusted_origin_certificate_is_a_502_and_recorded() {
    in_netns(|| {
        let l = tls_lab(Vault::default());
        let port = l.bad.port;
        runtime().block_on(async {
            let tls = tls_connect(
                tunnel(&format!("bad.test:{port}")),
                &l.ca_pem,
                "bad.test",
                &[b"http/1.1"],
            )
            .await
            .unwrap();
            let mut s = h1(tls).await;
            let (st, h, body) =
                call(&mut s, "GET", "/", &format!("bad.test:{port}"), None, "").await;
            assert_eq!(st, StatusCode::BAD_GATEWAY, "{body}");
            assert_eq!(h["x-ward-denied"], "upstream TLS");
            assert!(body.contains("certificate is not trusted"), "{body}");
        });
        let denied = l.lab.find(
            "bad.test",
            "denied: the origin's certificate is not trusted",
        );
        assert_eq!(denied.len(), 1, "{:?}", l.lab.records());
        assert_eq!(denied[0]["rule"], "upstream TLS");
        assert_eq!(denied[0]["method"], "GET");
        let requests = l.lab.find("bad.test", "allowed");
        assert!(
            requests.iter().all(|r| r["method"].is_null()),
            "{requests:?}"
        );
    });
}

#[test]
fn a_host_without_rules_or_credentials_is_spliced() {
    in_netns(|| {
        let l = tls_lab(Vault::default());
        let port = l.good.port;
        runtime().block_on(async {
            // The client trusts only the origin's CA: it sees the origin's own certificate.
            let tls = tls_connect(
                tunnel(&format!("www.example.test:{port}")),
                &l.origin_ca_pem,
                "www.example.test",
                &[b"http/1.1"],
            )
            .await
            .unwrap();
            let peer = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
            assert_eq!(peer, l.good.cert);
            let mut s = h1(tls).await;
            let (st, _, _) = call(
                &mut s,
                "GET",
                "/v1/files",
                &format!("www.example.test:{port}"),
                None,
                "",
            )
            .await;
            assert_eq!(st, StatusCode::OK);
            // And the container's CA is not what example.test's origin shows through a splice:
            // a client trusting only the origin's CA fails on a terminated host.
            let e = tls_connect(
                tunnel(&format!("example.test:{port}")),
                &l.origin_ca_pem,
                "example.test",
                &[b"http/1.1"],
            )
            .await;
            assert!(
                e.is_err(),
                "example.test is terminated with the container's CA"
            );
        });
    });
}

/// The added latency of a terminated, kept-alive request against the same request sent to the
/// origin directly (printed, not asserted: a debug build on a shared machine).
#[test]
fn measure_added_latency_of_a_kept_alive_terminated_request() {
    in_netns(|| measure("no credentials", Vault::default()));
    in_netns(|| {
        let ph = crate::policy::credentials::mint(0).unwrap();
        measure(
            "a credential swapped",
            vault(&ph, "sk-live-secret-1234", "example.test"),
        )
    });
}

/// p50 of kept-alive `POST /v1/messages` (with `Authorization: Bearer <placeholder>` when the
/// vault has a binding) straight to the origin and through the proxy.
fn measure(what: &str, v: Vault) {
    let auth = v
        .bindings
        .first()
        .map(|b| format!("Bearer {}", b.placeholder));
    let l = tls_lab(v);
    let host = format!("example.test:{}", l.at.port());
    const N: usize = 300;
    let p50 = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (direct, proxied) = runtime().block_on(async {
        let mut times = Vec::new();
        for (to, ca) in [
            (
                SocketAddr::from(([127, 0, 0, 1], l.good.port)),
                &l.origin_ca_pem,
            ),
            (l.at, &l.ca_pem),
        ] {
            let tcp = TcpStream::connect(to).await.unwrap();
            let tls = tls_connect(tcp, ca, "example.test", &[b"http/1.1"])
                .await
                .unwrap();
            let mut s = h1(tls).await;
            let mut v = Vec::with_capacity(N);
            for i in 0..N + 20 {
                let t0 = Instant::now();
                let (st, _, body) =
                    call(&mut s, "POST", "/v1/messages", &host, auth.as_deref(), "{}").await;
                assert_eq!(st, StatusCode::OK, "{body}");
                if i >= 20 {
                    v.push(t0.elapsed());
                }
            }
            times.push(p50(v));
        }
        (times[0], times[1])
    });
    assert_eq!(
        l.good.accepted.load(Ordering::SeqCst),
        2,
        "one upstream connection each"
    );
    eprintln!(
        "terminated kept-alive POST, {what}: p50 direct {direct:?}, through the proxy \
         {proxied:?}, added {:?} (debug build)",
        proxied.saturating_sub(direct)
    );
}

/// A vault with one binding for `host`'s POST /v1/messages.
fn vault(placeholder: &str, secret: &str, host: &str) -> Vault {
    // Pushed, not built whole: the vault's search is made on first use.
    let mut v = Vault::default();
    v.bindings.push(Binding {
        name: "credentials.envVars[0] (API_KEY)".into(),
        placeholder: placeholder.into(),
        secret: Secret::new(secret.as_bytes().to_vec()),
        hosts: vec![
            crate::spec::domains::parse_pattern(host, crate::spec::domains::List::Allowed).unwrap(),
        ],
        methods: Some(vec!["POST".into()]),
        paths: Some(vec![
            crate::spec::domains::http::parse_path("/v1/messages").unwrap()
        ]),
    });
    v
}

#[test]
fn credentials_are_swapped_on_the_way_out_and_masked_on_the_way_back() {
    in_netns(|| {
        let ph = crate::policy::credentials::mint(0).unwrap();
        let l = tls_lab(vault(&ph, "sk-live-secret-1234", "example.test"));
        let host = format!("example.test:{}", l.at.port());
        runtime().block_on(async {
            let tcp = TcpStream::connect(l.at).await.unwrap();
            let tls = tls_connect(tcp, &l.ca_pem, "example.test", &[b"http/1.1"])
                .await
                .unwrap();
            let mut s = h1(tls).await;
            let bearer = format!("Bearer {ph}");
            // The bound request: the origin sees the secret; the echo comes back masked.
            let (st, h, body) =
                call(&mut s, "POST", "/v1/messages", &host, Some(&bearer), "x").await;
            assert_eq!(st, StatusCode::OK, "{body}");
            assert!(
                body.contains(&format!("authorization=Bearer {ph}")),
                "{body}"
            );
            assert!(!body.contains("sk-live"), "{body}");
            assert_eq!(h["x-echo-authorization"], bearer.as_str());
            // Elsewhere (another path; the body of a request): refused and recorded.
            let (st, h, _) = call(&mut s, "GET", "/v1/models", &host, Some(&bearer), "").await;
            assert_eq!(st, StatusCode::FORBIDDEN);
            assert_eq!(h["x-ward-denied"], "credential binding");
            let (st, _, _) = call(&mut s, "POST", "/v1/messages/1", &host, None, &ph).await;
            assert_eq!(st, StatusCode::FORBIDDEN);
            // The bound request with a method override: the origin could run DELETE with
            // the secret, so it is refused.
            let req = Request::builder()
                .method("POST")
                .uri("/v1/messages")
                .header("host", &host)
                .header("authorization", &bearer)
                .header("x-http-method-override", "DELETE")
                .body(Full::new(Bytes::from_static(b"x")))
                .unwrap();
            s.ready().await.unwrap();
            let resp = s.send_request(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains("x-http-method-override"), "{body}");
            assert!(!body.contains("sk-live"), "{body}");
        });
        let denied = l.lab.find(
            "example.test",
            "denied: placeholder of credentials.envVars[0]",
        );
        assert_eq!(denied.len(), 2, "{:?}", l.lab.records());
        assert!(!l
            .lab
            .records()
            .iter()
            .any(|r| r.to_string().contains("sk-live")));
    });
}

/// Sends `GET path` with `Upgrade: echo` on a new terminated connection to `name`.
async fn upgrade(l: &TlsLab, name: &str, method: &str, path: &str) -> Response<Incoming> {
    let port = l.good.port;
    let tls = tls_connect(
        tunnel(&format!("{name}:{port}")),
        &l.ca_pem,
        name,
        &[b"http/1.1"],
    )
    .await
    .unwrap();
    let mut s = h1(tls).await;
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("{name}:{port}"))
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(Full::new(Bytes::new()))
        .unwrap();
    s.send_request(req).await.unwrap()
}

#[test]
fn upgrades_pass_only_where_an_http_rule_allows_them_and_connect_is_refused() {
    in_netns(|| {
        // www.example.test has a credential binding but no http rules: terminated too.
        let ph = crate::policy::credentials::mint(0).unwrap();
        let l = tls_lab(vault(&ph, "sk-live-secret-1234", "www.example.test"));
        let port = l.good.port;
        runtime().block_on(async {
            // GET /* is allowed on example.test: the upgrade goes through and carries bytes.
            let mut r = upgrade(&l, "example.test", "GET", "/ws").await;
            assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
            let up = hyper::upgrade::on(&mut r).await.unwrap();
            let mut io = TokioIo::new(up);
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            io.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut got))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&got, b"ping");
            // A denied path, and a host whose rules cannot allow it (it has none): 403.
            let r = upgrade(&l, "example.test", "POST", "/v1/files").await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            let r = upgrade(&l, "www.example.test", "GET", "/ws").await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            assert_eq!(r.headers()["x-ward-denied"], "http: cannot inspect");
            // The bound host still serves plain requests (terminated: the proxy's CA).
            let tls = tls_connect(
                tunnel(&format!("www.example.test:{port}")),
                &l.ca_pem,
                "www.example.test",
                &[b"http/1.1"],
            )
            .await
            .unwrap();
            let mut s = h1(tls).await;
            let host = format!("www.example.test:{port}");
            let (st, _, body) = call(&mut s, "GET", "/x", &host, None, "").await;
            assert_eq!(st, StatusCode::OK, "{body}");
            // CONNECT inside a terminated connection.
            let req = Request::builder()
                .method("CONNECT")
                .uri(format!("example.test:{port}"))
                .header("host", format!("example.test:{port}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let tls = tls_connect(
                tunnel(&format!("example.test:{port}")),
                &l.ca_pem,
                "example.test",
                &[b"http/1.1"],
            )
            .await
            .unwrap();
            let mut s = h1(tls).await;
            let r = s.send_request(req).await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
        });
        let denied = l.lab.find("www.example.test", "denied");
        assert_eq!(denied.len(), 1, "{denied:?}");
        assert_eq!(denied[0]["rule"], "http: cannot inspect");
        let connect = l.lab.find("example.test", "denied: CONNECT inside");
        assert_eq!(connect.len(), 1, "{:?}", l.lab.records());
    });
}

/// curl (nghttp2) over HTTP/2, refused on its headers while its body is on the way: it must read
/// the 403, not a stream cancelled before it (curl exits 92 then).
#[test]
fn curl_over_http2_reads_a_refusal_of_a_request_with_a_body() {
    if std::process::Command::new("curl")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: no curl");
        return;
    }
    in_netns(|| {
        let l = tls_lab(Vault::default());
        let port = l.good.port;
        let ca = std::env::temp_dir().join(format!("ward-tls-curl-{}.pem", std::process::id()));
        std::fs::write(&ca, &l.ca_pem).unwrap();
        for _ in 0..5 {
            let out = std::process::Command::new("curl")
                .args(["-sS", "--http2", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg("--cacert")
                .arg(&ca)
                .args(["--proxy", "http://198.18.0.1:3128", "--data", "x"])
                .arg(format!("https://example.test:{port}/v1/files"))
                .output()
                .unwrap();
            let got = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && got == "403",
                "{:?} {got} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = std::fs::remove_file(&ca);
    });
}
