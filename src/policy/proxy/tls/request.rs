//! One request on a terminated connection, judged and sent on: its Host/:authority must name
//! the connection's host (421), the domain decision and the http rules (`spec::domains::http`,
//! the same judging as plain HTTP in `flow`) must allow it (403), the vault swaps its
//! placeholders or refuses it (403), then it goes upstream over a pooled, verified TLS
//! connection with its body streamed through the vault's filter; the response comes back
//! with the secrets masked. Allowed requests are recorded with their method and normalised
//! path (never the query), as `flow` records them.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::body::{self, ProxyBody, Tripped, View, Which};
use super::origin::{self, UpError, Upstream};
use super::signed::{self, Signed};
use crate::policy::proxy::conn::{self, same_name, Target};
use crate::policy::proxy::record;
use crate::policy::proxy::shared::Shared;
use crate::spec::domains::http::{RequestDecision, NOT_INSPECTABLE};
use crate::spec::domains::path::{self, Normalized};
use crate::spec::domains::Decision;

/// What every request of one terminated connection shares.
pub(super) struct Ctx {
    pub sh: Arc<Shared>,
    pub t: Target,
}

/// The rule of a request whose Host/:authority is not the connection's name.
const HOST_RULE: &str = "name agreement (Host)";

/// Headers of one hop only (RFC 9110 7.6.1), never forwarded either way.
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub(super) async fn handle(
    cx: Arc<Ctx>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let resp = judge(&cx, parts, &mut body).await;
    // Refused before its body was needed: a short body is read (and dropped) first, a longer
    // one stays open until the answer has been sent. A client still sending reads a reset of
    // its stream as a failed request (curl 7.88 over HTTP/2: exit 92), not as the answer.
    Ok(match body {
        Some(mut b) if !b.is_end_stream() => match body::drain(&mut b).await {
            true => resp,
            false => resp.map(|r| body::linger(r, b)),
        },
        _ => resp,
    })
}

/// A refusal the client reads: `status`, `X-Ward-Denied: rule`, a line of text.
fn refusal(status: StatusCode, rule: &str, body: String) -> Response<ProxyBody> {
    let mut r = Response::new(body::text(body));
    *r.status_mut() = status;
    let rule: String = rule.chars().filter(|c| !c.is_control()).collect();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&rule) {
        h.insert(HeaderName::from_static("x-ward-denied"), v);
    }
    r
}

