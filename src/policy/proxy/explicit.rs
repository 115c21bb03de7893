//! The explicit proxy (`proxyEnv`: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY), one port for three
//! protocols told apart by the first byte: 0x05 is SOCKS5 (no authentication, CONNECT; a
//! domain is judged by name, an address by the IP rules), anything else HTTP: `CONNECT
//! host:port` (the tunnel's first bytes then judged as the transparent listener's) or an
//! absolute-form request (`GET http://host/...`, every request judged, forwarded in origin
//! form).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::conn::{self, Conn, Target};
use super::flow::{self, Mode};
use super::http::{self, Limits, Target as HttpTarget};
use super::record::Source;
use super::session;
use super::shared::{accept, Dialled, Shared, HEAD_TIMEOUT};
use super::upstream;
use crate::error::Result;
use crate::spec::domains::{destination, Decision, Host, NOT_ALLOWED};

pub(super) async fn serve(sh: Arc<Shared>, l: TcpListener) -> Result<()> {
    loop {
        let (conn, _) = accept(&l).await;
        let Some(admitted) = sh.admit(Source::Connect) else {
            continue;
        };
        let _ = conn.set_nodelay(true);
        let sh = Arc::clone(&sh);
        tokio::spawn(async move {
            let _admitted = admitted;
            client(sh, conn).await;
        });
    }
}

