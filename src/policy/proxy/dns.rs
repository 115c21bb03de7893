//! The proxy's DNS (UDP and TCP on the slot's proxy address, port 53). For a name allowed on
//! at least one port: A -> the name's slot address (stable, TTL 5), every other type -> NODATA
//! (NOERROR, no answer) so that clients use the A; a denied name -> NXDOMAIN; the slot full ->
//! SERVFAIL. Denials and each name's first address are recorded. A name that holds a
//! credential's placeholder (any label, any case, even split across labels) -> REFUSED and
//! recorded as an exfiltration attempt (the binding's name, never the placeholder).

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::record::{Entry, Source, CREDENTIAL};
use super::shared::{accept, Shared, HEAD_TIMEOUT};
use crate::error::Result;
use crate::policy::credentials::swap::{Place, Violation};
use crate::policy::credentials::Vault;
use crate::spec::domains::{Decision, Domains, Pattern};

/// The TTL of an answer: short, so a client asks again rather than caching across restarts.
pub const TTL: u32 = 5;

pub(super) async fn serve_udp(sh: Arc<Shared>, sock: UdpSocket) -> Result<()> {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                return Err(super::shared::io_err("dns udp", e))
            }
            Err(_) => continue,
        };
        if let Some(reply) = answer(&sh, &buf[..n], true) {
            let _ = sock.send_to(&reply, peer).await;
        }
    }
}

pub(super) async fn serve_tcp(sh: Arc<Shared>, l: TcpListener) -> Result<()> {
    loop {
        let (conn, _) = accept(&l).await;
        let Some(admitted) = sh.admit(Source::Dns) else {
            continue;
        };
        let sh = Arc::clone(&sh);
        tokio::spawn(async move {
            let _admitted = admitted;
            let _ = tokio::time::timeout(HEAD_TIMEOUT, tcp_client(&sh, conn)).await;
        });
    }
}

/// Queries in 2-byte length frames until the client closes (bounded by the caller's timeout).
async fn tcp_client(sh: &Shared, mut conn: tokio::net::TcpStream) -> std::io::Result<()> {
    loop {
        let len = conn.read_u16().await? as usize;
        let mut q = vec![0u8; len];
        conn.read_exact(&mut q).await?;
        if let Some(reply) = answer(sh, &q, false) {
            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&reply);
            conn.write_all(&framed).await?;
        }
    }
}

/// The reply to one query message; `None` when it is not worth one (too short for an id).
pub(super) fn answer(sh: &Shared, query: &[u8], udp: bool) -> Option<Vec<u8>> {
    let id = u16::from_be_bytes([*query.first()?, *query.get(1)?]);
    let Ok(req) = Message::from_vec(query) else {
        return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
            .to_vec()
            .ok();
    };
    if req.metadata.message_type != MessageType::Query {
        return None; // never answer an answer
    }
    if req.metadata.op_code != OpCode::Query {
        return Message::error_msg(id, req.metadata.op_code, ResponseCode::NotImp)
            .to_vec()
            .ok();
    }
    let [q] = req.queries.as_slice() else {
        return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
            .to_vec()
            .ok();
    };
    let mut resp = Message::response(id, OpCode::Query);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_query(q.clone());
    if req.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(if udp { 1232 } else { u16::MAX });
        resp.set_edns(e);
    }
    let name = q.name().to_ascii();
    let name = name.trim_end_matches('.');
    let vault = &sh.cfg.vault;
    if let Some(b) = vault.find_in_name(q.name().iter()) {
        resp.metadata.response_code = ResponseCode::Refused;
        let v = Violation {
            binding: b.name.clone(),
            place: Place::DnsName,
            why: "a query for a name that holds it".into(),
        };
        record(sh, &shown(vault, name), None, CREDENTIAL, Some(&v.reason()));
        return resp.to_vec().ok();
    }
    match allowed_somewhere(&sh.cfg.domains, name) {
        Decision::Deny { rule, reason } => {
            resp.metadata.response_code = ResponseCode::NXDomain;
            let why = match reason {
                Some(r) => format!("NXDOMAIN: {r}"),
                None => "NXDOMAIN".into(),
            };
            record(sh, name, None, &rule, Some(&why));
        }
        Decision::Allow { rule } if q.query_type() == RecordType::A => {
            let key = name.to_ascii_lowercase();
            let assigned = sh
                .names
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .assign(&key);
            match assigned {
                Some((addr, new)) => {
                    if new {
                        let to = SocketAddr::from((addr, 0));
                        record(sh, &key, Some(to), &rule, None);
                    }
                    resp.add_answer(Record::from_rdata(q.name().clone(), TTL, RData::A(A(addr))));
                }
                None => {
                    resp.metadata.response_code = ResponseCode::ServFail;
                    let why = "SERVFAIL: every address of the slot is handed out";
                    record(sh, &key, None, &rule, Some(why));
                }
            }
        }
        Decision::Allow { .. } => {} // NODATA: NOERROR without answers
    }
    let wire = resp.to_vec().ok()?;
    if udp && wire.len() > 512 && req.edns.is_none() {
        let mut t = resp.truncate();
        t.metadata.truncation = true;
        return t.to_vec().ok();
    }
    Some(wire)
}

