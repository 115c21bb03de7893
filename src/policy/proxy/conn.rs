//! A relayed client connection (`Conn`: the client's halves and its upstream, whose bytes a
//! task relays to the client as they come), what it is for (`Target`), how its first bytes
//! are told apart, and the answers the proxy itself writes (403 bodies, the TLS alert).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::record::Source;
use super::shared::{DialError, Dialled, Shared};
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
pub(super) const ALERT_ACCESS_DENIED: [u8; 7] = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x31];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Tls,
    Http,
    Opaque,
}

/// The longest first line the classification waits for.
pub(super) const MAX_FIRST_LINE: usize = 8 * 1024;

/// What the first bytes are (`None`: too few to tell). HTTP is a first line of the request-line
/// shape `METHOD target HTTP/x`, whatever the method (an unknown one is judged, not spliced);
/// `EHLO x`, `USER x` and other upper-case commands are not.
pub(super) fn classify(buf: &[u8]) -> Option<Kind> {
    // Servers skip empty lines before a request line (RFC 9112 2.2): so does the classifier,
    // or "\r\nGET ..." would be spliced unjudged.
    let start = buf.iter().position(|b| !matches!(b, b'\r' | b'\n'))?;
    if start >= MAX_FIRST_LINE {
        return Some(Kind::Opaque);
    }
    let buf = &buf[start..];
    let first = *buf.first()?;
    if first == 0x16 {
        return Some(Kind::Tls);
    }
    if !first.is_ascii_uppercase() {
        return Some(Kind::Opaque);
    }
    let method_end = buf
        .iter()
        .position(|b| !(b.is_ascii_uppercase() || *b == b'-'));
    match method_end {
        Some(i) if buf[i] != b' ' => return Some(Kind::Opaque),
        Some(_) => {}
        None if buf.len() < 24 => return None,
        None => return Some(Kind::Opaque),
    }
    let Some(lf) = buf.iter().take(MAX_FIRST_LINE).position(|&b| b == b'\n') else {
        // A method and a space, then no line end for 8 KiB: a long target. Judged as HTTP
        // (the head parser takes up to 32 KiB, then refuses), never spliced.
        return (buf.len() >= MAX_FIRST_LINE).then_some(Kind::Http);
    };
    let line = buf[..lf].strip_suffix(b"\r").unwrap_or(&buf[..lf]);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or(&[]);
    Some(if version.starts_with(b"HTTP/") {
        Kind::Http
    } else {
        Kind::Opaque
    })
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
    /// Stops the relay at once, handing the client's writer back (`into_client`).
    detach: Arc<Notify>,
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
        let detach = Arc::new(Notify::new());
        let stop = Arc::clone(&detach);
        let relay = tokio::spawn(async move {
            tokio::select! {
                _ = relay(&mut up_r, &mut cl_w) => {}
                _ = stop.notified() => return Some(cl_w),
            }
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
            detach,
        });
    }

    /// The client's socket, whole again (for TLS termination): an upstream dialled before (a
    /// tunnel's) is dropped unused, its relay stopped. `None` when the client's side was closed.
    pub async fn into_client(mut self) -> Option<TcpStream> {
        if let Some(mut up) = self.up.take() {
            up.finishing.store(true, Ordering::Release);
            up.detach.notify_one();
            match (&mut up.relay).await {
                Ok(Some(w)) => self.cl_w = Some(w),
                _ => return None,
            }
        }
        let w = self.cl_w.take()?;
        self.cl_r.reunite(w).ok()
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
        let _ = relay(&mut self.cl_r, &mut up.w).await;
        let _ = up.w.shutdown().await;
        let _ = (&mut up.relay).await;
    }
}

/// Reads once more into `buf` (at most `max` bytes held); 0 at EOF or when full. Cancel-safe
/// (the transparent listener's first read is raced against a timer): bytes are appended only
/// when a read completes.
pub(super) async fn read_more(r: &mut OwnedReadHalf, buf: &mut Vec<u8>, max: usize) -> usize {
    let room = max.saturating_sub(buf.len()).min(16 * 1024);
    if room == 0 {
        return 0;
    }
    buf.reserve(room);
    (&mut *r).take(room as u64).read_buf(buf).await.unwrap_or(0)
}

/// An HTTP request's part of its record: the method, the normalised path, and the http rule
/// that allowed it (on a host with http rules).
#[derive(Clone, Copy, Debug)]
pub(super) struct Request<'a> {
    pub method: &'a str,
    pub path: Option<&'a str>,
    pub rule: Option<&'a str>,
}

