//! Plain HTTP through the proxy, one request at a time: each head is parsed and judged (the
//! transparent listener's and a tunnel's: Host must be the name the connection is for; the
//! explicit proxy's: the absolute-form target decides, and is forwarded in origin form), its
//! body forwarded by its framing (Content-Length or chunked) and nothing more, then the next
//! head. Responses are relayed as they come. A denied request ends the connection with a 403
//! once the responses to the requests before it are through. On a host with `http` rules each
//! request is also judged by method and normalised path (`spec::domains::http`), and an
//! `Upgrade` is refused. A credential's placeholder in a request is refused (or, with
//! `allowPlaintextInject`, swapped in its head): `flow_credentials`.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroize;

use super::conn::{self, read_more, same_name, Conn, Kind, Request, Target};
use super::http::{self, Body, HttpError, Limits, RequestHead, Target as HttpTarget};
use super::record::Source;
use super::shared::{Shared, HEAD_TIMEOUT};
use crate::spec::domains::http::{RequestDecision, NOT_INSPECTABLE};
use crate::spec::domains::path::Normalized;
use crate::spec::domains::Decision;
use credentials::Stop;

pub(super) enum Mode {
    /// Every request is for this name and port.
    Fixed(Target),
    /// The explicit proxy: each request names its server (absolute form).
    Proxy,
}

/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

pub(super) async fn run(sh: Arc<Shared>, mode: Mode, mut c: Conn, mut buf: Vec<u8>) {
    let limits = Limits::default();
    loop {
        let head = match read_head(&mut c, &mut buf, &limits).await {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(why) => {
                let (name, port, source) = match &mode {
                    Mode::Fixed(t) => (t.name.as_str(), t.port, t.source),
                    Mode::Proxy => ("", 0, Source::HttpProxy),
                };
                sh.record(source, name, port, None, "HTTP request", Some(&why));
                let body = format!("ward: bad request: {why}\n");
                let r = conn::response("400 Bad Request", "malformed request", &body);
                return c.refuse(r.as_bytes()).await;
            }
        };
        if c.upstream_gone() {
            break;
        }
        let vault = &sh.cfg.vault;
        if !vault.allow_plaintext_inject {
            if let Some(b) = credentials::placeholder_in_head(vault, &head, &buf[..head.len]) {
                let v = credentials::plaintext(b);
                let t = match judge_head(&mode, &head, &buf) {
                    Ok((t, _)) | Err((t, _)) => t,
                };
                return credentials::refuse(&sh, &t, &head, c, &v).await;
            }
        }
        let (t, mut wire) = match judge_head(&mode, &head, &buf) {
            Ok(x) => x,
            Err((mut t, why)) => {
                // A placeholder in a mismatched Host is not written to the log.
                let why = vault.redact(&why).into_owned();
                t.name = vault.redact(&t.name).into_owned();
                let dest = c.up.as_ref().map(|u| u.to);
                sh.record(
                    t.source,
                    &t.name,
                    t.port,
                    dest,
                    "name agreement (Host)",
                    Some(&why),
                );
                let body = format!("ward: {}:{} denied: {why}\n", t.name, t.port);
                let r = conn::response("403 Forbidden", "name agreement (Host)", &body);
                return c.refuse(r.as_bytes()).await;
            }
        };
        let same =
            c.up.as_ref()
                .is_some_and(|u| u.name == t.name && u.port == t.port);
        let normalized = head.normalized_path();
        if vault.allow_plaintext_inject {
            let proxy_form = matches!(mode, Mode::Proxy);
            let raw = &buf[..head.len];
            match credentials::swap_head(vault, &t, &head, raw, normalized.as_ref(), proxy_form) {
                Ok(None) => {}
                Ok(Some(swapped)) => {
                    wire.zeroize();
                    wire = swapped.to_vec();
                }
                Err(v) => return credentials::refuse(&sh, &t, &head, c, &v).await,
            }
        }
        let path = normalized.as_ref().map(|n| n.path.as_str());
        let rule = match sh.decide(&t.name, t.port) {
            Decision::Deny { rule, reason } => {
                let why = match &reason {
                    Some(r) => format!("by {rule}: {r}"),
                    None => format!("by {rule}"),
                };
                sh.record_request(
                    t.source,
                    &t.name,
                    t.port,
                    None,
                    &rule,
                    Some(&why),
                    &head.method,
                    path,
                );
                let body = conn::denied_body(&t.name, t.port, &rule, reason.as_deref());
                let r = conn::response("403 Forbidden", &rule, &body);
                return c.refuse(r.as_bytes()).await;
            }
            Decision::Allow { rule } => rule,
        };
        let http_rule = match judge_request(&sh, &t, &head, normalized.as_ref()) {
            None => None,
            Some(RequestDecision::Allow { rule }) => Some(rule),
            Some(RequestDecision::Deny { rule, why }) => {
                let dest = c.up.as_ref().filter(|_| same).map(|u| u.to);
                sh.record_request(
                    t.source,
                    &t.name,
                    t.port,
                    dest,
                    &rule,
                    Some(&why),
                    &head.method,
                    path,
                );
                let body = format!("ward: {}:{} {why}\n", t.name, t.port);
                let r = conn::response("403 Forbidden", &rule, &body);
                return c.refuse(r.as_bytes()).await;
            }
        };
        let req = Request {
            method: &head.method,
            path,
            rule: http_rule.as_deref(),
        };
        if same {
            let to = c.up.as_ref().map(|u| u.to);
            conn::record(&sh, &t, Some(req), to, &rule, None);
        } else {
            c.finish().await;
            if c.cl_w.is_none() || !conn::open(&sh, &t, &mut c, Kind::Http, Some(req)).await {
                return;
            }
        }
        buf.drain(..head.len);
        let Some(up) = c.up.as_mut() else { return };
        let sent = up.w.write_all(&wire).await;
        wire.zeroize(); // it may hold a secret (allowPlaintextInject)
        if sent.is_err() {
            break;
        }
        let forwarded = if vault.is_empty() {
            body(&mut c, &mut buf, head.body).await.map_err(Stop::from)
        } else {
            let mut f = vault.plaintext_body();
            credentials::body(&mut c, &mut buf, head.body, vault, &mut f).await
        };
        match forwarded {
            Ok(()) => {}
            Err(Stop::Framing) => break,
            Err(Stop::Refused(v)) => return credentials::refuse(&sh, &t, &head, c, &v).await,
        }
        if head.header("upgrade").next().is_some() {
            // After a 101 the connection carries another protocol (WebSocket, h2c) to the
            // server whose name was just checked: spliced from here on.
            if let Some(up) = c.up.as_mut() {
                if up.w.write_all(&buf).await.is_err() {
                    break;
                }
            }
            return c.splice().await;
        }
    }
    if let Some(up) = c.up.as_mut() {
        let _ = up.w.shutdown().await;
    }
    c.splice().await
}

