//! TLS termination for hosts with http rules or credentials (issue 17). The container's own
//! certificate authority (`ca`) is made at create; its private key lives only in create's memory
//! until the fork and then only in the proxy's.
//!
//! A connection whose ClientHello names such a host (`session`) is handed here: the proxy
//! answers the handshake with a leaf for that name (`leaf`), serves HTTP/1.1 or HTTP/2 (by
//! ALPN) with hyper, judges every request (`request`: Host/:authority, http rules, the vault's
//! swap), and sends it on over its own TLS connection to the origin, verified against the
//! host's store and `--egress-ca` (`trust`), kept alive in a pool (`origin`). Bodies stream both
//! ways through the vault's filters (`body`).

mod body;
pub mod leaf;
mod origin;
mod request;
mod signed;
pub mod trust;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::conn::{Conn, Target};
use super::shared::{Shared, HEAD_TIMEOUT};

/// The rule of a record about the terminated side itself (the client's handshake).
pub const TERMINATION: &str = "TLS termination";

/// What terminating needs, made once per proxy (when it has a CA).
pub(super) struct Terminator {
    leaves: leaf::Leaves,
    client: Arc<ClientConfig>,
    pool: origin::Pool,
}

impl Terminator {
    /// `extra_pem`: `--egress-ca` (the host's store is added when the daemon loaded it).
    pub fn new(extra_pem: &[u8]) -> Result<Terminator, String> {
        let provider = provider();
        Ok(Terminator {
            leaves: leaf::Leaves::new(Arc::clone(&provider)),
            client: trust::client_config(provider, extra_pem)?,
            pool: origin::Pool::default(),
        })
    }
}

/// rustls over *ring* (Cargo.toml says why: no cmake/aws-lc build). rustls 0.23.48 deprecates
/// the function for lacking post-quantum key exchange; the classic groups are what every
/// origin and client here speaks.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The proxy's terminator, made on first use and kept in `Shared::tls` (type-erased there:
/// `shared` is below this module and does not name its types); `None` without a CA.
pub(super) fn terminator(sh: &Shared) -> Option<&Result<Terminator, String>> {
    sh.cfg.ca.as_ref()?;
    sh.tls
        .get_or_init(|| Box::new(Terminator::new(&sh.cfg.extra_roots_pem)))
        .downcast_ref()
}

pub(super) fn pool_put(sh: &Shared, name: &str, port: u16, up: origin::Upstream) {
    if let Some(Ok(t)) = terminator(sh) {
        t.pool.put(name, port, up);
    }
}

/// Terminates the client's TLS (its ClientHello is in `buf`) and serves its requests.
pub(super) async fn terminate(sh: Arc<Shared>, t: Target, c: Conn, buf: Vec<u8>) {
    let refuse = |why: String| {
        sh.record(t.source, &t.name, t.port, None, TERMINATION, Some(&why));
    };
    let (Some(ca), Some(Ok(term))) = (&sh.cfg.ca, terminator(&sh)) else {
        let why = match terminator(&sh) {
            Some(Err(e)) => format!("the proxy cannot terminate TLS: {e}"),
            _ => "the proxy has no CA".to_string(),
        };
        refuse(why);
        return c.refuse(&super::conn::ALERT_ACCESS_DENIED).await;
    };
    let cfg = match term.leaves.config(ca, &t.name) {
        Ok(c) => c,
        Err(e) => {
            refuse(e);
            return c.refuse(&super::conn::ALERT_ACCESS_DENIED).await;
        }
    };
    let Some(client) = c.into_client().await else {
        return;
    };
    let io = Rewind {
        first: buf,
        at: 0,
        inner: client,
    };
    let accepted = tokio::time::timeout(
        HEAD_TIMEOUT,
        tokio_rustls::TlsAcceptor::from(cfg).accept(io),
    );
    let tls = match accepted.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return refuse(format!(
                "the client's TLS handshake failed: {e} (does it trust the container's CA?)"
            ))
        }
        Err(_) => return refuse("the client's TLS handshake did not end within 10 s".into()),
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let cx = Arc::new(request::Ctx {
        sh: Arc::clone(&sh),
        t,
    });
    let service = hyper::service::service_fn(move |req| request::handle(Arc::clone(&cx), req));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(true);
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let _ = builder
        .serve_connection_with_upgrades(TokioIo::new(tls), service)
        .await;
}

/// The client's socket with the bytes already read from it (the ClientHello) put back first.
struct Rewind {
    first: Vec<u8>,
    at: usize,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.first.len() {
            let n = (self.first.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.first[at..at + n]);
            self.at += n;
            if self.at == self.first.len() {
                self.first = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
