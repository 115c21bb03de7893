//! spec/interception.schema.json against the examples and the parser: both examples validate,
//! the validator rejects what the schema forbids, and the schema never refuses an entry ward
//! accepts (it is looser: IDNA, public suffixes and port ranges are the parser's).

use regex::Regex;
use serde_json::{json, Value};

use crate::spec::schema_check::validate;

use super::{parse_pattern, List};

fn schema() -> Value {
    serde_json::from_str(include_str!("../../../spec/interception.schema.json"))
        .expect("the schema is JSON")
}

fn check(doc: &Value) -> Vec<String> {
    let s = schema();
    validate(&s, &s, doc, "$")
}

#[test]
fn both_examples_validate() {
    for (name, text) in [
        (
            "interception.json",
            include_str!("../../../spec/examples/interception.json"),
        ),
        (
            "interception-domains.json",
            include_str!("../../../spec/examples/interception-domains.json"),
        ),
        (
            "interception-http.json",
            include_str!("../../../spec/examples/interception-http.json"),
        ),
    ] {
        let doc: Value = serde_json::from_str(text).expect("example is JSON");
        let errors = check(&doc);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn the_schema_refuses_what_it_can_see_is_wrong() {
    for (doc, word) in [
        (
            json!({"network": {"allowedDomains": ["*"]}}),
            "allowedDomains[0]",
        ),
        (
            json!({"network": {"allowedDomains": ["ok.example", "ex*ample.com"]}}),
            "allowedDomains[1]",
        ),
        (
            json!({"network": {"allowedDomains": ["example.com:0"]}}),
            "allowedDomains[0]",
        ),
        (
            json!({"network": {"allowedDomains": ["::1"]}}),
            "allowedDomains[0]",
        ),
        (
            json!({"network": {"allowedDomains": ["https://example.com"]}}),
            "allowedDomains[0]",
        ),
        (
            json!({"network": {"deniedDomains": ["a.*.example"]}}),
            "deniedDomains[0]",
        ),
        (
            json!({"network": {"allowedDomains": "example.com"}}),
            "allowedDomains",
        ),
        (
            json!({"network": {"deniedDomainReasons": {"a.example": ""}}}),
            "a.example",
        ),
        (
            json!({"network": {"deniedDomainReasons": {"a.example": "two\nlines"}}}),
            "a.example",
        ),
        (json!({"network": {"proxyEnv": "yes"}}), "proxyEnv"),
        (
            json!({"network": {"allowedDomain": []}}),
            "unexpected allowedDomain",
        ),
    ] {
        let errors = check(&doc);
        assert!(errors.iter().any(|e| e.contains(word)), "{doc}: {errors:?}");
    }
    assert!(check(&json!({"network": {"deniedDomains": ["*", "*:22", "*.com"]}})).is_empty());
}

/// Every entry the parser accepts, the schema accepts too (an editor never flags a config
/// that ward runs).
#[test]
fn the_schema_accepts_every_entry_the_parser_accepts() {
    let s = schema();
    let allowed = Regex::new(s["$defs"]["allowedDomain"]["pattern"].as_str().unwrap()).unwrap();
    let denied = Regex::new(s["$defs"]["deniedDomain"]["pattern"].as_str().unwrap()).unwrap();
    let pieces = [
        "a", "Z", "0", "1", "9", "443", "65535", ".", "*", "*.", ":", "[", "]", "::", "::1",
        "ffff:", "-", "_", "ü", "É", "。", "ｅ", "xn--", "com", "co.uk", "example", "127",
        "1.2.3.4", " ", "%", "/",
    ];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut seen = 0;
    for _ in 0..50_000 {
        let text: String = (0..1 + next(7))
            .map(|_| pieces[next(pieces.len())])
            .collect();
        if parse_pattern(&text, List::Allowed).is_ok() {
            seen += 1;
            assert!(allowed.is_match(&text), "allowedDomains {text:?}");
        }
        if parse_pattern(&text, List::Denied).is_ok() {
            assert!(denied.is_match(&text), "deniedDomains {text:?}");
        }
    }
    assert!(seen > 1000, "only {seen} accepted entries generated");
}

#[test]
fn the_schema_refuses_bad_http_rules_and_accepts_what_the_parser_does() {
    let entry = |rule: Value| {
        json!({"network": {"allowedDomains": ["a.example"],
        "http": [{"host": "a.example", "allow": [rule]}]}})
    };
    for (doc, word) in [
        (entry(json!({})), "allow[0]: fewer than minProperties"),
        (
            entry(json!({"methods": []})),
            "methods: fewer than minItems",
        ),
        (entry(json!({"methods": ["get"]})), "methods[0]"),
        (entry(json!({"paths": ["v1"]})), "paths[0]"),
        (entry(json!({"paths": ["/v1/*/x"]})), "paths[0]"),
        (entry(json!({"paths": ["/v1?x"]})), "paths[0]"),
        (entry(json!({"path": ["/v1"]})), "unexpected path"),
        (
            json!({"network": {"http": [{"allow": []}]}}),
            "http[0]: missing host",
        ),
        (
            json!({"network": {"http": [{"host": "*"}]}}),
            "http[0].host",
        ),
    ] {
        let errors = check(&doc);
        assert!(errors.iter().any(|e| e.contains(word)), "{doc}: {errors:?}");
    }
    let s = schema();
    let rule = &s["$defs"]["httpRule"]["properties"];
    let path = Regex::new(rule["paths"]["items"]["pattern"].as_str().unwrap()).unwrap();
    let method = Regex::new(rule["methods"]["items"]["pattern"].as_str().unwrap()).unwrap();
    let pieces = [
        "/", "*", "/*", "a", "Z", "0", ".", "..", "%2F", "%66", "%20", "?", ";", "~", "-", "é",
        "\\", " ", "GET", "get", "!", "|",
    ];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let (mut paths, mut methods) = (0, 0);
    for _ in 0..50_000 {
        let text: String = (0..1 + next(6))
            .map(|_| pieces[next(pieces.len())])
            .collect();
        if super::http::parse_path(&text).is_ok() {
            paths += 1;
            assert!(path.is_match(&text), "path {text:?}");
        }
        let doc = entry(json!({"methods": [text.clone()]}));
        let n: crate::spec::interception::Network =
            serde_json::from_value(doc["network"].clone()).unwrap();
        if n.domains("t").is_ok() {
            methods += 1;
            assert!(method.is_match(&text) || text == "*", "method {text:?}");
        }
    }
    assert!(
        paths > 500 && methods > 100,
        "{paths} paths, {methods} methods"
    );
}
