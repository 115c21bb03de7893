//! One client connection judged against the name it is for (the transparent listener's, or a
//! CONNECT/SOCKS tunnel's) and relayed: the client's first bytes say TLS (the ClientHello's SNI
//! must be the name), HTTP (every request's Host must be the name: `flow`) or anything else
//! (spliced as it is). A client that sends nothing for `SERVER_FIRST` is taken for a protocol
//! where the server speaks first: the upstream is dialled and its bytes relayed, and the
//! client's first bytes are still judged when they come.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::record::Source;
use super::serve::{Dialled, Shared, HEAD_TIMEOUT, SERVER_FIRST};
use super::sni;
use crate::spec::domains::Decision;

/// What a connection is for.
#[derive(Clone, Debug)]
pub(super) struct Target {
    pub source: Source,
    /// Normalised: lower case, no trailing dot (an address literal as text).
    pub name: String,
    pub port: u16,
    /// Whether the client's SNI/Host must agree with `name` (not for an address literal).
    pub check_names: bool,
}

/// How long a relay of responses may take to end once the proxy closed its upstream's side.
const FINISH: Duration = Duration::from_secs(5);
/// TLS alert access_denied (fatal), in a TLS 1.0 record as any client reads it.
const ALERT_ACCESS_DENIED: [u8; 7] = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x31];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Tls,
    Http,
    Opaque,
}

/// What the first bytes are (`None`: too few to tell).
pub(super) fn classify(buf: &[u8]) -> Option<Kind> {
    let first = *buf.first()?;
    if first == 0x16 {
        return Some(Kind::Tls);
    }
    if !first.is_ascii_uppercase() {
        return Some(Kind::Opaque);
    }
    // An HTTP method is a token; every registered one is upper-case letters (and `-`).
    match buf
        .iter()
        .take(24)
        .position(|b| !(b.is_ascii_uppercase() || *b == b'-'))
    {
        Some(i) if buf[i] == b' ' => Some(Kind::Http),
        Some(_) => Some(Kind::Opaque),
        None if buf.len() < 24 => None,
        None => Some(Kind::Opaque),
    }
}

/// The two directions of a relayed connection: the client's reader, and its writer while no
/// relay of upstream bytes holds it.
pub(super) struct Conn {
    pub cl_r: OwnedReadHalf,
    pub cl_w: Option<OwnedWriteHalf>,
    pub up: Option<Up>,
}

pub(super) struct Up {
    pub name: String,
    pub port: u16,
    pub to: SocketAddr,
    pub w: OwnedWriteHalf,
    relay: JoinHandle<Option<OwnedWriteHalf>>,
    /// Set when the proxy ends the upstream itself: the relay then hands the client's writer
    /// back instead of closing it.
    finishing: Arc<AtomicBool>,
}

impl Conn {
    pub fn new(client: TcpStream) -> Conn {
        let (cl_r, cl_w) = client.into_split();
        Conn {
            cl_r,
            cl_w: Some(cl_w),
            up: None,
        }
    }

