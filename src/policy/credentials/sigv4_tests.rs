//! SigV4 re-signing checked against botocore: every vector below was printed by
//! `integration/egress/sigv4_vectors.py` (the AWS SDK for Python's signer), each request signed
//! twice at the same instant, with the placeholders the container holds and with the real pair.
//! Re-signing the placeholder's request must reproduce botocore's real signature byte for byte.

use super::*;
use crate::policy::credentials::{Binding, Secret, Vault};
use crate::spec::domains::{parse_pattern, List};

struct Vector {
    who: &'static str,
    service: &'static str,
    method: &'static str,
    url: &'static str,
    body: &'static [u8],
    headers: &'static [(&'static str, &'static str)],
}

const VECTORS: &[Vector] = &[
    Vector {
        who: "placeholder",
        service: "sts",
        method: "POST",
        url: "https://sts.amazonaws.com/",
        body: b"Action=GetCallerIdentity&Version=2011-06-15",
        headers: &[
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("x-amz-date", "20261206T120000Z"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=ward-cred-akidplaceholder0000000/20261206/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=edf81a2042daa9c82ac3f64b2ff0d1c175f48ce5335d1db0a87509ba9efcaf89"),
        ],
    },
    Vector {
        who: "real",
        service: "sts",
        method: "POST",
        url: "https://sts.amazonaws.com/",
        body: b"Action=GetCallerIdentity&Version=2011-06-15",
        headers: &[
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("x-amz-date", "20261206T120000Z"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIAREALREALREAL0001/20261206/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ddb08691f4092838cefe29f5df7b59e6477fd2eb844007244fa8202749b280a7"),
        ],
    },
    Vector {
        who: "placeholder",
        service: "s3",
        method: "PUT",
        url: "https://bucket.s3.amazonaws.com/dir/a%20b.txt",
        body: b"hello",
        headers: &[
            ("content-type", "text/plain"),
            ("x-amz-date", "20261206T120000Z"),
            ("x-amz-content-sha256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=ward-cred-akidplaceholder0000000/20261206/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=a958ae7727d3b9f23bc43775aa8d0ab9bc06166a23a759b3264c4c19cf2aacad"),
        ],
    },
    Vector {
        who: "real",
        service: "s3",
        method: "PUT",
        url: "https://bucket.s3.amazonaws.com/dir/a%20b.txt",
        body: b"hello",
        headers: &[
            ("content-type", "text/plain"),
            ("x-amz-date", "20261206T120000Z"),
            ("x-amz-content-sha256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIAREALREALREAL0001/20261206/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=b8d022cd4bb2c7c2a4e6b2624fcbf6978a421eb0879712dcb1a3523678fc02fb"),
        ],
    },
    Vector {
        who: "placeholder",
        service: "execute-api",
        method: "GET",
        url: "https://api.test/v1/./items//x%2Fy?b=2&a=1&a=0&c=sp%20ace",
        body: b"",
        headers: &[
            ("x-amz-date", "20261206T120000Z"),
            ("x-amz-security-token", "ward-cred-tokenplaceholder000000000"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=ward-cred-akidplaceholder0000000/20261206/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=cef2c591f6c8f436a0280af6d66ed2d6d9697885b11a4f8100a18cc4ab5a9e68"),
        ],
    },
    Vector {
        who: "real",
        service: "execute-api",
        method: "GET",
        url: "https://api.test/v1/./items//x%2Fy?b=2&a=1&a=0&c=sp%20ace",
        body: b"",
        headers: &[
            ("x-amz-date", "20261206T120000Z"),
            ("x-amz-security-token", "TOKENEXAMPLE"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIAREALREALREAL0001/20261206/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=ea5e8b377193b95db7f2ee2de161d64c906705e1e59444ff6132c73c2ea660ad"),
        ],
    },
];

const PH_KEY: &str = "ward-cred-akidplaceholder0000000";
const PH_SECRET: &str = "ward-cred-secretplaceholder00000000000000";
const PH_TOKEN: &str = "ward-cred-tokenplaceholder000000000";
const REAL_KEY: &str = "AKIAREALREALREAL0001";
const REAL_SECRET: &str = "real/Secret+Key/0123456789abcdefghijklmn";
const REAL_TOKEN: &str = "TOKENEXAMPLE";

fn binding(name: &str, placeholder: &str, secret: &str, host: &str) -> Binding {
    Binding {
        name: format!("credentials.envVars (AWS {name})"),
        placeholder: placeholder.into(),
        secret: Secret::new(secret.as_bytes().to_vec()),
        hosts: vec![parse_pattern(host, List::Allowed).unwrap()],
        methods: None,
        paths: None,
    }
}

fn vault(host: &str) -> Vault {
    let mut v = Vault::new(
        vec![
            binding("AWS_ACCESS_KEY_ID", PH_KEY, REAL_KEY, host),
            binding("AWS_SECRET_ACCESS_KEY", PH_SECRET, REAL_SECRET, host),
            binding("AWS_SESSION_TOKEN", PH_TOKEN, REAL_TOKEN, host),
        ],
        false,
    );
    v.aws.push(AwsPair {
        key_id: 0,
        secret_key: 1,
        session_token: Some(2),
    });
    v
}

/// (parts, host, raw path, raw query) of a vector, as an HTTP/1.1 request with its Host.
fn request(v: &Vector) -> (http::request::Parts, String, String, Option<String>) {
    let rest = v.url.strip_prefix("https://").unwrap();
    let (host, target) = rest.split_at(rest.find('/').unwrap());
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let mut b = http::Request::builder()
        .method(v.method)
        .uri(target)
        .header("host", host);
    for (k, val) in v.headers {
        b = b.header(*k, *val);
    }
    let (parts, ()) = b.body(()).unwrap().into_parts();
    (parts, host.to_string(), path, query)
}

fn sig_of(parts: &http::request::Parts) -> String {
    let a = parts.headers["authorization"].to_str().unwrap().to_string();
    a.rsplit("Signature=").next().unwrap().to_string()
}

#[test]
fn signatures_match_botocore() {
    for v in VECTORS {
        let (parts, _, path, query) = request(v);
        let value = parts.headers["authorization"].to_str().unwrap();
        let auth = parse_authorization(value).unwrap().unwrap();
        assert_eq!(auth.service, v.service);
        let hash = match parts.headers.get("x-amz-content-sha256") {
            Some(h) => h.to_str().unwrap().to_string(),
            None => body_hash(v.body),
        };
        let canon = canonical_request(
            v.method,
            &path,
            query.as_deref(),
            &parts.headers,
            None,
            &auth,
            &hash,
        )
        .unwrap();
        let secret = if v.who == "real" {
            REAL_SECRET
        } else {
            PH_SECRET
        };
        let amz = parts.headers["x-amz-date"].to_str().unwrap();
        assert_eq!(
            signature(secret.as_bytes(), &auth, amz, &canon),
            auth.signature,
            "{} {} {}: canonical request\n{canon}",
            v.who,
            v.method,
            v.url
        );
    }
}

#[test]
fn resigning_the_placeholder_request_gives_botocores_real_signature() {
    for pair in VECTORS.chunks(2) {
        let (ph, real) = (&pair[0], &pair[1]);
        let (mut parts, host, path, query) = request(ph);
        let norm = crate::spec::domains::path::normalize_path(&path);
        let view = RequestView {
            host: &host,
            port: 443,
            method: ph.method,
            path: &norm,
            query: query.as_deref(),
        };
        let v = vault(&host);
        let mut r = v.resign(&view, &path, None, &mut parts, None).unwrap();
        if r == Resigned::NeedBodyHash {
            let h = body_hash(ph.body);
            r = v.resign(&view, &path, None, &mut parts, Some(&h)).unwrap();
        }
        assert!(matches!(r, Resigned::Signed(_)), "{}: {r:?}", ph.url);
        let (want, ..) = request(real);
        assert_eq!(sig_of(&parts), sig_of(&want), "{}", ph.url);
        assert_eq!(
            parts.headers["authorization"],
            want.headers["authorization"]
        );
        if let Some(t) = want.headers.get("x-amz-security-token") {
            assert_eq!(&parts.headers["x-amz-security-token"], t);
        }
        let auth = format!("{:?}", parts.headers);
        assert!(!auth.contains(REAL_SECRET), "the secret key is never sent");
    }
}

#[test]
fn a_changed_request_or_another_host_is_refused() {
    let ph = &VECTORS[2];
    let (mut parts, host, path, query) = request(ph);
    let norm = crate::spec::domains::path::normalize_path(&path);
    let view = RequestView {
        host: &host,
        port: 443,
        method: ph.method,
        path: &norm,
        query: query.as_deref(),
    };
    // Bound elsewhere: the request is refused, nothing is injected.
    let before = parts.headers.clone();
    let e = vault("other.test")
        .resign(&view, &path, None, &mut parts, None)
        .unwrap_err();
    assert!(e.why.contains("not among its hosts"), "{e:?}");
    assert_eq!(parts.headers, before);
    // A query changed after signing: the signature no longer verifies.
    let changed = RequestView {
        query: Some("b=3&a=1&a=0&c=sp%20ace"),
        ..view
    };
    let e = vault(&host)
        .resign(&changed, &path, None, &mut parts, None)
        .unwrap_err();
    assert!(e.why.contains("does not verify"), "{e:?}");
    assert!(!e.reason().contains(REAL_SECRET) && !e.reason().contains(REAL_KEY));
}

#[test]
fn streaming_payloads_and_foreign_keys() {
    let ph = &VECTORS[2];
    let (mut parts, host, path, _) = request(ph);
    let view = RequestView {
        host: &host,
        port: 443,
        method: ph.method,
        path: "/v1/items/x%2Fy",
        query: None,
    };
    parts.headers.insert(
        "x-amz-content-sha256",
        http::HeaderValue::from_static("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    );
    let e = vault(&host)
        .resign(&view, &path, None, &mut parts, None)
        .unwrap_err();
    assert!(e.why.contains("chunk signatures"), "{e:?}");
    for signed in [
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
    ] {
        parts
            .headers
            .insert("x-amz-content-sha256", signed.parse().unwrap());
        let e = vault(&host)
            .resign(&view, &path, None, &mut parts, None)
            .unwrap_err();
        assert!(e.why.contains("chunk signatures"), "{signed}: {e:?}");
    }
    // A request signed with a key the vault does not hold is not ward's to re-sign.
    let mut other = request(&VECTORS[3]).0;
    assert_eq!(
        vault(&host).resign(&view, &path, None, &mut other, None),
        Ok(Resigned::NotSigned)
    );
    assert!(vault(&host).sign_only(1) && !vault(&host).sign_only(0));
}

#[test]
fn authorization_parsing() {
    assert!(parse_authorization("Bearer x").is_none());
    assert!(parse_authorization("AWS4-HMAC-SHA256X a").is_none());
    let bad = [
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request",
        "AWS4-HMAC-SHA256 Credential=k/2026120/r/s/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Foo=1",
    ];
    for b in bad {
        assert!(parse_authorization(b).unwrap().is_err(), "{b}");
    }
    assert_eq!(
        canonical_uri("/a/./b//c/../d%2F", "execute-api"),
        "/a/b/d%252F"
    );
    assert_eq!(canonical_uri("/a/./b", "s3"), "/a/./b");
    assert_eq!(canonical_query(Some("b=2&a=%7e&a")), "a=&a=~&b=2");
}

#[test]
fn the_secret_key_placeholder_is_never_injected() {
    let v = vault("api.test");
    let view = RequestView {
        host: "api.test",
        port: 443,
        method: "GET",
        path: "/",
        query: None,
    };
    let mut h = http::HeaderMap::new();
    h.insert("x-leak", PH_SECRET.parse().unwrap());
    let e = v.swap_request(&view, &mut h).unwrap_err();
    assert!(e.why.contains("never sent"), "{e:?}");
    // The key id's placeholder alone is an ordinary binding.
    let mut h = http::HeaderMap::new();
    h.insert("x-key", PH_KEY.parse().unwrap());
    v.swap_request(&view, &mut h).unwrap();
    assert_eq!(h["x-key"], REAL_KEY);
}

#[test]
fn an_unsigned_streaming_payload_is_re_signed_like_unsigned_payload() {
    // botocore >= 1.36 uploads to S3 as aws-chunked with a checksum trailer and no chunk
    // signatures: the literal stands for the payload hash; only the headers are signed.
    for literal in ["STREAMING-UNSIGNED-PAYLOAD-TRAILER", "UNSIGNED-PAYLOAD"] {
        let v = vault("bucket.s3.amazonaws.com");
        let b = |i: usize| &v.bindings[i];
        let (mut parts, host, path, query) = request(&VECTORS[2]);
        parts
            .headers
            .insert("x-amz-content-sha256", literal.parse().unwrap());
        let auth_of = |secret: &str, key: &str, parts: &http::request::Parts| {
            let value = parts.headers["authorization"].to_str().unwrap().to_string();
            let a = parse_authorization(&value).unwrap().unwrap();
            let a = Authorization {
                signed_headers: vec!["content-type", "host", "x-amz-content-sha256", "x-amz-date"],
                ..a
            };
            let canon =
                canonical_request("PUT", &path, None, &parts.headers, None, &a, literal).unwrap();
            let amz = parts.headers["x-amz-date"].to_str().unwrap();
            let sig = signature(secret.as_bytes(), &a, amz, &canon);
            format!(
                "{ALGORITHM} Credential={key}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={sig}",
                a.date,
                a.region,
                a.service,
                a.signed_headers.join(";")
            )
        };
        let client = auth_of(PH_SECRET, PH_KEY, &parts);
        parts
            .headers
            .insert("authorization", client.parse().unwrap());
        let want = auth_of(REAL_SECRET, REAL_KEY, &parts);
        let view = RequestView {
            host: &host,
            port: 443,
            method: "PUT",
            path: &path,
            query: query.as_deref(),
        };
        let r = v.resign(&view, &path, None, &mut parts, None);
        assert!(matches!(r, Ok(Resigned::Signed(_))), "{literal}: {r:?}");
        assert_eq!(parts.headers["authorization"], want.as_str(), "{literal}");
        assert!(b(1).placeholder.starts_with("ward-cred-"));
    }
}
