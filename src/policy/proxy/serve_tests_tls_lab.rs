//! The harness of `serve_tests_tls`: a test CA (what `--egress-ca` names) and HTTPS origins of
//! hyper over tokio-rustls signed by it, the proxy started with the container's CA, and TLS
//! clients (HTTP/1.1 and HTTP/2) trusting that CA, directly or through a CONNECT tunnel.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;

use super::tests::*;
use super::*;
use crate::policy::credentials::Vault;
use crate::policy::proxy::ca::Authority;

pub(super) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// A CA of the test (what `--egress-ca` would name) and certificates it signs.
pub(super) struct TestCa {
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
/// is notified; `Upgrade: echo` switches to a protocol that echoes bytes; anything else is
/// echoed: `METHOD target host=.. authorization=.. body=..` (and the Authorization header
/// again as `x-echo-authorization`).
pub(super) struct Origin {
    pub(super) port: u16,
    /// TLS connections accepted.
    pub(super) accepted: Arc<AtomicUsize>,
    pub(super) release: Arc<tokio::sync::Notify>,
    pub(super) cert: CertificateDer<'static>,
}

pub(super) fn origin(ca: &TestCa, names: &[&str]) -> Origin {
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

pub(super) async fn answer(
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
pub(super) fn chunks(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    Chunks(rx).boxed_unsync()
}

pub(super) struct Chunks(pub(super) tokio::sync::mpsc::Receiver<Bytes>);

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

/// example.test (rules: POST messages, GET anywhere, files denied) and www.example.test (no
/// rules) on one trusted origin; bad.test (rules) on an origin whose CA is not trusted.
pub(super) struct TlsLab {
    pub(super) lab: Lab,
    pub(super) at: SocketAddr,
    pub(super) good: Origin,
    pub(super) bad: Origin,
    pub(super) ca_pem: String,
    pub(super) origin_ca_pem: String,
}

pub(super) fn tls_lab(vault: Vault) -> TlsLab {
    let trusted = TestCa::new();
    let good = origin(&trusted, &["example.test", "www.example.test"]);
    let bad = origin(&TestCa::new(), &["bad.test"]);
    let at: SocketAddr = (Ipv4Addr::new(198, 18, 0, 2), good.port).into();
    let ca = Authority::generate("tls-test").unwrap();
    let ca_pem = ca.cert_pem.clone();
    let lab = Lab::start(Setup {
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
        ca: Some(ca),
        extra_roots_pem: trusted.pem.as_bytes().to_vec(),
        vault,
        ..Setup::default()
    });
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

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A TLS client trusting `ca_pem`, offering `alpn`.
pub(super) async fn tls_connect(
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
pub(super) fn tunnel(target: &str) -> TcpStream {
    let (status, _, r) = connect_request(target);
    assert!(status.contains("200"), "{status}");
    assert!(r.buffer().is_empty());
    let s = r.into_inner();
    s.set_nonblocking(true).unwrap();
    TcpStream::from_std(s).unwrap()
}

pub(super) type H1 = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

pub(super) async fn h1(tls: tokio_rustls::client::TlsStream<TcpStream>) -> H1 {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    send
}

/// Sends one request; the status, headers and whole body.
pub(super) async fn call(
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