/// The answer to one request (`req` and its body, taken from `body` when it is sent on).
async fn judge(
    cx: &Ctx,
    mut req: http::request::Parts,
    body: &mut Option<Incoming>,
) -> Response<ProxyBody> {
    let (sh, t) = (&cx.sh, &cx.t);
    let method = req.method.as_str().to_string();
    let target = req
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let normalized: Option<Normalized> = target.starts_with('/').then(|| path::normalize(&target));
    let shown_path = normalized.as_ref().map(|n| n.path.clone());
    let deny = |status: StatusCode, rule: &str, why: &str, to| {
        sh.record_request(
            t.source,
            &t.name,
            t.port,
            to,
            rule,
            Some(why),
            &method,
            shown_path.as_deref(),
        );
        refusal(
            status,
            rule,
            format!("ward: {}:{} denied: {why}\n", t.name, t.port),
        )
    };
    if let Err(why) = authority_agrees(t, &req) {
        return deny(StatusCode::MISDIRECTED_REQUEST, HOST_RULE, &why, None);
    }
    if req.method == Method::CONNECT {
        let why =
            "CONNECT inside a terminated TLS connection (what it carries cannot be inspected)";
        return deny(StatusCode::FORBIDDEN, NOT_INSPECTABLE, why, None);
    }
    let rule = match sh.decide(&t.name, t.port) {
        Decision::Allow { rule } => rule,
        Decision::Deny { rule, reason } => {
            let why = match &reason {
                Some(r) => format!("by {rule}: {r}"),
                None => format!("by {rule}"),
            };
            return deny(StatusCode::FORBIDDEN, &rule, &why, None);
        }
    };
    let upgrade = req.headers.contains_key(header::UPGRADE);
    let http_rule = match sh
        .cfg
        .domains
        .http
        .decide(&t.name, t.port, &method, normalized.as_ref())
    {
        Some(RequestDecision::Deny { rule, why }) => {
            return deny(StatusCode::FORBIDDEN, &rule, &why, None)
        }
        Some(RequestDecision::Allow { rule }) => Some(rule),
        None if upgrade => {
            let why = format!(
                "{method} {}: an Upgrade that no http rule allows (the protocol after it \
                 cannot be inspected)",
                shown_path.as_deref().unwrap_or("")
            );
            return deny(StatusCode::FORBIDDEN, NOT_INSPECTABLE, &why, None);
        }
        None => None,
    };
    let view = View {
        source: t.source,
        host: t.name.clone(),
        port: t.port,
        method: method.clone(),
        path: shown_path.clone().unwrap_or_else(|| target.clone()),
        query: normalized.as_ref().and_then(|n| n.query.clone()),
    };
    let vault = &sh.cfg.vault;
    let signed = match signed::resign(vault, &view, &target, &mut req, body).await {
        Ok(s) => s,
        Err(r) => return deny(r.status, record::CREDENTIAL, &r.why, None),
    };
    let mut carries = match vault.swap_request(&view.borrow(), &mut req.headers) {
        Ok(injected) => !injected.is_empty() || matches!(signed, Signed::Yes(_)),
        Err(v) => return deny(StatusCode::FORBIDDEN, record::CREDENTIAL, &v.reason(), None),
    };
    // A placeholder in the query of a request its binding allows: swapped in what is sent.
    let target = match vault.swap_target(&view.borrow(), &target) {
        Ok(Some(swapped)) => {
            carries = true;
            swapped
        }
        Ok(None) => target,
        Err(v) => return deny(StatusCode::FORBIDDEN, record::CREDENTIAL, &v.reason(), None),
    };
    if carries {
        let quirky = normalized.as_ref().is_some_and(|n| n.quirks.any());
        if let Some(why) = carrier_refusal(&req.headers, quirky, upgrade) {
            return deny(StatusCode::FORBIDDEN, record::CREDENTIAL, &why, None);
        }
    }
    let Some(Ok(term)) = super::terminator(sh) else {
        return deny(
            StatusCode::BAD_GATEWAY,
            super::TERMINATION,
            "the proxy cannot terminate TLS",
            None,
        );
    };
    let client_upgrade = upgrade
        .then(|| req.extensions.remove::<hyper::upgrade::OnUpgrade>())
        .flatten();
    let incoming = match (signed, body.take()) {
        (Signed::Yes(Some(read)), _) => ReqBody::Read(read),
        (Signed::Yes(None), Some(i)) => ReqBody::Signed(i),
        (Signed::No, Some(i)) => ReqBody::Streamed(i),
        (_, None) => return deny(StatusCode::BAD_REQUEST, "HTTP request", "no body", None),
    };
    let tripped = Arc::new(Tripped::default());
    let up_req = upstream_request(
        sh,
        t,
        (req, incoming),
        &target,
        view.clone(),
        upgrade,
        &tripped,
    );
    let mut up = match term.pool.get(sh, &term.client, &t.name, t.port).await {
        Ok(u) => u,
        Err(e) => return up_failed(cx, &method, shown_path.as_deref(), &e),
    };
    conn::record(
        sh,
        t,
        Some(conn::Request {
            method: &method,
            path: shown_path.as_deref(),
            rule: http_rule.as_deref(),
        }),
        Some(up.to),
        &rule,
        None,
    );
    let sent = match up.send.try_send_request(up_req).await {
        Ok(r) => Ok(r),
        Err(mut e) => match e.take_message() {
            // A kept-alive connection the origin had closed: once more on a new one.
            Some(again) if up.reused => {
                match origin::connect(sh, &term.client, &t.name, t.port).await {
                    Ok(fresh) => {
                        up = fresh;
                        up.send.send_request(again).await
                    }
                    Err(e) => return up_failed(cx, &method, shown_path.as_deref(), &e),
                }
            }
            _ => Err(e.into_error()),
        },
    };
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            if let Some(v) = tripped.take() {
                // Recorded by the body's filter already.
                return refusal(
                    StatusCode::FORBIDDEN,
                    record::CREDENTIAL,
                    format!("ward: {}:{} denied: {}\n", t.name, t.port, v.reason()),
                );
            }
            let why = format!("the origin's response failed: {e}");
            return deny(StatusCode::BAD_GATEWAY, "upstream", &why, Some(up.to));
        }
    };
    respond(cx, resp, up, client_upgrade, view)
}

