//! The proxy's parsers of credential-bearing headers on generated inputs (`crate::fuzzkit`):
//! `Authorization: AWS4-HMAC-SHA256 …` (`sigv4::parse_authorization`), the canonical URI and
//! query a SigV4 re-signing rebuilds from the request, and Basic credentials' base64
//! (`b64`). All of it is what a container sends. Properties: no panic, every call within the
//! kit's bound, and outputs as the formats define them (below).

use super::{b64, sigv4};
use crate::fuzzkit::{mutate, run};

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
     SignedHeaders=content-type;host;x-amz-date, \
     Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

const PIECES: &[&str] = &[
    "/", "/", ".", "..", "%", "%2F", "%2e", "%FF", "%zz", "a", "~", "=", "&", "+", " ", "é", "?",
    "//", "%00", "-_.",
];

/// Only unreserved bytes, `/` and `%XX` escapes in upper-case hex.
fn encoded_once(s: &str, slash: bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex =
                |x: Option<&u8>| x.is_some_and(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h));
            if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(c.is_ascii_alphanumeric() || b"-_.~".contains(&c) || (slash && c == b'/')) {
            return false;
        }
        i += 1;
    }
    true
}

#[test]
fn fuzz_sigv4_authorization() {
    run("sigv4-authorization", |c| {
        let value = String::from_utf8_lossy(&mutate(&mut c.rng, AUTH.as_bytes())).into_owned();
        match c.call(|| sigv4::parse_authorization(&value)) {
            None => {
                assert!(!value.starts_with(&format!("{} ", sigv4::ALGORITHM)));
                "not sigv4"
            }
            Some(Err(why)) => {
                assert!(!why.is_empty());
                "malformed"
            }
            Some(Ok(a)) => {
                assert!(a.date.len() == 8 && a.date.bytes().all(|b| b.is_ascii_digit()));
                assert!(a.signature.len() == 64);
                assert!(a.signed_headers.iter().all(|h| !h.is_empty()));
                assert!(![a.key_id, a.region, a.service]
                    .iter()
                    .any(|p| p.contains('/')));
                "parsed"
            }
        }
    })
    .assert_reaches(&["parsed", "malformed", "not sigv4"]);
}

#[test]
fn fuzz_sigv4_canonical_uri_and_query() {
    run("sigv4-canonical", |c| {
        let path = c.rng.text(PIECES, 16);
        let service = *c.rng.pick(&["s3", "iam", "execute-api"]);
        let uri = c.call(|| sigv4::canonical_uri(&path, service));
        if service == "s3" {
            assert!(uri == path || (path.is_empty() && uri == "/"));
        } else {
            // No empty or dot segments left, everything escaped once.
            assert!(encoded_once(&uri, true), "{path:?} -> {uri:?}");
            let inner = uri.trim_start_matches('/').trim_end_matches('/');
            assert!(
                inner.is_empty()
                    || inner
                        .split('/')
                        .all(|s| !s.is_empty() && s != "." && s != "..")
            );
        }
        let query = c.rng.text(PIECES, 16);
        let q = c.call(|| sigv4::canonical_query(Some(&query)));
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').expect("every pair has '='");
            assert!(
                encoded_once(k, false) && encoded_once(v, false),
                "{query:?} -> {q:?}"
            );
        }
        // Canonical means stable: once more changes nothing.
        assert_eq!(sigv4::canonical_query(Some(&q)), q, "{query:?}");
        "ok"
    });
}

#[test]
fn fuzz_basic_base64() {
    run("basic-base64", |c| {
        let bytes = c.rng.bytes(64);
        let encoded = b64::encode(&bytes);
        assert_eq!(
            b64::decode(&encoded).as_deref().map(Vec::as_slice),
            Some(&bytes[..])
        );
        let text = if c.rng.one_in(2) {
            mutate(&mut c.rng, &encoded)
        } else {
            c.rng.bytes(64)
        };
        match c.call(|| b64::decode(&text)) {
            Some(d) => {
                assert!(d.len() <= text.len() * 3 / 4 + 2);
                "decoded"
            }
            None => "refused",
        }
    })
    .assert_reaches(&["decoded", "refused"]);
}