    /// Starts relaying what `d` sends to the client.
    pub fn start(&mut self, name: &str, port: u16, d: Dialled) {
        let (mut up_r, w) = d.stream.into_split();
        let Some(mut cl_w) = self.cl_w.take() else {
            return;
        };
        let finishing = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&finishing);
        let relay = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut up_r, &mut cl_w).await;
            if flag.load(Ordering::Acquire) {
                Some(cl_w)
            } else {
                let _ = cl_w.shutdown().await;
                None
            }
        });
        self.up = Some(Up {
            name: name.to_string(),
            port,
            to: d.to,
            w,
            relay,
            finishing,
        });
    }

    /// Whether the upstream closed by itself (then the client's side was closed too).
    pub fn upstream_gone(&self) -> bool {
        self.up
            .as_ref()
            .is_some_and(|u| u.relay.is_finished() && !u.finishing.load(Ordering::Acquire))
    }

    /// Ends the upstream: its write side is closed, the responses still coming are relayed
    /// (for `FINISH` at most), and the client's writer comes back.
    pub async fn finish(&mut self) {
        let Some(mut up) = self.up.take() else {
            return;
        };
        up.finishing.store(true, Ordering::Release);
        let _ = up.w.shutdown().await;
        match tokio::time::timeout(FINISH, &mut up.relay).await {
            Ok(Ok(w)) => self.cl_w = w,
            _ => up.relay.abort(),
        }
    }

    /// Ends the upstream and writes `bytes` to the client (a 403, an alert), then closes.
    pub async fn refuse(mut self, bytes: &[u8]) {
        self.finish().await;
        if let Some(mut w) = self.cl_w.take() {
            let _ = w.write_all(bytes).await;
            let _ = w.shutdown().await;
        }
    }

    /// Splices the rest: the client's bytes to the upstream until the client's EOF, then
    /// waits for the upstream's side to end.
    pub async fn splice(mut self) {
        let Some(up) = self.up.as_mut() else {
            return;
        };
        let _ = tokio::io::copy(&mut self.cl_r, &mut up.w).await;
        let _ = up.w.shutdown().await;
        let _ = (&mut up.relay).await;
    }
}

/// Reads once more into `buf` (at most `max` bytes held); 0 at EOF or when full.
pub(super) async fn read_more(r: &mut OwnedReadHalf, buf: &mut Vec<u8>, max: usize) -> usize {
    let room = max.saturating_sub(buf.len()).min(16 * 1024);
    if room == 0 {
        return 0;
    }
    let at = buf.len();
    buf.resize(at + room, 0);
    let n = r.read(&mut buf[at..]).await.unwrap_or(0);
    buf.truncate(at + n);
    n
}

/// Judges `client` against `t` and relays it. `up`: already dialled (a CONNECT or SOCKS
/// tunnel, whose decision is recorded); `None`: the transparent listener's, decided here.
pub(super) async fn judge(
    sh: Arc<Shared>,
    t: Target,
    client: TcpStream,
    mut buf: Vec<u8>,
    up: Option<Dialled>,
) {
    let mut c = Conn::new(client);
    let tunnel = up.is_some();
    if let Some(d) = up {
        c.start(&t.name, t.port, d);
    }
    if buf.is_empty() {
        match tokio::time::timeout(SERVER_FIRST, read_more(&mut c.cl_r, &mut buf, 1)).await {
            Ok(0) => return c.finish().await,
            Ok(_) => {}
            Err(_) => {
                // The server speaks first (or the client is slow): dial, then judge the
                // client's first bytes whenever they come.
                if !tunnel && !open(&sh, &t, &mut c, Kind::Opaque).await {
                    return;
                }
                if read_more(&mut c.cl_r, &mut buf, 1).await == 0 {
                    return c.splice().await;
                }
            }
        }
    }
    let kind = loop {
        if let Some(k) = classify(&buf) {
            break k;
        }
        let more = tokio::time::timeout(HEAD_TIMEOUT, read_more(&mut c.cl_r, &mut buf, 64));
        if !matches!(more.await, Ok(n) if n > 0) {
            break Kind::Opaque;
        }
    };
    match kind {
        Kind::Http => super::flow::run(sh, super::flow::Mode::Fixed(t), c, buf).await,
        Kind::Tls => {
            let hello = loop {
                match sni::client_hello(&buf) {
                    Ok(h) => break Ok(h),
                    Err(sni::HelloError::Invalid(why)) => break Err(why.to_string()),
                    Err(sni::HelloError::Incomplete { .. }) => {}
                }
                let more = tokio::time::timeout(
                    HEAD_TIMEOUT,
                    read_more(&mut c.cl_r, &mut buf, sni::MAX_BUFFER),
                );
                if !matches!(more.await, Ok(n) if n > 0) {
                    break Err("the ClientHello did not arrive whole (10 s, 64 KiB)".into());
                }
            };
            let mismatch = match hello {
                Err(why) => Some(format!("not a valid TLS ClientHello: {why}")),
                Ok(_) if !t.check_names => None,
                Ok(h) => match h.server_name {
                    None => Some(format!(
                        "the TLS ClientHello names no server (SNI), the client resolved {}",
                        t.name
                    )),
                    Some(s) if !same_name(&s, &t.name) => Some(format!(
                        "the TLS SNI {s:?} is not the name the client resolved ({})",
                        t.name
                    )),
                    Some(_) => None,
                },
            };
            if let Some(why) = mismatch {
                let dest = c.up.as_ref().map(|u| u.to);
                sh.record(
                    t.source,
                    &t.name,
                    t.port,
                    dest,
                    "name agreement (SNI)",
                    Some(&why),
                );
                return c.refuse(&ALERT_ACCESS_DENIED).await;
            }
            forward(sh, t, c, buf).await
        }
        Kind::Opaque => forward(sh, t, c, buf).await,
    }
}