/// The request as the origin gets it: `target` (origin form), HTTP/1.1, Host the connection's
/// name, hop-by-hop headers dropped, the body streamed (through the vault's filter when it
/// has bindings).
fn upstream_request(
    sh: &Arc<Shared>,
    t: &Target,
    (parts, incoming): (http::request::Parts, ReqBody),
    target: &str,
    view: View,
    upgrade: bool,
    tripped: &Arc<Tripped>,
) -> Request<ProxyBody> {
    let vault = &sh.cfg.vault;
    let mut headers = parts.headers;
    strip_hop(&mut headers, upgrade);
    headers.remove(header::HOST);
    // hyper answered the client's `Expect: 100-continue` when the body was first read.
    headers.remove(header::EXPECT);
    // HTTP/2 may split Cookie into several fields; HTTP/1.1 wants one (RFC 9113 8.2.3).
    let cookies: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if cookies.len() > 1 {
        if let Ok(v) = HeaderValue::from_str(&cookies.join("; ")) {
            headers.insert(header::COOKIE, v);
        }
    }
    let host = if t.port == 443 {
        t.name.clone()
    } else {
        format!("{}:{}", t.name, t.port)
    };
    if let Ok(v) = HeaderValue::from_str(&host) {
        headers.insert(header::HOST, v);
    }
    let resigned = !matches!(incoming, ReqBody::Streamed(_));
    if !vault.is_empty() && !resigned {
        // The response filter must see the secret as it is, not compressed (a re-signed
        // request is sent as signed: Accept-Encoding may be among its signed headers).
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    let body = match incoming {
        ReqBody::Read(b) if b.is_empty() => body::empty(),
        ReqBody::Read(b) => body::boxed(http_body_util::Full::new(b)),
        // Its payload hash is signed: its length is kept (a swap in it fails at the origin).
        ReqBody::Signed(i) => streamed(sh, i, None, view, tripped),
        ReqBody::Streamed(i) => streamed(sh, i, Some(&mut headers), view, tripped),
    };
    let mut out = Request::new(body);
    *out.method_mut() = parts.method;
    *out.version_mut() = Version::HTTP_11;
    *out.uri_mut() = target
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    *out.headers_mut() = headers;
    out
}

/// The origin's response for the client: hop-by-hop headers dropped, secrets masked in the
/// headers and (streamed) in the body; the connection back to the pool when the body ends.
fn respond(
    cx: &Ctx,
    mut resp: Response<Incoming>,
    up: Upstream,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    view: View,
) -> Response<ProxyBody> {
    let head = view.method == "HEAD";
    let (sh, t) = (&cx.sh, &cx.t);
    let vault = &sh.cfg.vault;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client) = client_upgrade {
            let origin = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                if let (Ok(c), Ok(o)) = (client.await, origin.await) {
                    let (mut c, mut o) = (TokioIo::new(c), TokioIo::new(o));
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut o).await;
                }
            });
            let (mut parts, _) = resp.into_parts();
            vault.mask_response(&mut parts.headers);
            return Response::from_parts(parts, body::empty());
        }
    }
    let (mut parts, incoming) = resp.into_parts();
    strip_hop(&mut parts.headers, false);
    vault.mask_response(&mut parts.headers);
    let bodiless = head
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED
        || incoming.is_end_stream();
    if bodiless {
        super::pool_put(sh, &t.name, t.port, up);
        return Response::from_parts(parts, body::empty());
    }
    let incoming = origin::Returning::new(incoming, Arc::clone(sh), &t.name, t.port, up);
    let body = if vault.is_empty() {
        body::boxed(incoming)
    } else {
        if !vault.same_lengths() {
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        body::filtered(
            Arc::clone(sh),
            incoming,
            Which::Response(view),
            Arc::new(Tripped::default()),
        )
    };
    Response::from_parts(parts, body)
}

fn up_failed(cx: &Ctx, method: &str, path: Option<&str>, e: &UpError) -> Response<ProxyBody> {
    let (sh, t) = (&cx.sh, &cx.t);
    let (status, rule, why) = e.describe();
    sh.record_request(
        t.source,
        &t.name,
        t.port,
        None,
        &rule,
        Some(&why),
        method,
        path,
    );
    refusal(
        status,
        &rule,
        format!("ward: {}:{} {why}\n", t.name, t.port),
    )
}

/// Headers that make some origins run another method or path than the request line's, which
/// the binding judged (Google APIs, Rails: method; IIS, Symfony: URL).
const OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
];

