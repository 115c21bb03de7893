//! Generated-case loops over the proxy's parsers (`crate::fuzzkit`: seeded, every case replayable,
//! `WARD_FUZZ_CASES` of them; `make fuzz` runs 1,000,000): random and mutated inputs, asserting
//! that nothing panics, that every call returns within the kit's bound, and properties that
//! must hold for any input. Mutations of real ClientHellos reach deeper than generic strategies
//! would. The listeners' own parsers (DNS queries, SOCKS5 requests) are in `props_listeners`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::http::{parse_head, Limits};
use super::path::normalize;
use super::sni::{client_hello, HelloError};
use super::upstream::{refuse, HostAddrs};
use crate::fuzzkit::{mutate, run, PER_CALL};

/// A ClientHello's server name: random records and mutated captured and synthetic hellos.
#[test]
fn fuzz_sni_client_hello() {
    use super::sni::tests::{body, handshake, records, sni_ext, CAPTURES};
    let mut bases: Vec<Vec<u8>> = CAPTURES.iter().map(|c| c.1.to_vec()).collect();
    let synth = handshake(&body(
        0x0303,
        Some(&[sni_ext(b"a.example"), (0xfe0d, vec![1; 40])]),
    ));
    for size in [1, 3, 40, 1 << 14] {
        bases.push(records(&synth, size));
    }
    let stats = run("sni", |c| {
        let input = if c.index % 4 == 0 {
            let mut b = vec![22, 3, c.rng.below(5) as u8];
            b.extend(c.rng.bytes(600));
            b
        } else {
            let base = c.rng.pick(&bases).clone();
            mutate(&mut c.rng, &base)
        };
        match c.call(|| client_hello(&input)) {
            Ok(hello) => {
                // Bytes after a complete hello change nothing.
                let mut more = input.clone();
                more.extend(c.rng.bytes(32));
                more.push(0);
                assert_eq!(client_hello(&more), Ok(hello));
                "ok"
            }
            Err(HelloError::Incomplete { needed }) => {
                // At most a whole maximal hello, its header and two record headers.
                assert!((1..=super::sni::MAX_HELLO + 14).contains(&needed));
                // `needed` is a lower bound: fewer bytes, whatever they are, never complete it.
                let mut more = input.clone();
                more.extend(c.rng.bytes(needed.min(64)));
                assert!(client_hello(&more).is_err(), "needed {needed}");
                "incomplete"
            }
            Err(HelloError::Invalid(why)) => {
                assert!(!why.is_empty());
                "invalid"
            }
        }
    });
    stats.assert_reaches(&["ok", "incomplete", "invalid"]);
    // The largest hello, in as many records as are accepted: still linear.
    let big = handshake(&vec![0; super::sni::MAX_HELLO]);
    let big = records(&big, big.len().div_ceil(super::sni::MAX_RECORDS));
    assert!(big.len() <= super::sni::MAX_BUFFER);
    let start = std::time::Instant::now();
    assert!(matches!(client_hello(&big), Err(HelloError::Invalid(_))));
    assert!(start.elapsed() < PER_CALL, "{:?}", start.elapsed());
}

/// HTTP/1.x request heads (transparent, CONNECT and absolute-form): random tokens and mutated
/// requests, against small limits so that they are reached.
#[test]
fn fuzz_http_head() {
    let bases: &[&[u8]] = &[
        b"GET /v1/./files?x=1 HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\n\r\n",
        b"POST http://a.example:8080/p HTTP/1.1\r\nHost: a.example:8080\r\nContent-Length: 3\r\n\r\nabc",
        b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
        b"PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"OPTIONS * HTTP/1.0\r\n\r\n",
    ];
    let limits = Limits {
        max_head: 512,
        max_headers: 8,
    };
    let stats = run("http-head", |c| {
        let input = if c.index % 4 == 0 {
            let alphabet = b"GET /HTP1.:\r\n%?#@[]0123456789abchost-ngthcCrsfer,;\t ";
            let n = c.rng.below(200);
            (0..n).map(|_| *c.rng.pick(alphabet)).collect()
        } else {
            let base = *c.rng.pick(bases);
            mutate(&mut c.rng, base)
        };
        match c.call(|| parse_head(&input, &limits)) {
            Ok(Some(h)) => {
                assert!(h.len <= input.len() && h.len <= limits.max_head);
                assert!(h.headers.len() <= limits.max_headers);
                if let Some(n) = h.normalized_path() {
                    assert!(n.path.starts_with('/'));
                }
                "ok"
            }
            Ok(None) => "incomplete",
            Err(e) => {
                assert!(!e.to_string().is_empty());
                "refused"
            }
        }
    });
    stats.assert_reaches(&["ok", "incomplete", "refused"]);
}

