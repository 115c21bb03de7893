//! Bodies of terminated requests and responses, streamed: never held whole. A body that the
//! vault must see goes through a pump task that runs its `BodyFilter` on each chunk as it
//! comes and hands on what the filter lets out (a server-sent event leaves as soon as it
//! arrives); a violation ends the body with an error (the request is aborted upstream, the
//! response cut) and is kept in `Tripped` for the record. A response body also gives its
//! upstream connection back to the pool once it has ended.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use crate::policy::credentials::swap::{RequestView, Violation};
use crate::policy::proxy::record::{self, Source};
use crate::policy::proxy::shared::Shared;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every body the terminated side sends (to the client or upstream).
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Frames the pump reads ahead of its reader.
const AHEAD: usize = 4;

/// An empty body.
pub fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// A whole small body (the proxy's own answers).
pub fn text(s: String) -> ProxyBody {
    http_body_util::Full::new(Bytes::from(s))
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// A body passed on as it is.
pub fn boxed<B>(b: B) -> ProxyBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    b.map_err(Into::into).boxed_unsync()
}

/// The request a request body belongs to (owned: the pump outlives the handler's borrows).
#[derive(Clone, Debug)]
pub struct View {
    /// Where the connection came from (for the record of a violation).
    pub source: Source,
    pub host: String,
    pub port: u16,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
}

impl View {
    pub fn borrow(&self) -> RequestView<'_> {
        RequestView {
            host: &self.host,
            port: self.port,
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
        }
    }
}

/// Which of the vault's filters a body goes through (the request's view either way: a
/// violation is recorded against it).
pub enum Which {
    Request(View),
    Response(View),
}

/// The first violation a filter met, if any.
#[derive(Default)]
pub struct Tripped(Mutex<Option<Violation>>);

impl Tripped {
    pub fn take(&self) -> Option<Violation> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn set(&self, v: Violation) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(v);
    }
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a credential's placeholder where its binding does not allow it")
    }
}

impl std::error::Error for Refused {}

/// `body` through the vault's filter `which`, chunk by chunk, in a task of its own.
pub fn filtered<B>(sh: Arc<Shared>, body: B, which: Which, tripped: Arc<Tripped>) -> ProxyBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + Send,
{
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(AHEAD);
    tokio::spawn(async move {
        let vault = &sh.cfg.vault;
        let (mut filter, view) = match &which {
            Which::Request(v) => (vault.request_body(&v.borrow()), v),
            Which::Response(v) => (vault.response_body(), v),
        };
        // Recorded at once: the response may already be on its way when a request body
        // is refused (its head then cannot become a 403; the body is cut instead).
        let trip = |v: Violation| {
            sh.record_request(
                view.source,
                &view.host,
                view.port,
                None,
                record::CREDENTIAL,
                Some(&v.reason()),
                &view.method,
                Some(&view.path),
            );
            tripped.set(v);
        };
        let mut body = std::pin::pin!(body);
        loop {
            let out = match body.frame().await {
                None => {
                    match filter.finish() {
                        Ok(rest) if rest.is_empty() => {}
                        Ok(rest) => {
                            let _ = tx.send(Ok(Frame::data(rest))).await;
                        }
                        Err(v) => {
                            trip(v);
                            let _ = tx.send(Err(Box::new(Refused))).await;
                        }
                    }
                    return;
                }
                Some(Err(e)) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => match filter.push(&data) {
                        Ok(b) if b.is_empty() => continue,
                        Ok(b) => Ok(Frame::data(b)),
                        Err(v) => {
                            trip(v);
                            let _ = tx.send(Err(Box::new(Refused))).await;
                            if matches!(which, Which::Request(_)) {
                                // Read on (and dropped), so that the client's stream is not
                                // reset before it reads the 403.
                                drain(&mut body).await;
                            }
                            return;
                        }
                    },
                    // Trailers end the body: what the filter held back goes first.
                    Err(trailers) => {
                        match filter.finish() {
                            Ok(rest) if rest.is_empty() => {}
                            Ok(rest) => {
                                if tx.send(Ok(Frame::data(rest))).await.is_err() {
                                    return;
                                }
                            }
                            Err(v) => {
                                trip(v);
                                let _ = tx.send(Err(Box::new(Refused))).await;
                                return;
                            }
                        }
                        // A secret echoed in a trailer is masked as in a header.
                        let trailers = match trailers.into_trailers() {
                            Ok(mut t) => {
                                sh.cfg.vault.mask_response(&mut t);
                                Frame::trailers(t)
                            }
                            Err(other) => other,
                        };
                        let _ = tx.send(Ok(trailers)).await;
                        return;
                    }
                },
            };
            if tx.send(out).await.is_err() {
                return;
            }
        }
    });
    Channel { rx }.boxed_unsync()
}

/// What a pump sends on; ends when the pump does.
struct Channel {
    rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
}

impl Body for Channel {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx)
    }
}

/// The most of a refused request's body read (and dropped) before the answer, and for how long.
const DRAIN_BYTES: usize = 64 * 1024;
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads a refused request's body to its end and drops it: `false` when it is longer than
/// `DRAIN_BYTES`, fails, or takes longer than `DRAIN_FOR`.
pub async fn drain<B: Body<Data = Bytes> + Unpin>(b: &mut B) -> bool {
    let read = async {
        let mut n = 0;
        while let Some(f) = b.frame().await {
            match f {
                Ok(f) => n += f.data_ref().map_or(0, |d| d.len()),
                Err(_) => return false,
            }
            if n > DRAIN_BYTES {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_FOR, read).await.unwrap_or(false)
}

/// `inner`, with `keep` (a request body not read) held until `inner` is dropped.
pub fn linger(inner: ProxyBody, keep: hyper::body::Incoming) -> ProxyBody {
    Linger { inner, _keep: keep }.boxed_unsync()
}

struct Linger {
    inner: ProxyBody,
    _keep: hyper::body::Incoming,
}

impl Body for Linger {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
