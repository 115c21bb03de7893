//! The proxy's own connections to the origins of terminated hosts: dialled through
//! `Shared::dial` (the upstream refusals apply to every one), TLS verified against `trust`
//! (never without: a certificate that does not verify is a 502), HTTP/1.1, and kept alive in a
//! small pool per name and port for the next request of any client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::body::ProxyBody;
use crate::policy::proxy::shared::{DialError, Shared, HEAD_TIMEOUT};

/// Idle connections kept per name and port, and for how long.
pub const IDLE_PER_HOST: usize = 8;
pub const IDLE_FOR: Duration = Duration::from_secs(60);
/// Names and ports with idle connections (then the pool starts over): at most 256 idle
/// connections in all, well inside the daemon's 4096 fds beside 1024 clients and their
/// upstreams.
const HOSTS: usize = 32;

/// One upstream connection, ready for a request.
pub struct Upstream {
    pub send: SendRequest<ProxyBody>,
    pub to: SocketAddr,
    /// Taken from the pool (then a request it could not carry may be retried on a new one).
    pub reused: bool,
}

/// Why no upstream connection could be had.
#[derive(Debug)]
pub enum UpError {
    Dial(DialError),
    /// The origin's certificate did not verify (never retried without verification).
    Certificate(String),
    /// The handshake failed otherwise, or timed out.
    Tls(String),
    Http(String),
}

impl UpError {
    /// The status for the client, the record's rule, and why.
    pub fn describe(&self) -> (http::StatusCode, String, String) {
        match self {
            UpError::Dial(e) => {
                let (rule, why) = e.describe();
                let status = if matches!(e, DialError::Refused(_)) {
                    http::StatusCode::FORBIDDEN
                } else {
                    http::StatusCode::BAD_GATEWAY
                };
                (status, rule, why)
            }
            UpError::Certificate(e) => (
                http::StatusCode::BAD_GATEWAY,
                UPSTREAM_TLS.into(),
                format!("the origin's certificate is not trusted: {e}"),
            ),
            UpError::Tls(e) => (
                http::StatusCode::BAD_GATEWAY,
                UPSTREAM_TLS.into(),
                format!("TLS to the origin failed: {e}"),
            ),
            UpError::Http(e) => (
                http::StatusCode::BAD_GATEWAY,
                "upstream".into(),
                format!("HTTP to the origin failed: {e}"),
            ),
        }
    }
}

/// The rule of a record about the proxy's TLS to an origin.
pub const UPSTREAM_TLS: &str = "upstream TLS";

struct Idle {
    send: SendRequest<ProxyBody>,
    to: SocketAddr,
    since: Instant,
}

type Key = (String, u16);

/// Idle upstream connections by name and port.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<Key, Vec<Idle>>>,
}

impl Pool {
    /// An idle connection to `name:port` that is still open, else a new one.
    pub async fn get(
        &self,
        sh: &Shared,
        cfg: &Arc<ClientConfig>,
        name: &str,
        port: u16,
    ) -> Result<Upstream, UpError> {
        while let Some(mut idle) = self.take(name, port) {
            if idle.since.elapsed() > IDLE_FOR || idle.send.is_closed() {
                continue;
            }
            // Put back once its last response ended: ready at once, or closing.
            if tokio::time::timeout(Duration::from_secs(1), idle.send.ready())
                .await
                .is_ok_and(|r| r.is_ok())
            {
                return Ok(Upstream {
                    send: idle.send,
                    to: idle.to,
                    reused: true,
                });
            }
        }
        connect(sh, cfg, name, port).await
    }

    fn take(&self, name: &str, port: u16) -> Option<Idle> {
        let mut idle = self.lock();
        let list = idle.get_mut(&(name.to_string(), port))?;
        list.pop()
    }

    /// Keeps `up` for the next request to `name:port` (the oldest goes when the pool is full).
    pub fn put(&self, name: &str, port: u16, up: Upstream) {
        if up.send.is_closed() {
            return;
        }
        let mut idle = self.lock();
        // Expired ones go wherever they are (their sockets with them).
        idle.retain(|_, list| {
            list.retain(|i| i.since.elapsed() <= IDLE_FOR && !i.send.is_closed());
            !list.is_empty()
        });
        if idle.len() >= HOSTS && !idle.contains_key(&(name.to_string(), port)) {
            idle.clear();
        }
        let list = idle.entry((name.to_string(), port)).or_default();
        if list.len() >= IDLE_PER_HOST {
            list.remove(0);
        }
        list.push(Idle {
            send: up.send,
            to: up.to,
            since: Instant::now(),
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A new connection: dialled through the refusals, TLS verified for `name`, HTTP/1.1.
pub async fn connect(
    sh: &Shared,
    cfg: &Arc<ClientConfig>,
    name: &str,
    port: u16,
) -> Result<Upstream, UpError> {
    let d = sh.dial(name, port).await.map_err(UpError::Dial)?;
    let server = ServerName::try_from(name.to_string())
        .map_err(|e| UpError::Tls(format!("{name:?} is not a server name: {e}")))?;
    let handshake = tokio_rustls::TlsConnector::from(Arc::clone(cfg)).connect(server, d.stream);
    let tls = match tokio::time::timeout(HEAD_TIMEOUT, handshake).await {
        Err(_) => return Err(UpError::Tls(format!("{}: handshake timed out", d.to))),
        Ok(Err(e)) => {
            let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
            return Err(match inner {
                Some(rustls::Error::InvalidCertificate(c)) => {
                    UpError::Certificate(format!("{}: {c:?}", d.to))
                }
                _ => UpError::Tls(format!("{}: {e}", d.to)),
            });
        }
        Ok(Ok(s)) => s,
    };
    let (send, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(tls))
        .await
        .map_err(|e| UpError::Http(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(Upstream {
        send,
        to: d.to,
        reused: false,
    })
}

/// A response body that gives its upstream connection back to the pool when it has ended
/// (dropped before: the connection is closed with it).
pub struct Returning<B> {
    inner: B,
    back: Option<(Arc<Shared>, String, u16, Upstream)>,
}

impl<B> Returning<B> {
    pub fn new(inner: B, sh: Arc<Shared>, name: &str, port: u16, up: Upstream) -> Self {
        Returning {
            inner,
            back: Some((sh, name.to_string(), port, up)),
        }
    }
}

impl<B> Body for Returning<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        // Ended: by its last frame (None), or by a length now all read (hyper's server stops
        // polling a body whose Content-Length it has written whole).
        let ended = match &r {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            if let Some((sh, name, port, up)) = self.back.take() {
                super::pool_put(&sh, &name, port, up);
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