/// Records a decision, with the request's method and path when there is one (the rule then
/// also names the http rule that allowed it).
pub(super) fn record(
    sh: &Shared,
    t: &Target,
    req: Option<Request<'_>>,
    to: Option<SocketAddr>,
    rule: &str,
    denied: Option<&str>,
) {
    match req {
        None => sh.record(t.source, &t.name, t.port, to, rule, denied),
        Some(r) => {
            let rule = match (r.rule, denied) {
                (Some(h), None) => format!("{rule}; {h}"),
                _ => rule.to_string(),
            };
            sh.record_request(
                t.source, &t.name, t.port, to, &rule, denied, r.method, r.path,
            )
        }
    }
}

/// Decides `t`, dials, records (with `req`, the HTTP request that asked for it), and starts
/// relaying; `false` when the connection ended (denied or failed, the client told as `kind`
/// allows).
pub(super) async fn open(
    sh: &Shared,
    t: &Target,
    c: &mut Conn,
    kind: Kind,
    req: Option<Request<'_>>,
) -> bool {
    let (rule, reason) = match sh.decide(&t.name, t.port) {
        Decision::Allow { rule } => match sh.dial(&t.name, t.port).await {
            Ok(d) => {
                record(sh, t, req, Some(d.to), &rule, None);
                c.start(&t.name, t.port, d);
                return true;
            }
            Err(e) => {
                let (rule, why) = e.describe();
                record(sh, t, req, None, &rule, Some(&why));
                if kind == Kind::Http {
                    let status = if matches!(e, DialError::Refused(_)) {
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
    record(sh, t, req, None, &rule, Some(&why));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_are_told_apart() {
        let http = Some(Kind::Http);
        let opaque = Some(Kind::Opaque);
        assert_eq!(classify(b""), None);
        assert_eq!(classify(b"\x16\x03\x01"), Some(Kind::Tls));
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), http);
        assert_eq!(classify(b"FOO-BAR /x HTTP/1.0\n"), http, "any method");
        assert_eq!(
            classify(b"PRI * HTTP/2.0\r\n"),
            http,
            "h2c prior knowledge is judged"
        );
        assert_eq!(
            classify(b"\r\n\r\nGET / HTTP/1.1\r\n"),
            http,
            "empty lines first"
        );
        assert_eq!(classify(b"\r\n"), None);
        assert_eq!(classify(b"GET / HTT"), None, "the line is not whole yet");
        assert_eq!(classify(b"GET"), None);
        assert_eq!(classify(b"EHLO x\r\n"), opaque);
        assert_eq!(classify(b"SSH-2.0-OpenSSH_9.2\r\n"), opaque);
        assert_eq!(classify(b"\x00\x01"), opaque);
        assert_eq!(classify(b"get / HTTP/1.1\r\n"), opaque);
        assert_eq!(classify(&[b'A'; 30]), opaque);
        let mut long = b"GET /".to_vec();
        long.resize(MAX_FIRST_LINE + 10, b'a');
        assert_eq!(classify(&long), http, "a long target is still judged");
    }
}

/// The relay's first buffer, and the size it grows to once a read fills it.
pub const RELAY_START: usize = 8 * 1024;
pub const RELAY_MAX: usize = 64 * 1024;

/// Copies `r` to `w` until EOF. The buffer starts at 8 KiB (most of the 1024 clients a proxy
/// may hold are idle or small) and grows to 64 KiB once a read fills it, so a bulk transfer
/// costs one eighth of the syscalls (`make bench-egress`: 1 GiB took 133k sendto/recvfrom
/// pairs with tokio's 8 KiB copy).
pub async fn relay<R, W>(r: &mut R, w: &mut W) -> std::io::Result<u64>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
    W: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; RELAY_START];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            w.flush().await?;
            return Ok(total);
        }
        w.write_all(&buf[..n]).await?;
        total += n as u64;
        if n == buf.len() && buf.len() < RELAY_MAX {
            buf.resize(RELAY_MAX, 0);
        }
    }
}

#[cfg(test)]
mod relay_tests {
    /// Every byte arrives in order, in the small buffer and after it has grown.
    #[tokio::test(flavor = "current_thread")]
    async fn relays_everything_across_the_growth() {
        let data: Vec<u8> = (0..(3 * super::RELAY_MAX + 123))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let (mut a, mut b) = tokio::io::duplex(super::RELAY_START);
        let input = data.clone();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            a.write_all(&input).await.unwrap();
        });
        let mut out = Vec::new();
        let n = super::relay(&mut b, &mut out).await.unwrap();
        writer.await.unwrap();
        assert_eq!(n as usize, data.len());
        assert_eq!(out, data);
    }
}
