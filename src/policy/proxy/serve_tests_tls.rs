//! TLS termination (issue 17) over real sockets (the harness is `serve_tests`): a proxy with
//! the container's CA terminates TLS to hosts with http rules, judges each request (HTTP/1.1
//! and HTTP/2), and sends it on over its own verified TLS connection to an origin of the test
//! (hyper over tokio-rustls, its certificate from a test CA given as `--egress-ca`), kept alive;
//! a host without rules is still spliced.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;

use super::tests::*;
use super::*;
use crate::policy::credentials::{Binding, Secret, Vault};
use crate::policy::egress::slot::Listeners;
use crate::policy::proxy::resolve::Upstream;
use crate::policy::proxy::tls::ca::Authority;

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// A CA of the test (what `--egress-ca` would name) and certificates it signs.
struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ward test origin CA");
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa { params, key, pem }
    }

    /// A leaf for `names` and its key.
    fn leaf(&self, names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        (
            CertificateDer::from(cert.der().to_vec()),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

/// An HTTPS origin on 127.0.0.1. `/sse` streams `data: 1`, then `data: 2` once `release`
/// is notified; `Upgrade: echo` switches to a protocol that echoes bytes; anything else is echoed: `METHOD target host=.. authorization=.. body=..`
/// (and the Authorization header again as `x-echo-authorization`).
struct Origin {
    port: u16,
    /// TLS connections accepted.
    accepted: Arc<AtomicUsize>,
    release: Arc<tokio::sync::Notify>,
    cert: CertificateDer<'static>,
}

fn origin(ca: &TestCa, names: &[&str]) -> Origin {
    let (cert, key) = ca.leaf(names);
    let mut cfg =
        rustls::ServerConfig::builder_with_provider(crate::policy::proxy::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let (count, rel) = (Arc::clone(&accepted), Arc::clone(&release));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                let (acceptor, count, rel) =
                    (acceptor.clone(), Arc::clone(&count), Arc::clone(&rel));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(s).await else {
                        return;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    let svc = hyper::service::service_fn(move |req| answer(req, Arc::clone(&rel)));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
    });
    Origin {
        port,
        accepted,
        release,
        cert,
    }
}

async fn answer(
    req: Request<Incoming>,
    release: Arc<tokio::sync::Notify>,
) -> Result<Response<Body>, std::convert::Infallible> {
    if req.headers().get("upgrade").is_some_and(|v| v == "echo") {
        let mut req = req;
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(u) = on.await {
                let (mut r, mut w) = tokio::io::split(TokioIo::new(u));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut r = Response::new(Full::new(Bytes::new()).boxed_unsync());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut().insert("upgrade", "echo".parse().unwrap());
        r.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        return Ok(r);
    }
    if req.uri().path() == "/sse" {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        tokio::spawn(async move {
            let _ = tx.send(Bytes::from_static(b"data: 1\n\n")).await;
            release.notified().await;
            let _ = tx.send(Bytes::from_static(b"data: 2\n\n")).await;
        });
        let stream = chunks(rx);
        let mut r = Response::new(stream);
        r.headers_mut()
            .insert("content-type", "text/event-stream".parse().unwrap());
        return Ok(r);
    }
    let h = |n: &str| {
        req.headers()
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    let (host, auth) = (h("host"), h("authorization"));
    let line = format!(
        "{} {}",
        req.method(),
        req.uri().path_and_query().map_or("", |p| p.as_str())
    );
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let text = format!(
        "{line} host={host} authorization={auth} body={}\n",
        String::from_utf8_lossy(&body)
    );
    let mut r = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
    if !auth.is_empty() {
        r.headers_mut()
            .insert("x-echo-authorization", auth.parse().unwrap());
    }
    Ok(r)
}

/// A body from a channel of chunks (each its own frame, sent as it comes).
fn chunks(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    Chunks(rx).boxed_unsync()
}

struct Chunks(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// The proxy, with the container's CA, trusting `roots_pem` upstream.
fn start(s: Setup, ca: Authority, roots_pem: &str, vault: Vault) -> Lab {
    let allowed: Vec<String> = s.allowed.iter().map(|x| x.to_string()).collect();
    let mut domains = crate::spec::domains::compile(
        crate::spec::domains::Fields {
            allowed: Some(&allowed),
            denied: None,
            reasons: &Default::default(),
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
    let log = std::env::temp_dir().join(format!(
        "ward-proxy-tls-test-{}-{}.jsonl",
        std::process::id(),
        s.transparent.port()
    ));
    let _ = std::fs::remove_file(&log);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let proxy = SLOT.proxy();
    let tcp = |at: SocketAddr| -> std::os::fd::OwnedFd {
        std::net::TcpListener::bind(at).unwrap().into()
    };
    let listeners = Listeners {
        slot: SLOT,
        dns_udp: std::net::UdpSocket::bind((proxy, 53)).unwrap().into(),
        dns_tcp: tcp((proxy, 53).into()),
        explicit: tcp((proxy, 3128).into()),
        transparent: tcp(s.transparent),
    };
    let cfg = Config {
        id: "proxy-tls-test".into(),
        domains,
        rules: Vec::new(),
        slot: SLOT,
        upstream: Upstream::parse("", &s.hosts),
        log: file.into(),
        max_clients: MAX_CLIENTS,
        ca: Some(ca),
        extra_roots_pem: roots_pem.as_bytes().to_vec(),
        vault,
        allow_loopback: true,
        table_limit: None,
    };
    let (r, w) = nix::unistd::pipe().unwrap();
    let thread = std::thread::spawn(move || serve(cfg, listeners, r));
    Lab {
        log,
        stop: Some(w),
        thread: Some(thread),
    }
}

/// example.test (rules: POST messages, GET anywhere, files denied) and www.example.test (no
/// rules) on one trusted origin; bad.test (rules) on an origin whose CA is not trusted.
struct TlsLab {
    lab: Lab,
    at: SocketAddr,
    good: Origin,
    bad: Origin,
    ca_pem: String,
    origin_ca_pem: String,
}

fn tls_lab(vault: Vault) -> TlsLab {
    let trusted = TestCa::new();
    let good = origin(&trusted, &["example.test", "www.example.test"]);
    let bad = origin(&TestCa::new(), &["bad.test"]);
    let at: SocketAddr = (Ipv4Addr::new(198, 18, 0, 2), good.port).into();
    let ca = Authority::generate("tls-test").unwrap();
    let ca_pem = ca.cert_pem.clone();
    let lab = start(
        Setup {
            transparent: at,
            allowed: vec!["example.test", "www.example.test", "bad.test"],
            hosts: "127.0.0.1 example.test www.example.test bad.test\n".into(),
            http: Some(json!([
                {
                    "host": "example.test",
                    "allow": [
                        {"methods": ["POST"], "paths": ["/v1/messages", "/v1/messages/*"]},
                        {"methods": ["GET"], "paths": ["/*"]}
                    ],
                    "deny": [{"paths": ["/v1/files", "/v1/files/*"]}]
                },
                {"host": "bad.test", "allow": [{"methods": ["GET"]}]}
            ])),
            ..Setup::default()
        },
        ca,
        &trusted.pem,
        vault,
    );
    assert_eq!(a_of("example.test."), Ipv4Addr::new(198, 18, 0, 2));
    TlsLab {
        lab,
        at,
        good,
        bad,
        ca_pem,
        origin_ca_pem: trusted.pem,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A TLS client trusting `ca_pem`, offering `alpn`.
async fn tls_connect(
    tcp: TcpStream,
    ca_pem: &str,
    name: &str,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(crate::policy::proxy::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let name = ServerName::try_from(name.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
}

/// A CONNECT tunnel to `target` through the explicit listener, as a tokio stream.
fn tunnel(target: &str) -> TcpStream {
    let (status, _, r) = connect_request(target);
    assert!(status.contains("200"), "{status}");
    assert!(r.buffer().is_empty());
    let s = r.into_inner();
    s.set_nonblocking(true).unwrap();
    TcpStream::from_std(s).unwrap()
}

type H1 = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn h1(tls: tokio_rustls::client::TlsStream<TcpStream>) -> H1 {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    send
}

/// Sends one request; the status, headers and whole body.
async fn call(
    send: &mut H1,
    method: &str,
    path: &str,
    host: &str,
    auth: Option<&str>,
    body: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    send.ready().await.unwrap();
    let resp = send.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

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

// DEPENDS ON THE SWAP (H2, credentials::swap bodies): ignored until it is merged; then drop
// the `ignore`. (Checked: it passes on h17-tls merged with h17-swap at 287dfd8.)
#[test]
#[ignore = "needs credentials::swap (issue 17, H2)"]
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
