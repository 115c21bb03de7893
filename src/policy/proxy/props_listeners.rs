//! Generated-case loops over what the proxy's listeners parse before any rule applies
//! (`crate::fuzzkit`): DNS queries (`dns::answer`, the whole server side: parse, decide, build
//! the reply) and SOCKS5 greetings and requests (`explicit::socks_request`, driven from memory),
//! on random bytes and mutations of real messages. Properties: no panic, every call within
//! the kit's bound, and replies as the protocols require (below, per target).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hickory_proto::op::Query;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::dns::answer;
use super::explicit::{socks_request, ATYP_NOT_SUPPORTED, COMMAND_NOT_SUPPORTED, HOST_UNREACHABLE};
use super::names::Table;
use super::record::Recorder;
use super::resolve::Upstream;
use super::shared::{Config, Shared};
use crate::fuzzkit::{mutate, run, Rng};
use crate::policy::credentials::{Binding, Secret, Vault};
use crate::policy::egress::slot::Slot;
use crate::spec::domains::{destination, for_tests, Host};

const SLOT: Slot = Slot { index: 0 };
/// A placeholder the vault holds: a query for a name that carries it is refused.
const PLACEHOLDER: &str = "ward-cred-abcdefghijklmnopqrstuvwxyz";

/// The proxy's shared state with a small name table (so that it fills), a log to /dev/null
/// and one credential binding.
fn shared() -> Shared {
    let null = || -> std::os::fd::OwnedFd {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("/dev/null")
            .into()
    };
    let binding = Binding {
        name: "credentials.envVars[0] (TOKEN)".into(),
        placeholder: PLACEHOLDER.into(),
        secret: Secret::new(b"s3cret".to_vec()),
        hosts: Vec::new(),
        methods: None,
        paths: None,
    };
    let cfg = Config {
        id: "fuzz".into(),
        domains: for_tests(
            &["github.com", "*.example.com:443", "10.0.0.1"],
            &["x.example.com"],
        ),
        rules: Vec::new(),
        slot: SLOT,
        upstream: Upstream::parse("", ""),
        log: null(),
        max_clients: 16,
        ca: None,
        extra_roots_pem: Vec::new(),
        vault: Vault::new(vec![binding], false),
        allow_loopback: false,
        table_limit: None,
    };
    Shared::new(
        cfg,
        Recorder::new("fuzz".into(), null()),
        Table::with_limit(SLOT, 8),
    )
}

fn query(rng: &mut Rng) -> Vec<u8> {
    let names = [
        "github.com.".to_string(),
        "a.example.com.".into(),
        "x.example.com.".into(),
        "evil.test.".into(),
        format!("{PLACEHOLDER}.evil.test."),
        format!("WARD-CRED-{}.x.", &PLACEHOLDER[10..]),
        format!("{}.example.com.", "a".repeat(63)),
        ".".into(),
    ];
    let name = Name::from_ascii(rng.pick(&names)).expect("a valid name");
    let ty = *rng.pick(&[
        RecordType::A,
        RecordType::AAAA,
        RecordType::TXT,
        RecordType::ANY,
    ]);
    let mut m = Message::query();
    // Message::query() draws a random id: the case's own keeps it replayable.
    m.metadata.id = rng.next() as u16;
    m.metadata.recursion_desired = rng.one_in(2);
    for _ in 0..1 + usize::from(rng.one_in(8)) {
        m.add_query(Query::query(name.clone(), ty));
    }
    if rng.one_in(2) {
        m.set_edns(Edns::new());
    }
    m.to_vec().expect("a query encodes")
}

