//! The proxy's upstream resolver: the host's `/etc/hosts`, then the nameservers of its
//! `/etc/resolv.conf` (both read once, before Landlock closes the filesystem), or the one
//! server of `--egress-resolver`. Queries go over UDP (TCP when the answer is truncated), one
//! id and question checked per answer; messages are hickory-proto's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::spec::domains::{destination, Host};

/// How long one server gets to answer one query.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The most nameservers tried (as glibc's MAXNS).
const MAX_SERVERS: usize = 3;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upstream {
    pub servers: Vec<SocketAddr>,
    /// `/etc/hosts`: lower-case names (no trailing dot) and their addresses, in file order.
    pub hosts: Vec<(String, IpAddr)>,
}

impl Upstream {
    /// `--egress-resolver ADDR`: that server only, no hosts file.
    pub fn server(addr: SocketAddr) -> Upstream {
        Upstream {
            servers: vec![addr],
            hosts: Vec::new(),
        }
    }

    /// The host's: `/etc/resolv.conf` and `/etc/hosts` of the calling process's root.
    pub fn host() -> Result<Upstream> {
        let read = |p: &str| match std::fs::read_to_string(p) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(Error::io("read", p, e)),
        };
        Ok(Upstream::parse(
            &read("/etc/resolv.conf")?,
            &read("/etc/hosts")?,
        ))
    }

    /// From the text of a resolv.conf and a hosts file. Without a nameserver line the
    /// resolver is the local one (127.0.0.1:53), as glibc does.
    pub fn parse(resolv_conf: &str, hosts: &str) -> Upstream {
        let mut servers: Vec<SocketAddr> = resolv_conf
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next()? == "nameserver").then_some(())?;
                // A scoped address (fe80::1%eth0) is not supported: skipped.
                w.next()?.parse::<IpAddr>().ok()
            })
            .map(|a| SocketAddr::new(a, 53))
            .take(MAX_SERVERS)
            .collect();
        if servers.is_empty() {
            servers.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        let mut table = Vec::new();
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut w = line.split_whitespace();
            let Some(Ok(addr)) = w.next().map(str::parse::<IpAddr>) else {
                continue;
            };
            for name in w {
                table.push((normal(name), addr));
            }
        }
        Upstream {
            servers,
            hosts: table,
        }
    }

    /// Every address `name` has, and for how many seconds DNS said it may be kept (0: not
    /// from DNS). An address literal is itself; a name in the hosts file has its lines'
    /// addresses (and DNS is not asked); else the A then the AAAA answers of the first server
    /// that answers. `Err` says why there is none.
    pub async fn resolve(&self, name: &str) -> std::result::Result<(Vec<IpAddr>, u32), String> {
        if let Some(Host::Ip(a)) = destination(name) {
            return Ok((vec![a], 0));
        }
        let key = normal(name);
        let listed: Vec<IpAddr> = self
            .hosts
            .iter()
            .filter(|(n, _)| *n == key)
            .map(|(_, a)| *a)
            .collect();
        if !listed.is_empty() {
            return Ok((listed, 0));
        }
        let qname = Name::from_ascii(format!("{key}."))
            .map_err(|e| format!("{name:?} is not a DNS name: {e}"))?;
        let mut last = String::from("no nameserver");
        for server in &self.servers {
            // Both questions at once (as glibc asks them): one round trip per new name.
            let (v4, v6) = tokio::join!(
                query(*server, &qname, RecordType::A),
                query(*server, &qname, RecordType::AAAA)
            );
            match (v4, v6) {
                (Err(e), Err(_)) => last = format!("{server}: {e}"),
                (v4, v6) => {
                    let all: Vec<(IpAddr, u32)> = v4
                        .unwrap_or_default()
                        .into_iter()
                        .chain(v6.unwrap_or_default())
                        .collect();
                    if all.is_empty() {
                        return Err(format!("{server}: no address for {key}"));
                    }
                    let ttl = all.iter().map(|(_, t)| *t).min().unwrap_or(0);
                    return Ok((all.into_iter().map(|(a, _)| a).collect(), ttl));
                }
            }
        }
        Err(last)
    }
}