async fn client(sh: Arc<Shared>, conn: TcpStream) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(HEAD_TIMEOUT, conn.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    if first[0] == 0x05 {
        return socks(sh, conn).await;
    }
    let mut c = Conn::new(conn);
    let mut buf = Vec::new();
    let limits = Limits::default();
    let head = tokio::time::timeout(HEAD_TIMEOUT, async {
        loop {
            match http::parse_head(&buf, &limits) {
                Ok(Some(h)) => return Ok(h),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            if conn::read_more(&mut c.cl_r, &mut buf, limits.max_head).await == 0 {
                return Err("the connection ended inside the request head".into());
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("the request head did not arrive within 10 s".into()));
    let head = match head {
        Ok(h) => h,
        Err(why) => {
            sh.record(Source::Connect, "", 0, None, "HTTP request", Some(&why));
            let body = format!("ward: bad request: {why}\n");
            let r = conn::response("400 Bad Request", "malformed request", &body);
            return c.refuse(r.as_bytes()).await;
        }
    };
    let HttpTarget::Authority(a) = &head.target else {
        // Absolute form (or a mistake the flow answers): request by request.
        return flow::run(sh, Mode::Proxy, c, buf).await;
    };
    let port = a.port.unwrap_or(443);
    let (t, decision) = target(&sh, Source::Connect, &a.host, port);
    let rest = buf.split_off(head.len);
    match decision {
        Decision::Deny { rule, reason } => {
            let why = match &reason {
                Some(r) => format!("by {rule}: {r}"),
                None => format!("by {rule}"),
            };
            sh.record(t.source, &t.name, port, None, &rule, Some(&why));
            let body = conn::denied_body(&t.name, port, &rule, reason.as_deref());
            let r = conn::response("403 Forbidden", &rule, &body);
            c.refuse(r.as_bytes()).await
        }
        Decision::Allow { rule } => match sh.dial(&t.name, port).await {
            Err(e) => {
                let (rule, why) = e.describe();
                sh.record(t.source, &t.name, port, None, &rule, Some(&why));
                let status = if matches!(e, super::shared::DialError::Refused(_)) {
                    "403 Forbidden"
                } else {
                    "502 Bad Gateway"
                };
                let body = format!("ward: {}:{port} {why}\n", t.name);
                c.refuse(conn::response(status, &rule, &body).as_bytes())
                    .await
            }
            Ok(d) => {
                sh.record(t.source, &t.name, port, Some(d.to), &rule, None);
                let Some(mut w) = c.cl_w.take() else { return };
                if w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let Ok(client) = c.cl_r.reunite(w) else {
                    return;
                };
                session::judge(sh, t, client, rest, Some(d)).await
            }
        },
    }
}

/// What a CONNECT or SOCKS destination is: a slot address stands for its name; an address
/// literal is allowed by an address pattern or, failing that, by an IP rule that allows it.
fn target(sh: &Shared, source: Source, host: &str, port: u16) -> (Target, Decision) {
    let ip = match destination(host) {
        Some(Host::Ip(ip)) => Some(ip),
        _ => None,
    };
    let slot_name = match ip {
        Some(IpAddr::V4(a)) if sh.cfg.slot.contains(a) => sh
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .name_of(a)
            .map(str::to_string),
        _ => None,
    };
    let (name, check_names) = match (slot_name, ip) {
        (Some(n), _) => (n, true),
        (None, Some(ip)) => (ip.to_string(), false),
        (None, None) => (host.trim_end_matches('.').to_ascii_lowercase(), true),
    };
    let mut decision = sh.decide(&name, port);
    if let (Some(ip), false, Decision::Deny { rule, .. }) = (ip, check_names, &decision) {
        if rule == NOT_ALLOWED
            && upstream::ip_verdict(&sh.cfg.rules, ip, port)
                == Some(crate::spec::interception::Verdict::Allow)
        {
            decision = Decision::Allow {
                rule: "IP rule".into(),
            };
        }
    }
    (
        Target {
            source,
            name,
            port,
            check_names,
        },
        decision,
    )
}

/// SOCKS5 replies (RFC 1928 6).
const SUCCEEDED: u8 = 0;
const NOT_ALLOWED_BY_RULESET: u8 = 2;
pub(super) const HOST_UNREACHABLE: u8 = 4;
pub(super) const COMMAND_NOT_SUPPORTED: u8 = 7;
pub(super) const ATYP_NOT_SUPPORTED: u8 = 8;

async fn socks(sh: Arc<Shared>, mut conn: TcpStream) {
    let request = tokio::time::timeout(HEAD_TIMEOUT, socks_request(&mut conn)).await;
    let (host, port) = match request {
        Ok(Ok(Ok(r))) => r,
        Ok(Ok(Err(code))) => {
            let _ = reply(&mut conn, code).await;
            return;
        }
        _ => return,
    };
    let (t, decision) = target(&sh, Source::Socks, &host, port);
    let rule = match decision {
        Decision::Deny { rule, reason } => {
            let why = match &reason {
                Some(r) => format!("by {rule}: {r}"),
                None => format!("by {rule}"),
            };
            sh.record(t.source, &t.name, port, None, &rule, Some(&why));
            let _ = reply(&mut conn, NOT_ALLOWED_BY_RULESET).await;
            return;
        }
        Decision::Allow { rule } => rule,
    };
    let d: Dialled = match sh.dial(&t.name, port).await {
        Ok(d) => d,
        Err(e) => {
            let (rule, why) = e.describe();
            sh.record(t.source, &t.name, port, None, &rule, Some(&why));
            let code = if matches!(e, super::shared::DialError::Refused(_)) {
                NOT_ALLOWED_BY_RULESET
            } else {
                HOST_UNREACHABLE
            };
            let _ = reply(&mut conn, code).await;
            return;
        }
    };
    sh.record(t.source, &t.name, port, Some(d.to), &rule, None);
    if reply(&mut conn, SUCCEEDED).await.is_err() {
        return;
    }
    session::judge(sh, t, conn, Vec::new(), Some(d)).await
}

/// The greeting and the request: `Ok(Err(code))` is a refusal to send. Generic over the stream
/// so that the fuzz target (`props_listeners`) drives it from memory.
pub(super) async fn socks_request<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut S,
) -> std::io::Result<Result<(String, u16), u8>> {
    let mut two = [0u8; 2];
    conn.read_exact(&mut two).await?;
    let mut methods = vec![0u8; two[1] as usize];
    conn.read_exact(&mut methods).await?;
    if !methods.contains(&0) {
        conn.write_all(&[5, 0xff]).await?; // no acceptable method
        return Err(std::io::ErrorKind::PermissionDenied.into());
    }
    conn.write_all(&[5, 0]).await?;
    let mut req = [0u8; 4];
    conn.read_exact(&mut req).await?;
    if req[0] != 5 {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            conn.read_exact(&mut a).await?;
            Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            conn.read_exact(&mut a).await?;
            Ipv6Addr::from(a).to_string()
        }
        3 => {
            let len = conn.read_u8().await? as usize;
            let mut n = vec![0u8; len];
            conn.read_exact(&mut n).await?;
            match String::from_utf8(n) {
                Ok(s) => s,
                Err(_) => return Ok(Err(HOST_UNREACHABLE)),
            }
        }
        _ => return Ok(Err(ATYP_NOT_SUPPORTED)),
    };
    let port = conn.read_u16().await?;
    if req[1] != 1 {
        return Ok(Err(COMMAND_NOT_SUPPORTED)); // BIND and UDP ASSOCIATE are not served
    }
    Ok(Ok((host, port)))
}

async fn reply(conn: &mut TcpStream, code: u8) -> std::io::Result<()> {
    let bound = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let mut r = vec![5, code, 0, 1];
    if let SocketAddr::V4(b) = bound {
        r.extend_from_slice(&b.ip().octets());
        r.extend_from_slice(&b.port().to_be_bytes());
    }
    conn.write_all(&r).await
}