/// Why a request that carries a credential (swapped or re-signed) is refused all the same: the
/// origin could act on another path or method than the binding allowed, or what follows could
/// not be masked.
fn carrier_refusal(headers: &HeaderMap, quirky_path: bool, upgrade: bool) -> Option<String> {
    if quirky_path {
        return Some(
            "a credential is never sent with a path servers read differently (%2F, %5C, \\, ;, \
             an escaped control byte): the binding's paths judged another path than the origin \
             may serve"
                .into(),
        );
    }
    if upgrade {
        return Some(
            "a credential is never sent in an Upgrade request: what follows the upgrade is \
             relayed unmasked"
                .into(),
        );
    }
    OVERRIDES
        .iter()
        .find(|h| headers.contains_key(**h))
        .map(|h| {
            format!(
            "a credential is never sent with {h}: it can make the origin run another method or \
             path than the binding allows"
        )
        })
}

/// A request body as the origin gets it.
enum ReqBody {
    /// Streamed (through the vault's filter when it has bindings).
    Streamed(Incoming),
    /// Of a re-signed request whose client sent its payload hash: streamed, length kept.
    Signed(Incoming),
    /// Of a re-signed request, read whole to hash it.
    Read(bytes::Bytes),
}

/// A body streamed on, through the vault's filter when it has bindings; Content-Length is
/// dropped from `headers` (when given) if a swap can change the length.
fn streamed(
    sh: &Arc<Shared>,
    incoming: Incoming,
    headers: Option<&mut HeaderMap>,
    view: View,
    tripped: &Arc<Tripped>,
) -> ProxyBody {
    let vault = &sh.cfg.vault;
    if incoming.is_end_stream() {
        return body::empty();
    }
    if vault.is_empty() {
        return body::boxed(incoming);
    }
    if let Some(h) = headers.filter(|_| !vault.same_lengths()) {
        h.remove(header::CONTENT_LENGTH);
    }
    body::filtered(
        Arc::clone(sh),
        incoming,
        Which::Request(view),
        Arc::clone(tripped),
    )
}

/// Drops the hop-by-hop headers and those the Connection header names; an allowed upgrade
/// keeps `Connection: upgrade` and `Upgrade`.
fn strip_hop(h: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    let kept_upgrade = upgrade.then(|| h.get(header::UPGRADE).cloned()).flatten();
    for n in named {
        h.remove(n);
    }
    for n in HOP {
        h.remove(*n);
    }
    if let Some(u) = kept_upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, u);
    }
}

/// The request's Host and :authority (each that is present; at least one) must name the
/// connection's host, and its port if they give one (none: 443, or the connection's port when
/// the origin form leaves it out).
fn authority_agrees(t: &Target, req: &http::request::Parts) -> Result<(), String> {
    if !t.check_names {
        return Ok(());
    }
    let mut seen = Vec::new();
    if let Some(a) = req.uri.authority() {
        seen.push(a.as_str().to_string());
    }
    let hosts: Vec<_> = req.headers.get_all(header::HOST).iter().collect();
    if hosts.len() > 1 {
        return Err("more than one Host header".into());
    }
    for h in hosts {
        match h.to_str() {
            Ok(s) => seen.push(s.to_string()),
            Err(_) => return Err("a Host header that is not text".into()),
        }
    }
    if seen.is_empty() {
        return Err(format!(
            "no Host or :authority (the connection is for {})",
            t.name
        ));
    }
    for s in seen {
        let a: http::uri::Authority = s
            .parse()
            .map_err(|_| format!("the Host {s:?} is not a host[:port]"))?;
        let port_ok = match a.port_u16() {
            Some(p) => p == t.port,
            None => t.port == 443,
        };
        if a.as_str().contains('@') || !same_name(a.host(), &t.name) || !port_ok {
            return Err(format!(
                "the Host {s:?} is not the name the connection is for ({}:{})",
                t.name, t.port
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_carrying_a_credential_is_refused_where_the_origin_could_act_otherwise() {
        let none = HeaderMap::new();
        assert_eq!(carrier_refusal(&none, false, false), None);
        assert!(carrier_refusal(&none, true, false).is_some_and(|w| w.contains("%2F")));
        assert!(carrier_refusal(&none, false, true).is_some_and(|w| w.contains("Upgrade")));
        for h in OVERRIDES {
            let mut m = HeaderMap::new();
            m.insert(
                HeaderName::from_static(h),
                HeaderValue::from_static("/v1/files"),
            );
            assert!(
                carrier_refusal(&m, false, false).is_some_and(|w| w.contains(h)),
                "{h}"
            );
        }
    }
}