/// `name` for the log: lower case, placeholders redacted; when one is split across labels,
/// not the name at all.
fn shown(vault: &Vault, name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let redacted = vault.redact(&lower);
    if vault
        .find_in_name(redacted.split('.').map(str::as_bytes))
        .is_some()
    {
        return "(a name holding a placeholder)".into();
    }
    redacted.into_owned()
}

/// A DNS decision: for a name, not a port (`port` is null).
fn record(sh: &Shared, name: &str, to: Option<SocketAddr>, rule: &str, denied: Option<&str>) {
    sh.rec.record(&Entry {
        source: Source::Dns,
        name,
        port: None,
        destination: to,
        rule,
        denied,
        method: None,
        path: None,
    });
}

/// Whether `name` is allowed on at least one port: the rules only tell the ports they name
/// from the others, so those and one port none names are all there is to try.
pub fn allowed_somewhere(d: &Domains, name: &str) -> Decision {
    let named: Vec<u16> = d
        .allowed
        .iter()
        .chain(&d.denied)
        .filter_map(|p: &Pattern| p.port)
        .collect();
    let other = (1..=u16::MAX).find(|p| !named.contains(p)).unwrap_or(1);
    let mut first_deny = None;
    for port in named.iter().copied().chain([other]) {
        match d.decide(name, port) {
            allow @ Decision::Allow { .. } => return allow,
            deny if port == other || first_deny.is_none() => first_deny = Some(deny),
            _ => {}
        }
    }
    first_deny.unwrap_or(Decision::Deny {
        rule: crate::spec::domains::NOT_ALLOWED.into(),
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(allowed: &[&str], denied: &[&str]) -> Domains {
        crate::spec::domains::for_tests(allowed, denied)
    }

    #[test]
    fn a_name_is_answered_when_some_port_allows_it() {
        let allowed =
            |d: &Domains, n: &str| matches!(allowed_somewhere(d, n), Decision::Allow { .. });
        let d = domains(
            &["a.test:443", "b.test", "*.c.test:8443"],
            &["b.test:80", "x.c.test"],
        );
        assert!(allowed(&d, "a.test"), "only on 443, still answered");
        assert!(allowed(&d, "b.test"), "denied on 80, allowed on the others");
        assert!(allowed(&d, "y.c.test"));
        assert!(!allowed(&d, "x.c.test"), "denied on every port");
        assert!(!allowed(&d, "c.test"));
        assert!(!allowed(&d, "other.test"));
        // Denied on every port the allow names: not answered.
        let d = domains(&["a.test:443"], &["*:443"]);
        assert!(!allowed(&d, "a.test"));
        let d = domains(&["a.test"], &["*"]);
        let Decision::Deny { rule, .. } = allowed_somewhere(&d, "a.test") else {
            panic!("allowed under deny-all");
        };
        assert_eq!(rule, "deniedDomains[0] \"*\"");
    }
}