fn normal(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// One question to one server: the addresses answered and their TTLs (`Ok(vec![])` for
/// NODATA/NXDOMAIN).
async fn query(
    server: SocketAddr,
    name: &Name,
    kind: RecordType,
) -> std::result::Result<Vec<(IpAddr, u32)>, String> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), kind));
    let id = msg.metadata.id;
    let wire = msg.to_vec().map_err(|e| format!("encode: {e}"))?;
    let mut answer = None;
    for _ in 0..2 {
        match tokio::time::timeout(TIMEOUT, udp(server, &wire, id)).await {
            Ok(Ok(m)) => {
                answer = Some(m);
                break;
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => continue,
        }
    }
    let mut m = answer.ok_or_else(|| "no answer (timeout)".to_string())?;
    if m.metadata.truncation {
        m = tokio::time::timeout(TIMEOUT, tcp(server, &wire, id))
            .await
            .map_err(|_| "no answer over TCP (timeout)".to_string())??;
    }
    if m.queries.len() != 1 || m.queries[0].name() != name || m.queries[0].query_type() != kind {
        return Err("the answer is for another question".into());
    }
    match m.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        rc => return Err(format!("server says {rc}")),
    }
    Ok(m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((IpAddr::V4(a.0), r.ttl)),
            RData::AAAA(a) => Some((IpAddr::V6(a.0), r.ttl)),
            _ => None,
        })
        .collect())
}

fn check(m: Message, id: u16) -> Option<Message> {
    (m.metadata.id == id && m.metadata.message_type == MessageType::Response).then_some(m)
}

async fn udp(server: SocketAddr, wire: &[u8], id: u16) -> std::result::Result<Message, String> {
    let any: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(any)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    sock.connect(server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    sock.send(wire).await.map_err(|e| format!("send: {e}"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock
            .recv(&mut buf)
            .await
            .map_err(|e| format!("recv: {e}"))?;
        // A stray or forged datagram (wrong id) is dropped; the timeout bounds the wait.
        if let Some(m) = Message::from_vec(&buf[..n]).ok().and_then(|m| check(m, id)) {
            return Ok(m);
        }
    }
}

async fn tcp(server: SocketAddr, wire: &[u8], id: u16) -> std::result::Result<Message, String> {
    let mut s = tokio::net::TcpStream::connect(server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(wire);
    s.write_all(&framed)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let len = s.read_u16().await.map_err(|e| format!("recv: {e}"))? as usize;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf)
        .await
        .map_err(|e| format!("recv: {e}"))?;
    Message::from_vec(&buf)
        .ok()
        .and_then(|m| check(m, id))
        .ok_or_else(|| "a malformed or foreign answer over TCP".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_and_hosts_are_read_as_glibc_does() {
        let u = Upstream::parse(
            "# comment\nsearch x\nnameserver 10.0.0.2\nnameserver ::1\nnameserver fe80::1%eth0\n\
             nameserver 1.1.1.1\nnameserver 8.8.8.8\n",
            "127.0.0.1 localhost\n169.254.169.254 Meta.Test. meta2 # c\n# 1.2.3.4 x\nbad line\n",
        );
        assert_eq!(
            u.servers,
            vec![
                "10.0.0.2:53".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "1.1.1.1:53".parse().unwrap()
            ]
        );
        assert_eq!(u.hosts.len(), 3);
        assert_eq!(
            u.hosts[1],
            ("meta.test".into(), "169.254.169.254".parse().unwrap())
        );
        assert_eq!(
            Upstream::parse("", "").servers,
            vec!["127.0.0.1:53".parse().unwrap()]
        );
    }
}