#[test]
fn fuzz_dns_query() {
    let sh = shared();
    let stats = run("dns-query", |c| {
        *sh.names.lock().unwrap() = Table::with_limit(SLOT, 8);
        let input = match c.rng.below(8) {
            0 => c.rng.bytes(600),
            1 | 2 => query(&mut c.rng),
            _ => {
                let base = query(&mut c.rng);
                mutate(&mut c.rng, &base)
            }
        };
        // Fill the table sometimes, so that SERVFAIL is reached.
        for i in 0..c.rng.below(12) {
            let _ = sh.names.lock().unwrap().assign(&format!("n{i}.github.com"));
        }
        let udp = c.rng.one_in(2);
        let Some(reply) = c.call(|| answer(&sh, &input, udp)) else {
            // Not answered: too short for an id, or itself an answer.
            let parsed = Message::from_vec(&input).ok();
            assert!(
                input.len() < 2
                    || parsed.is_some_and(|m| m.metadata.message_type == MessageType::Response)
            );
            return "unanswered";
        };
        let r = Message::from_vec(&reply).expect("the reply parses");
        assert_eq!(r.metadata.id, u16::from_be_bytes([input[0], input[1]]));
        assert_eq!(r.metadata.message_type, MessageType::Response);
        let req = Message::from_vec(&input).ok();
        if udp && reply.len() > 512 {
            assert!(
                req.as_ref().is_some_and(|q| q.edns.is_some()),
                "{} bytes",
                reply.len()
            );
        }
        for a in &r.answers {
            let RData::A(addr) = &a.data else {
                panic!("an answer that is not an A record: {a:?}");
            };
            assert!(SLOT.contains(addr.0), "{addr:?} outside the slot");
        }
        // A standard query for a name that holds the placeholder is refused (and recorded);
        // other opcodes are answered NOTIMP without a look at the name (nothing is resolved).
        let standard = req.as_ref().filter(|m| m.metadata.op_code == OpCode::Query);
        if let Some([q]) = standard.map(|m| m.queries.as_slice()) {
            let held = q.name().iter().any(|l| {
                l.to_ascii_lowercase()
                    .windows(PLACEHOLDER.len())
                    .any(|w| w == PLACEHOLDER.as_bytes())
            });
            if held {
                assert_eq!(r.metadata.response_code, ResponseCode::Refused);
            }
        }
        match r.metadata.response_code {
            ResponseCode::NoError if r.answers.is_empty() => "nodata",
            ResponseCode::NoError => "answered",
            ResponseCode::NXDomain => "nxdomain",
            ResponseCode::Refused => "refused",
            ResponseCode::ServFail => "servfail",
            _ => "error",
        }
    });
    stats.assert_reaches(&["answered", "nodata", "nxdomain", "refused", "error"]);
}

/// A stream over fixed input that records what is written: `socks_request` runs on it as on
/// a client connection.
struct Script {
    input: std::io::Cursor<Vec<u8>>,
    out: Vec<u8>,
}

impl tokio::io::AsyncRead for Script {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Script {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.out).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.out).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.out).poll_shutdown(cx)
    }
}

fn socks_bytes(rng: &mut Rng) -> Vec<u8> {
    let mut b = vec![5, 1, 0, 5, 1, 0];
    match rng.below(3) {
        0 => {
            b.push(1);
            b.extend(rng.next().to_be_bytes()[..4].iter());
        }
        1 => {
            b.push(4);
            b.extend(rng.next().to_be_bytes());
            b.extend(rng.next().to_be_bytes());
        }
        _ => {
            let name = *rng.pick(&["github.com", "a.example.com", "10.0.0.1", "::1", "", "é"]);
            b.push(3);
            b.push(name.len() as u8);
            b.extend(name.as_bytes());
        }
    }
    b.extend((*rng.pick(&[443u16, 80, 0, 65535])).to_be_bytes());
    b
}

#[test]
fn fuzz_socks_request() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let d = for_tests(
        &["github.com", "*.example.com:443", "10.0.0.1"],
        &["x.example.com"],
    );
    let stats = run("socks-request", |c| {
        let input = match c.rng.below(4) {
            0 => {
                let mut b = vec![5];
                b.extend(c.rng.bytes(40));
                b
            }
            1 => socks_bytes(&mut c.rng),
            _ => {
                let base = socks_bytes(&mut c.rng);
                mutate(&mut c.rng, &base)
            }
        };
        let mut s = Script {
            input: std::io::Cursor::new(input.clone()),
            out: Vec::new(),
        };
        let got = c.call(|| rt.block_on(socks_request(&mut s)));
        // What is written: nothing, "no acceptable method", or "no authentication".
        assert!(
            s.out.is_empty() || s.out == [5, 0xff] || s.out == [5, 0],
            "{:?}",
            s.out
        );
        match got {
            Ok(Ok((host, port))) => {
                assert_eq!(s.out, [5, 0]);
                let at = 2 + usize::from(input[1]) + 3;
                match input[at] {
                    1 => assert!(host.parse::<Ipv4Addr>().is_ok(), "{host}"),
                    4 => assert!(host.parse::<Ipv6Addr>().is_ok(), "{host}"),
                    _ => assert_eq!(
                        host.as_bytes(),
                        &input[at + 2..at + 2 + usize::from(input[at + 1])]
                    ),
                }
                // An address the client sent as one is read as that address; the decision on
                // whatever it named never panics.
                if matches!(input[at], 1 | 4) {
                    let _: IpAddr = host.parse().expect("an address");
                    assert!(matches!(destination(&host), Some(Host::Ip(_))), "{host}");
                }
                c.call(|| d.decide(&host, port));
                "request"
            }
            Ok(Err(code)) => {
                assert!(
                    [HOST_UNREACHABLE, COMMAND_NOT_SUPPORTED, ATYP_NOT_SUPPORTED].contains(&code)
                );
                "refused"
            }
            Err(_) => "incomplete",
        }
    });
    stats.assert_reaches(&["request", "refused", "incomplete"]);
}
