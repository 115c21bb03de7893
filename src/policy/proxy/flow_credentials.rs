//! Credential placeholders in plain HTTP (issue 17): a request that crosses the network in
//! clear never carries a secret unless the user said so (`allowPlaintextInject`), so a
//! placeholder anywhere in its head (request line, header names and values, also
//! percent-escaped in the target or inside Basic credentials) is refused as an exfiltration
//! attempt. With `allowPlaintextInject` its headers and query are swapped as over TLS (the
//! binding must match host, method and path). A placeholder in the body is always refused:
//! the body is streamed through `Vault::plaintext_body`, which holds back only what may begin
//! a placeholder, so the placeholder itself never leaves (chunked bodies are re-framed then,
//! since held-back bytes cross the client's chunk boundaries).

use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use crate::policy::credentials::swap::{BodyFilter, Place, RequestView, Violation};
use crate::policy::credentials::{Binding, Vault};
use crate::policy::proxy::conn::{self, Conn, Target};
use crate::policy::proxy::http::{Body, HttpError, RequestHead, Target as HttpTarget};
use crate::policy::proxy::record::CREDENTIAL;
use crate::policy::proxy::shared::Shared;
use crate::spec::domains::path::Normalized;

/// Why a body stopped being forwarded.
pub(super) enum Stop {
    /// Bad framing, or either side gone: the connection ends.
    Framing,
    Refused(Violation),
}

impl From<HttpError> for Stop {
    fn from(_: HttpError) -> Stop {
        Stop::Framing
    }
}

fn ended(_: std::io::Error) -> Stop {
    Stop::Framing
}

/// The first binding whose placeholder is in the head, in any spelling the proxy reads.
pub(super) fn placeholder_in_head<'v>(
    vault: &'v Vault,
    head: &RequestHead,
    raw: &[u8],
) -> Option<&'v Binding> {
    if vault.is_empty() {
        return None;
    }
    let target = match &head.target {
        HttpTarget::Origin(p) | HttpTarget::Absolute { path: p, .. } => Some(p.as_bytes()),
        HttpTarget::Authority(_) | HttpTarget::Asterisk => None,
    };
    vault
        .find(raw)
        .or_else(|| target.and_then(|t| vault.find_encoded(t)))
        .or_else(|| head.headers.iter().find_map(|(_, v)| vault.find_encoded(v)))
}

/// The refusal of a placeholder in a plain-HTTP request without `allowPlaintextInject`.
pub(super) fn plaintext(b: &Binding) -> Violation {
    Violation {
        binding: b.name.clone(),
        place: Place::Plaintext,
        why: "placeholders are never swapped into plain HTTP (allowPlaintextInject is off)".into(),
    }
}