/// Path normalisation: one spelling per path, idempotent, no dot segments, no stray escapes.
#[test]
fn fuzz_path_normalize() {
    let alphabet: &[&str] = &[
        "/", "/", ".", "..", "%", "%2e", "%2E", "%2f", "%5C", "%66", "%7e", "%25", "%zz", "%0",
        "a", "Z", "~", "?", ";", "\\", "#", " ", "é", "%C3", "\u{0}", "//", "/./", "/../",
    ];
    run("path-normalize", |c| {
        let target = c.rng.text(alphabet, 24);
        let n = c.call(|| normalize(&target));
        let p = &n.path;
        assert!(p.starts_with('/'), "{target:?} -> {p:?}");
        assert!(!p.contains("//"), "{target:?} -> {p:?}");
        for seg in p.split('/').skip(1) {
            assert!(seg != "." && seg != "..", "{target:?} -> {p:?}");
        }
        let b = p.as_bytes();
        for (i, &ch) in b.iter().enumerate() {
            assert!(ch.is_ascii_graphic(), "{target:?} -> {p:?}");
            if ch == b'%' {
                let hex = b.get(i + 1..i + 3).unwrap_or_default();
                assert!(
                    hex.len() == 2
                        && hex
                            .iter()
                            .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h)),
                    "{target:?} -> {p:?}"
                );
                let d = u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
                assert!(
                    !(d.is_ascii_alphanumeric() || b"-._~".contains(&d)),
                    "an unreserved byte left escaped: {target:?} -> {p:?}"
                );
            }
        }
        assert_eq!(normalize(p).path, *p, "not idempotent for {target:?}");
        assert_eq!(n.query.is_some(), target.contains('?'));
        "ok"
    });
}

/// An IPv4 address and the same address carried in IPv6 (mapped, translated, NAT64, 6to4
/// with any suffix, compatible) get the same verdict.
#[test]
fn fuzz_upstream_embeddings() {
    let host = HostAddrs::new(
        [IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))],
        [Ipv4Addr::new(203, 0, 113, 255)],
    );
    let no_rules = |_: IpAddr| None;
    let interesting: &[u32] = &[
        0x7f00_0001,
        0xa9fe_a9fe,
        0x0a00_0001,
        0x6464_64c8,
        0xcb00_7107,
        0xcb00_71ff,
        0xc000_0201,
    ];
    let stats = run("upstream", |c| {
        let v4 = if c.index % 3 == 0 {
            *c.rng.pick(interesting)
        } else {
            c.rng.next() as u32
        };
        let a = Ipv4Addr::from_bits(v4);
        let want = c.call(|| refuse(IpAddr::V4(a), &host, no_rules).map(|r| r.reason));
        let low = v4 as u128;
        let mut forms = vec![
            0xffff << 32 | low,
            0xffff << 48 | low,
            0x0064_ff9b << 96 | low,
            0x2002 << 112 | low << 80 | c.rng.next() as u128,
        ];
        if v4 > 1 {
            forms.push(low);
        }
        for bits in forms {
            let v6 = Ipv6Addr::from_bits(bits);
            let got = c.call(|| refuse(IpAddr::V6(v6), &host, no_rules));
            assert_eq!(got.map(|r| r.reason), want, "{a} as {v6}");
            if let Some(r) = got {
                assert_eq!(r.embedded, Some(a), "{v6}");
            }
        }
        // Any IPv6 address at all: no panic, and a refusal always names a block.
        let any = Ipv6Addr::from_bits((c.rng.next() as u128) << 64 | c.rng.next() as u128);
        if let Some(r) = c.call(|| refuse(IpAddr::V6(any), &host, no_rules)) {
            assert!(!r.range.is_empty());
        }
        if want.is_some() {
            "refused"
        } else {
            "allowed"
        }
    });
    stats.assert_reaches(&["refused", "allowed"]);
}
