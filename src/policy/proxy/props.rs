//! Generated-case loops over the proxy's parsers: 100,000 random and mutated inputs each, from a
//! fixed seed (a failure names the seed and case to replay). Each asserts that nothing panics,
//! that every call returns within a bound, and properties that must hold for any input.
//! A seeded xorshift rather than proptest: no dependency, stable Rust, and mutations of real
//! ClientHellos reach deeper than generic strategies would.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::http::{parse_head, Limits};
use super::path::normalize;
use super::sni::{client_hello, HelloError};
use super::upstream::{refuse, HostAddrs};

const CASES: usize = 100_000;
const SEED: u64 = 0x5eed_0f3a_7d00;
/// One call of any of these parsers on inputs of at most 64 KiB; generous for a debug build on
/// a shared machine, far below what a quadratic walk or a loop would take.
const PER_CALL: Duration = Duration::from_millis(500);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// `n` random bytes for `n` drawn below `max`.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One to four random edits: bit flips, byte sets, 16-bit length fields set to edge values,
/// inserts, deletes, truncation, duplication.
fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 if at < b.len() => b[at] = rng.next() as u8,
            2 if at + 1 < b.len() => {
                let v = *rng.pick(&[0u16, 1, 0xff, 0x100, 0x4000, 0x4001, 0xffff]);
                b[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            3 => {
                let extra = rng.bytes(16);
                b.splice(at..at, extra);
            }
            4 => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            5 => b.truncate(at),
            _ => {
                let end = (at + rng.below(64)).min(b.len());
                let copy = b[at..end].to_vec();
                b.splice(at..at, copy);
            }
        }
    }
    b
}

fn timed<T>(slowest: &mut Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    *slowest = (*slowest).max(start.elapsed());
    out
}

#[test]
fn sni_survives_generated_inputs() {
    use super::sni::tests::{body, handshake, records, sni_ext, CAPTURES};
    let mut bases: Vec<Vec<u8>> = CAPTURES.iter().map(|c| c.1.to_vec()).collect();
    let synth = handshake(&body(
        0x0303,
        Some(&[sni_ext(b"a.example"), (0xfe0d, vec![1; 40])]),
    ));
    for size in [1, 3, 40, 1 << 14] {
        bases.push(records(&synth, size));
    }
    let mut rng = Rng(SEED);
    let mut slowest = Duration::ZERO;
    let (mut ok, mut incomplete, mut invalid) = (0, 0, 0);
    for case in 0..CASES {
        let input = if case % 4 == 0 {
            let mut b = vec![22, 3, rng.below(5) as u8];
            b.extend(rng.bytes(600));
            b
        } else {
            let base = rng.pick(&bases).clone();
            mutate(&mut rng, &base)
        };
        match timed(&mut slowest, || client_hello(&input)) {
            Ok(hello) => {
                ok += 1;
                // Bytes after a complete hello change nothing.
                let mut more = input.clone();
                more.extend(rng.bytes(32));
                more.push(0);
                assert_eq!(client_hello(&more), Ok(hello), "case {case}");
            }
            Err(HelloError::Incomplete { needed }) => {
                incomplete += 1;
                // At most a whole maximal hello, its header and two record headers.
                assert!(
                    (1..=super::sni::MAX_HELLO + 14).contains(&needed),
                    "case {case}"
                );
                // `needed` is a lower bound: fewer bytes, whatever they are, never complete it.
                let mut more = input.clone();
                more.extend(rng.bytes(needed.min(64)));
                assert!(client_hello(&more).is_err(), "case {case}: needed {needed}");
            }
            Err(HelloError::Invalid(why)) => {
                invalid += 1;
                assert!(!why.is_empty());
            }
        }
    }
    // The largest hello, in as many records as are accepted: still linear.
    let big = handshake(&vec![0; super::sni::MAX_HELLO]);
    let big = records(&big, big.len().div_ceil(super::sni::MAX_RECORDS));
    assert!(big.len() <= super::sni::MAX_BUFFER);
    assert!(matches!(
        timed(&mut slowest, || client_hello(&big)),
        Err(HelloError::Invalid(_))
    ));
    eprintln!("sni: {ok} ok, {incomplete} incomplete, {invalid} invalid; slowest {slowest:?}");
    assert!(
        ok > 1000 && incomplete > 1000 && invalid > 1000,
        "the mutations reach every outcome"
    );
    assert!(slowest < PER_CALL, "slowest call {slowest:?}");
}