/// With `allowPlaintextInject`: the head to send with its placeholders swapped (`Ok(None)`:
/// none in it), or the violation. `proxy_form`: the explicit proxy's absolute-form request,
/// sent in origin form without the proxy's own headers.
pub(super) fn swap_head(
    vault: &Vault,
    t: &Target,
    head: &RequestHead,
    raw: &[u8],
    normalized: Option<&Normalized>,
    proxy_form: bool,
) -> Result<Option<Zeroizing<Vec<u8>>>, Violation> {
    let Some(found) = placeholder_in_head(vault, head, raw) else {
        return Ok(None);
    };
    if vault.find(t.name.as_bytes()).is_some() {
        return Err(Violation {
            binding: found.name.clone(),
            place: Place::Plaintext,
            why: "a placeholder in the host name is never swapped".into(),
        });
    }
    let req = RequestView {
        host: &t.name,
        port: t.port,
        method: &head.method,
        path: normalized.map_or("", |n| n.path.as_str()),
        query: normalized.and_then(|n| n.query.as_deref()),
    };
    let target = match &head.target {
        HttpTarget::Origin(p) | HttpTarget::Absolute { path: p, .. } => p.as_str(),
        HttpTarget::Authority(_) | HttpTarget::Asterisk => "*",
    };
    let swapped_target = vault.swap_target(&req, target)?;
    let target = swapped_target.as_deref().unwrap_or(target);
    let mut injected = Vec::new();
    let mut out = Zeroizing::new(
        format!("{} {target} HTTP/1.{}\r\n", head.method, head.minor_version).into_bytes(),
    );
    let mut has_host = false;
    for (name, value) in &head.headers {
        if proxy_form
            && (name.eq_ignore_ascii_case("proxy-connection")
                || name.eq_ignore_ascii_case("proxy-authorization"))
        {
            continue;
        }
        has_host |= name.eq_ignore_ascii_case("host");
        let new = vault.swap_header(&req, name, value, &mut injected)?;
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(new.as_deref().map_or(&value[..], |v| &v[..]));
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        if let Some(a) = head.authority() {
            let host = if a.host.contains(':') {
                format!("[{}]", a.host)
            } else {
                a.host.clone()
            };
            let h = match a.port {
                Some(p) => format!("Host: {host}:{p}\r\n"),
                None => format!("Host: {host}\r\n"),
            };
            out.extend_from_slice(h.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    // What the swap did not take (it refuses what it cannot swap; this is the last check).
    if let Some(b) = vault.find(&out) {
        return Err(plaintext(b));
    }
    tracing::debug!("plain HTTP: {} placeholder(s) swapped", injected.len());
    Ok(Some(out))
}

/// Records a credential violation and ends the connection with a 403 naming the binding
/// (never a value: the name and path recorded are redacted).
pub(super) async fn refuse(sh: &Shared, t: &Target, head: &RequestHead, c: Conn, v: &Violation) {
    let vault = &sh.cfg.vault;
    let why = v.reason();
    let name = vault.redact(&t.name).into_owned();
    let path = head
        .normalized_path()
        .map(|n| vault.redact(&n.path).into_owned());
    let dest = c.up.as_ref().map(|u| u.to);
    sh.record_request(
        t.source,
        &name,
        t.port,
        dest,
        CREDENTIAL,
        Some(&why),
        &head.method,
        path.as_deref(),
    );
    let body = format!("ward: {name}:{} denied: {why}\n", t.port);
    let r = conn::response("403 Forbidden", CREDENTIAL, &body);
    c.refuse(r.as_bytes()).await
}

/// The body through `f` (any placeholder refused): by its framing, re-framed when chunked.
pub(super) async fn body(
    c: &mut Conn,
    buf: &mut Vec<u8>,
    framing: Body,
    vault: &Vault,
    f: &mut BodyFilter<'_>,
) -> Result<(), Stop> {
    match framing {
        Body::None => Ok(()),
        Body::Length(n) => {
            sized(c, buf, n, f, false).await?;
            let rest = f.finish().map_err(Stop::Refused)?;
            super::send(c, &rest).await.map_err(ended)
        }
        Body::Chunked => loop {
            let line = super::read_line(c, buf).await?;
            if let Some(b) = vault.find_encoded(&line) {
                return Err(Stop::Refused(plaintext(b)));
            }
            let size = super::chunk_size(&line)?;
            if size == 0 {
                let rest = f.finish().map_err(Stop::Refused)?;
                send_chunk(c, &rest).await?;
                super::send(c, b"0\r\n").await.map_err(ended)?;
                loop {
                    let l = super::read_line(c, buf).await?;
                    if let Some(b) = vault.find_encoded(&l) {
                        return Err(Stop::Refused(plaintext(b)));
                    }
                    super::send(c, &l).await.map_err(ended)?;
                    if l.len() == 2 {
                        return Ok(());
                    }
                }
            }
            sized(c, buf, size, f, true).await?;
            let end = super::read_line(c, buf).await?;
            if end != b"\r\n" {
                return Err(HttpError::BadFraming("chunk data is not followed by CRLF").into());
            }
        },
    }
}

/// `n` body bytes through `f` (those in `buf` first), each output sent as it comes (as a
/// chunk of its own when `chunked`).
async fn sized(
    c: &mut Conn,
    buf: &mut Vec<u8>,
    n: u64,
    f: &mut BodyFilter<'_>,
    chunked: bool,
) -> Result<(), Stop> {
    let have = (buf.len() as u64).min(n) as usize;
    let first: Vec<u8> = buf.drain(..have).collect();
    let out = f.push(&first).map_err(Stop::Refused)?;
    emit(c, &out, chunked).await?;
    let mut rest = n - have as u64;
    let mut chunk = vec![0u8; 16 * 1024];
    while rest > 0 {
        let want = (rest as usize).min(chunk.len());
        let k = c.cl_r.read(&mut chunk[..want]).await.map_err(ended)?;
        if k == 0 {
            return Err(ended(std::io::ErrorKind::UnexpectedEof.into()));
        }
        rest -= k as u64;
        let out = f.push(&chunk[..k]).map_err(Stop::Refused)?;
        emit(c, &out, chunked).await?;
    }
    Ok(())
}

async fn emit(c: &mut Conn, out: &[u8], chunked: bool) -> Result<(), Stop> {
    if chunked {
        send_chunk(c, out).await
    } else {
        super::send(c, out).await.map_err(ended)
    }
}

/// One chunk (nothing when `data` is empty: an empty chunk would end the body).
async fn send_chunk(c: &mut Conn, data: &[u8]) -> Result<(), Stop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\r\n");
    super::send(c, &frame).await.map_err(ended)
}