/// The http rules' decision on a request (`None`: its host has none). On a host with rules an
/// `Upgrade` is refused: what follows a 101 could not be inspected.
fn judge_request(
    sh: &Shared,
    t: &Target,
    head: &RequestHead,
    normalized: Option<&Normalized>,
) -> Option<RequestDecision> {
    let d = sh
        .cfg
        .domains
        .http
        .decide(&t.name, t.port, &head.method, normalized)?;
    if matches!(d, RequestDecision::Allow { .. }) && head.header("upgrade").next().is_some() {
        let path = normalized.map_or("", |n| n.path.as_str());
        return Some(RequestDecision::Deny {
            rule: NOT_INSPECTABLE.into(),
            why: format!(
                "{} {path}: an Upgrade on a host with http rules (the protocol after it \
                 cannot be inspected)",
                head.method
            ),
        });
    }
    Some(d)
}

/// The next head; `Ok(None)` at the client's EOF between requests. An idle keep-alive
/// connection may wait for its next request as long as it likes; once a request has begun,
/// its head must be whole within `HEAD_TIMEOUT`.
async fn read_head(
    c: &mut Conn,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> Result<Option<RequestHead>, String> {
    if buf.is_empty() && read_more(&mut c.cl_r, buf, limits.max_head).await == 0 {
        return Ok(None);
    }
    let parse = async {
        loop {
            match http::parse_head(buf, limits) {
                Ok(Some(h)) => return Ok(h),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            if read_more(&mut c.cl_r, buf, limits.max_head).await == 0 {
                return Err("the connection ended inside a request head".to_string());
            }
        }
    };
    match tokio::time::timeout(HEAD_TIMEOUT, parse).await {
        Ok(r) => r.map(Some),
        Err(_) => Err("the request head did not arrive within 10 s".into()),
    }
}

/// Which name and port a request is for, and the head to send upstream; `Err` when it does
/// not agree with the connection's name (the target to record it against, and why).
fn judge_head(
    mode: &Mode,
    head: &RequestHead,
    buf: &[u8],
) -> Result<(Target, Vec<u8>), (Target, String)> {
    match mode {
        Mode::Fixed(t) => {
            let raw = buf[..head.len].to_vec();
            if !t.check_names {
                return Ok((t.clone(), raw));
            }
            match head.authority() {
                None => Err((
                    t.clone(),
                    format!("no Host header (the client resolved {})", t.name),
                )),
                Some(a) if !same_name(&a.host, &t.name) || a.port.is_some_and(|p| p != t.port) => {
                    let shown = match a.port {
                        Some(p) => format!("{}:{p}", a.host),
                        None => a.host.clone(),
                    };
                    Err((
                        t.clone(),
                        format!(
                            "the Host {shown:?} is not the name the client resolved ({}:{})",
                            t.name, t.port
                        ),
                    ))
                }
                Some(_) => Ok((t.clone(), raw)),
            }
        }
        Mode::Proxy => {
            let unknown = Target {
                source: Source::HttpProxy,
                name: head.authority().map(|a| a.host.clone()).unwrap_or_default(),
                port: 80,
                check_names: false,
            };
            let HttpTarget::Absolute {
                https: false,
                authority,
                path,
            } = &head.target
            else {
                return Err((
                    unknown,
                    "the explicit proxy takes CONNECT host:port or an absolute http:// URL".into(),
                ));
            };
            let name = authority.host.trim_end_matches('.').to_ascii_lowercase();
            let t = Target {
                source: Source::HttpProxy,
                check_names: crate::spec::domains::destination(&name)
                    .is_some_and(|h| !matches!(h, crate::spec::domains::Host::Ip(_))),
                name,
                port: authority.port.unwrap_or(80),
            };
            Ok((t, origin_form(head, path, &authority.host, authority.port)))
        }
    }
}

/// The head re-written for the origin: `METHOD /path HTTP/1.x`, the headers as sent less the
/// proxy's own (Proxy-Connection, Proxy-Authorization), and a Host if there was none.
fn origin_form(head: &RequestHead, path: &str, host: &str, port: Option<u16>) -> Vec<u8> {
    let mut out = format!("{} {path} HTTP/1.{}\r\n", head.method, head.minor_version).into_bytes();
    let mut has_host = false;
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("proxy-connection")
            || name.eq_ignore_ascii_case("proxy-authorization")
        {
            continue;
        }
        has_host |= name.eq_ignore_ascii_case("host");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let h = match port {
            Some(p) => format!("Host: {host}:{p}\r\n"),
            None => format!("Host: {host}\r\n"),
        };
        out.extend_from_slice(h.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Forwards exactly the request's body; what follows it stays in `buf` (the next head).
async fn body(c: &mut Conn, buf: &mut Vec<u8>, framing: Body) -> Result<(), HttpError> {
    let fail = |_| HttpError::BadFraming("the connection ended inside a body");
    match framing {
        Body::None => Ok(()),
        Body::Length(n) => sized(c, buf, n).await.map_err(fail),
        Body::Chunked => loop {
            let line = read_line(c, buf).await?;
            let size = chunk_size(&line)?;
            send(c, &line).await.map_err(fail)?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let l = read_line(c, buf).await?;
                    send(c, &l).await.map_err(fail)?;
                    if l.len() == 2 {
                        return Ok(());
                    }
                }
            }
            sized(c, buf, size).await.map_err(fail)?;
            let end = read_line(c, buf).await?;
            if end != b"\r\n" {
                return Err(HttpError::BadFraming("chunk data is not followed by CRLF"));
            }
            send(c, &end).await.map_err(fail)?;
        },
    }
}

/// The size of a chunk-size line (CRLF included; extensions ignored).
fn chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let size_text = line[..line.len().saturating_sub(2)]
        .split(|&b| b == b';')
        .next()
        .unwrap_or(&[]);
    std::str::from_utf8(size_text)
        .ok()
        .map(str::trim_ascii)
        .filter(|s| !s.is_empty() && s.len() <= 16)
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or(HttpError::BadFraming("a chunk size is not hex"))
}

async fn send(c: &mut Conn, bytes: &[u8]) -> std::io::Result<()> {
    match c.up.as_mut() {
        Some(up) => up.w.write_all(bytes).await,
        None => Err(std::io::ErrorKind::NotConnected.into()),
    }
}

/// `n` bytes: those in `buf` first, then straight from the client.
async fn sized(c: &mut Conn, buf: &mut Vec<u8>, n: u64) -> std::io::Result<()> {
    let have = (buf.len() as u64).min(n) as usize;
    let first: Vec<u8> = buf.drain(..have).collect();
    send(c, &first).await?;
    let rest = n - have as u64;
    if rest > 0 {
        let Some(up) = c.up.as_mut() else {
            return Err(std::io::ErrorKind::NotConnected.into());
        };
        let copied = tokio::io::copy(&mut (&mut c.cl_r).take(rest), &mut up.w).await?;
        if copied != rest {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

/// One CRLF-ended line taken from the front of `buf` (read as needed), CRLF included.
async fn read_line(c: &mut Conn, buf: &mut Vec<u8>) -> Result<Vec<u8>, HttpError> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            return Ok(buf.drain(..i + 2).collect());
        }
        if buf.len() >= MAX_LINE {
            return Err(HttpError::BadFraming("a chunk line longer than 4 KiB"));
        }
        let more = tokio::time::timeout(HEAD_TIMEOUT, read_more(&mut c.cl_r, buf, MAX_LINE));
        if !matches!(more.await, Ok(n) if n > 0) {
            return Err(HttpError::BadFraming("the connection ended inside a chunk"));
        }
    }
}

#[path = "flow_credentials.rs"]
mod credentials;
