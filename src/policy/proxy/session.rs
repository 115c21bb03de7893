//! One client connection judged against the name it is for (the transparent listener's, or a
//! CONNECT/SOCKS tunnel's) and relayed: the client's first bytes say TLS (the ClientHello's SNI
//! must be the name), HTTP (every request's Host must be the name: `flow`) or anything else
//! (spliced as it is). A client that sends nothing for `SERVER_FIRST` is taken for a protocol
//! where the server speaks first: the upstream is dialled and its bytes relayed, and the
//! client's first bytes are still judged when they come. A name with `http` rules takes plain
//! HTTP (each request judged by `flow`) and TLS, which is terminated when the proxy has the
//! container's CA (`tls`: each request judged there) and refused without one; opaque bytes and
//! a silent client are refused and recorded. A name some credential binds is terminated too
//! (when there is a CA), so that its requests can be swapped.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::conn::{
    classify, open, read_more, same_name, Conn, Kind, Target, ALERT_ACCESS_DENIED, MAX_FIRST_LINE,
};
use super::shared::{Dialled, Shared, HEAD_TIMEOUT, SERVER_FIRST};
use super::sni;
use crate::spec::domains::http::{NOT_INSPECTABLE, TLS_REFUSED};

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
    // A host with http rules gets only plain HTTP requests, each judged: nothing is dialled
    // before one is, and anything else is refused.
    let inspect = sh.cfg.domains.http.applies(&t.name, t.port);
    if buf.is_empty() {
        match tokio::time::timeout(SERVER_FIRST, read_more(&mut c.cl_r, &mut buf, 1)).await {
            Ok(0) => return c.finish().await,
            Ok(_) => {}
            Err(_) if inspect && !tunnel => {
                let more = tokio::time::timeout(
                    HEAD_TIMEOUT.saturating_sub(SERVER_FIRST),
                    read_more(&mut c.cl_r, &mut buf, 1),
                );
                if !matches!(more.await, Ok(n) if n > 0) {
                    let why = "host has http rules; the client sent no request within 10 s";
                    sh.record(t.source, &t.name, t.port, None, NOT_INSPECTABLE, Some(why));
                    return c.finish().await;
                }
            }
            Err(_) => {
                // The server speaks first (or the client is slow): dial, then judge the
                // client's first bytes whenever they come.
                if !tunnel && !open(&sh, &t, &mut c, Kind::Opaque, None).await {
                    return;
                }
                if read_more(&mut c.cl_r, &mut buf, 1).await == 0 {
                    return c.splice().await;
                }
            }
        }
    }
    let classified = tokio::time::timeout(HEAD_TIMEOUT, async {
        loop {
            if let Some(k) = classify(&buf) {
                return k;
            }
            if read_more(&mut c.cl_r, &mut buf, MAX_FIRST_LINE).await == 0 {
                return Kind::Opaque;
            }
        }
    });
    // Bytes that could still become an HTTP request line after 10 s: neither judged nor
    // spliced (a slow request line must not pass unchecked).
    let Ok(kind) = classified.await else {
        let dest = c.up.as_ref().map(|u| u.to);
        let why = "the first line did not arrive whole within 10 s";
        sh.record(t.source, &t.name, t.port, dest, "name agreement", Some(why));
        return c.finish().await;
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
            // Hosts with http rules or credentials: terminated when the proxy has a CA.
            if sh.cfg.ca.is_some() && (inspect || sh.cfg.vault.binds(&t.name, t.port)) {
                return super::tls::terminate(sh, t, c, buf).await;
            }
            if inspect {
                let dest = c.up.as_ref().map(|u| u.to);
                sh.record(
                    t.source,
                    &t.name,
                    t.port,
                    dest,
                    NOT_INSPECTABLE,
                    Some(TLS_REFUSED),
                );
                return c.refuse(&ALERT_ACCESS_DENIED).await;
            }
            forward(sh, t, c, buf).await
        }
        Kind::Opaque if inspect => {
            let dest = c.up.as_ref().map(|u| u.to);
            let why = "host has http rules; only plain HTTP requests can be inspected there";
            sh.record(t.source, &t.name, t.port, dest, NOT_INSPECTABLE, Some(why));
            c.finish().await
        }
        Kind::Opaque => forward(sh, t, c, buf).await,
    }
}

/// Dials (when not yet) and splices, the first bytes in `buf` sent first.
async fn forward(sh: Arc<Shared>, t: Target, mut c: Conn, buf: Vec<u8>) {
    if c.up.is_none() && !open(&sh, &t, &mut c, Kind::Opaque, None).await {
        return;
    }
    if let Some(up) = c.up.as_mut() {
        if up.w.write_all(&buf).await.is_err() {
            return c.finish().await;
        }
    }
    c.splice().await
}