#[test]
fn http_head_survives_generated_inputs() {
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
    let mut rng = Rng(SEED ^ 1);
    let mut slowest = Duration::ZERO;
    let (mut ok, mut partial, mut refused) = (0, 0, 0);
    for case in 0..CASES {
        let input = if case % 4 == 0 {
            let alphabet = b"GET /HTP1.:\r\n%?#@[]0123456789abchost-ngthcCrsfer,;\t ";
            let n = rng.below(200);
            (0..n).map(|_| *rng.pick(alphabet)).collect()
        } else {
            let base = *rng.pick(bases);
            mutate(&mut rng, base)
        };
        match timed(&mut slowest, || parse_head(&input, &limits)) {
            Ok(Some(h)) => {
                ok += 1;
                assert!(
                    h.len <= input.len() && h.len <= limits.max_head,
                    "case {case}"
                );
                assert!(h.headers.len() <= limits.max_headers, "case {case}");
                if let Some(n) = h.normalized_path() {
                    assert!(n.path.starts_with('/'), "case {case}");
                }
            }
            Ok(None) => partial += 1,
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    eprintln!("http: {ok} ok, {partial} incomplete, {refused} refused; slowest {slowest:?}");
    assert!(
        ok > 1000 && partial > 1000 && refused > 1000,
        "the mutations reach every outcome"
    );
    assert!(slowest < PER_CALL, "slowest call {slowest:?}");
}

#[test]
fn normalize_path_properties_on_generated_paths() {
    let alphabet: &[&str] = &[
        "/", "/", ".", "..", "%", "%2e", "%2E", "%2f", "%5C", "%66", "%7e", "%25", "%zz", "%0",
        "a", "Z", "~", "?", ";", "\\", "#", " ", "é", "%C3", "\u{0}", "//", "/./", "/../",
    ];
    let mut rng = Rng(SEED ^ 2);
    let mut slowest = Duration::ZERO;
    for case in 0..CASES {
        let n = rng.below(24);
        let target: String = (0..n).map(|_| *rng.pick(alphabet)).collect();
        let n = timed(&mut slowest, || normalize(&target));
        let p = &n.path;
        assert!(p.starts_with('/'), "case {case}: {target:?} -> {p:?}");
        assert!(!p.contains("//"), "case {case}: {target:?} -> {p:?}");
        for seg in p.split('/').skip(1) {
            assert!(
                seg != "." && seg != "..",
                "case {case}: {target:?} -> {p:?}"
            );
        }
        let b = p.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            assert!(c.is_ascii_graphic(), "case {case}: {target:?} -> {p:?}");
            if c == b'%' {
                let hex = b.get(i + 1..i + 3).unwrap_or_default();
                assert!(
                    hex.len() == 2
                        && hex
                            .iter()
                            .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h)),
                    "case {case}: {target:?} -> {p:?}"
                );
                let d = u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
                assert!(
                    !(d.is_ascii_alphanumeric() || b"-._~".contains(&d)),
                    "an unreserved byte left escaped, case {case}: {target:?} -> {p:?}"
                );
            }
        }
        assert_eq!(
            normalize(p).path,
            *p,
            "case {case}: not idempotent for {target:?}"
        );
        assert_eq!(n.query.is_some(), target.contains('?'), "case {case}");
    }
    eprintln!("normalize: slowest {slowest:?}");
    assert!(slowest < PER_CALL, "slowest call {slowest:?}");
}

/// An IPv4 address and the same address carried in IPv6 (mapped, translated, NAT64, 6to4
/// with any suffix, compatible) get the same verdict.
#[test]
fn upstream_verdicts_agree_across_embeddings() {
    let host = HostAddrs::new(
        [IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))],
        [Ipv4Addr::new(203, 0, 113, 255)],
    );
    let no_rules = |_: IpAddr| None;
    let mut rng = Rng(SEED ^ 3);
    let interesting: &[u32] = &[
        0x7f00_0001,
        0xa9fe_a9fe,
        0x0a00_0001,
        0x6464_64c8,
        0xcb00_7107,
        0xcb00_71ff,
        0xc000_0201,
    ];
    for case in 0..CASES {
        let v4 = if case % 3 == 0 {
            *rng.pick(interesting)
        } else {
            rng.next() as u32
        };
        let a = Ipv4Addr::from_bits(v4);
        let want = refuse(IpAddr::V4(a), &host, no_rules).map(|r| r.reason);
        let low = v4 as u128;
        let mut forms = vec![
            0xffff << 32 | low,
            0xffff << 48 | low,
            0x0064_ff9b << 96 | low,
            0x2002 << 112 | low << 80 | rng.next() as u128,
        ];
        if v4 > 1 {
            forms.push(low);
        }
        for bits in forms {
            let v6 = Ipv6Addr::from_bits(bits);
            let got = refuse(IpAddr::V6(v6), &host, no_rules);
            assert_eq!(got.map(|r| r.reason), want, "case {case}: {a} as {v6}");
            if let Some(r) = got {
                assert_eq!(r.embedded, Some(a), "case {case}: {v6}");
            }
        }
        // Any IPv6 address at all: no panic, and a refusal always names a block.
        let any = Ipv6Addr::from_bits((rng.next() as u128) << 64 | rng.next() as u128);
        if let Some(r) = refuse(IpAddr::V6(any), &host, no_rules) {
            assert!(!r.range.is_empty());
        }
    }
}