/// Dials (when not yet) and splices, the first bytes in `buf` sent first.
async fn forward(sh: Arc<Shared>, t: Target, mut c: Conn, buf: Vec<u8>) {
    if c.up.is_none() && !open(&sh, &t, &mut c, Kind::Opaque).await {
        return;
    }
    if let Some(up) = c.up.as_mut() {
        if up.w.write_all(&buf).await.is_err() {
            return c.finish().await;
        }
    }
    c.splice().await
}

/// Decides `t`, dials, records, and starts relaying; `false` when the connection ended
/// (denied or failed, the client told as `kind` allows).
pub(super) async fn open(sh: &Shared, t: &Target, c: &mut Conn, kind: Kind) -> bool {
    let (rule, reason) = match sh.decide(&t.name, t.port) {
        Decision::Allow { rule } => match sh.dial(&t.name, t.port).await {
            Ok(d) => {
                sh.record(t.source, &t.name, t.port, Some(d.to), &rule, None);
                c.start(&t.name, t.port, d);
                return true;
            }
            Err(e) => {
                let (rule, why) = e.describe();
                sh.record(t.source, &t.name, t.port, None, &rule, Some(&why));
                if kind == Kind::Http {
                    let status = if matches!(e, super::serve::DialError::Refused(_)) {
                        "403 Forbidden"
                    } else {
                        "502 Bad Gateway"
                    };
                    let body = format!("ward: {}:{} {why}\n", t.name, t.port);
                    c.finish().await;
                    if let Some(w) = c.cl_w.as_mut() {
                        let _ = w.write_all(response(status, &rule, &body).as_bytes()).await;
                    }
                }
                return false;
            }
        },
        Decision::Deny { rule, reason } => (rule, reason),
    };
    let why = match &reason {
        Some(r) => format!("by {rule}: {r}"),
        None => format!("by {rule}"),
    };
    sh.record(t.source, &t.name, t.port, None, &rule, Some(&why));
    if kind == Kind::Http {
        let body = denied_body(&t.name, t.port, &rule, reason.as_deref());
        c.finish().await;
        if let Some(w) = c.cl_w.as_mut() {
            let _ = w
                .write_all(response("403 Forbidden", &rule, &body).as_bytes())
                .await;
        }
    }
    false
}

/// The 403 body the workload reads.
pub(super) fn denied_body(name: &str, port: u16, rule: &str, reason: Option<&str>) -> String {
    match reason {
        Some(r) => format!("ward: {name}:{port} denied by {rule}: {r}\n"),
        None => format!("ward: {name}:{port} denied by {rule}\n"),
    }
}

/// A complete response that closes the connection, with `X-Ward-Denied: <rule>`.
pub(super) fn response(status: &str, rule: &str, body: &str) -> String {
    let rule: String = rule.chars().filter(|c| !c.is_control()).collect();
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Ward-Denied: {rule}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Names compare case-insensitively, a trailing dot ignored.
pub(super) fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}
