//! The `http` rules: parsing and every refusal naming its entry, and the request decision over
//! the normalised path (the path tricks, method case, quirks, deny wins).

use serde_json::json;

use super::*;
use crate::spec::domains::FIELD;
use crate::spec::interception::{from_config, Network};

fn net(v: serde_json::Value) -> Network {
    serde_json::from_value(v).expect("network parses")
}

fn rules(v: serde_json::Value) -> HttpRules {
    net(v)
        .domains(FIELD)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("has domain rules")
        .http
}

fn error(v: serde_json::Value) -> String {
    match net(v.clone()).domains(FIELD) {
        Err(e) => e.to_string(),
        Ok(d) => panic!("{v} accepted as {d:?}"),
    }
}

/// The example: POST to messages (and below), GET anywhere, files denied.
fn api() -> HttpRules {
    rules(json!({
        "allowedDomains": ["api.example.com", "other.example.com"],
        "http": [{
            "host": "api.example.com",
            "allow": [
                {"methods": ["POST"], "paths": ["/v1/messages", "/v1/messages/*"]},
                {"methods": ["GET"], "paths": ["/*"]}
            ],
            "deny": [{"paths": ["/v1/files", "/v1/files/*"]}]
        }]
    }))
}

fn decide(r: &HttpRules, method: &str, target: &str) -> Option<RequestDecision> {
    r.decide(
        "api.example.com",
        443,
        method,
        Some(&path::normalize(target)),
    )
}

fn allowed(r: &HttpRules, method: &str, target: &str) -> bool {
    matches!(
        decide(r, method, target),
        Some(RequestDecision::Allow { .. })
    )
}

#[test]
fn allow_rules_by_method_and_path() {
    let r = api();
    assert_eq!(
        decide(&r, "POST", "/v1/messages"),
        Some(RequestDecision::Allow {
            rule: "http[0].allow[0]".into()
        })
    );
    assert!(allowed(&r, "POST", "/v1/messages/abc/def?x=1"));
    assert!(allowed(&r, "POST", "/v1/messages/"));
    assert!(!allowed(&r, "POST", "/v1/messagesX"));
    assert!(!allowed(&r, "POST", "/v1"));
    assert!(!allowed(&r, "PUT", "/v1/messages"));
    assert!(allowed(&r, "GET", "/anything/at/all"));
    assert!(allowed(&r, "GET", "/"));
    // Another host, or the same name on a host without rules: not judged here.
    assert_eq!(
        r.decide(
            "other.example.com",
            443,
            "DELETE",
            Some(&path::normalize("/"))
        ),
        None
    );
    assert!(r.applies("API.example.com.", 80));
    assert!(!r.applies("www.api.example.com", 443));
}

#[test]
fn deny_wins_and_path_tricks_are_one_path() {
    let r = api();
    for t in [
        "/v1/files",
        "/v1/./files",
        "/v1//files",
        "/v1/%66iles",
        "/v1/x/%2e%2e/files",
        "/v1/messages/../files",
        "/v1/files/123",
        "/V1/FILES",
    ] {
        match decide(&r, "GET", t) {
            Some(RequestDecision::Deny { rule, why }) => {
                assert_eq!(rule, "http[0].deny[0]", "{t}");
                assert!(why.starts_with("GET /"), "{t}: {why}");
                assert!(!why.contains('?'), "{why}");
            }
            other => panic!("{t}: {other:?}"),
        }
    }
    // POST /v1/files: denied (deny wins; it is not allowed either).
    assert!(matches!(
        decide(&r, "POST", "/v1/files"),
        Some(RequestDecision::Deny { rule, .. }) if rule == "http[0].deny[0]"
    ));
    // Allow compares case exactly: /V1/messages is not /v1/messages.
    assert!(!allowed(&r, "POST", "/V1/messages"));
}

#[test]
fn methods_and_quirks_the_server_might_read_otherwise_are_refused() {
    let r = api();
    for m in ["get", "Get", "pOST", "G E"] {
        match decide(&r, m, "/v1/messages") {
            Some(RequestDecision::Deny { rule, .. }) => assert_eq!(rule, UNCLEAR, "{m}"),
            other => panic!("{m}: {other:?}"),
        }
    }
    for t in [
        "/v1/messages%2F..%2Ffiles",
        "/v1/messages/%2f",
        "/v1/messages/a%5Cb",
        "/v1/messages\\..\\files",
        "/v1/messages/..;/files",
        "/v1/messages/%00",
    ] {
        match decide(&r, "POST", t) {
            Some(RequestDecision::Deny { rule, why }) => {
                assert_eq!(rule, UNCLEAR, "{t}");
                assert!(why.contains("servers read differently"), "{why}");
            }
            other => panic!("{t}: {other:?}"),
        }
    }
    // No path (CONNECT, OPTIONS *): denied.
    assert!(matches!(
        r.decide("api.example.com", 443, "CONNECT", None),
        Some(RequestDecision::Deny { rule, .. }) if rule == NOT_ALLOWED
    ));
    // Nothing allows DELETE: the denial names the host's entry.
    match decide(&r, "DELETE", "/v1/messages") {
        Some(RequestDecision::Deny { rule, why }) => {
            assert_eq!(rule, NOT_ALLOWED);
            assert!(why.contains("http[0] \"api.example.com\""), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_entry_for_a_host_applies_and_ports_narrow() {
    let r = rules(json!({
        "allowedDomains": ["*.example.com"],
        "http": [
            {"host": "*.example.com", "allow": [{"methods": ["GET"]}]},
            {"host": "api.example.com:443", "allow": [{"methods": ["POST"], "paths": ["/v1/*"]}],
             "deny": [{"methods": ["DELETE"]}]},
            {"host": "static.example.com", "allow": [{"methods": ["*"], "paths": ["/*"]}]},
            {"host": "closed.example.com", "allow": []}
        ]
    }));
    let at = |h: &str, port: u16, m: &str, p: &str| r.decide(h, port, m, Some(&path::normalize(p)));
    let ok = |d: Option<RequestDecision>| matches!(d, Some(RequestDecision::Allow { .. }));
    assert!(ok(at("api.example.com", 443, "GET", "/x")));
    assert!(ok(at("api.example.com", 443, "POST", "/v1/m")));
    assert!(
        !ok(at("api.example.com", 80, "POST", "/v1/m")),
        "port 80: only *.example.com"
    );
    assert!(!ok(at("api.example.com", 443, "DELETE", "/v1/m")));
    assert!(ok(at("static.example.com", 80, "DELETE", "/v1/m")));
    assert!(!ok(at("closed.example.com", 80, "POST", "/")));
    assert!(
        ok(at("closed.example.com", 80, "GET", "/")),
        "the wildcard entry allows GET"
    );
}

#[test]
fn bad_rules_are_refused_naming_the_entry() {
    let with = |http: serde_json::Value| json!({"allowedDomains": ["api.example.com", "*.example.org"], "http": http});
    for (http, field, word) in [
        (
            json!([{"host": "api.example.com"}, {"host": "x.example.net"}]),
            "http[1].host",
            "no allowedDomains entry",
        ),
        (json!([{"host": "*"}]), "http[0].host", "every name"),
        (
            json!([{"host": "https://api.example.com/"}]),
            "http[0].host",
            "not a URL",
        ),
        (
            json!([{"host": "api.example.com", "allow": [{}]}]),
            "http[0].allow[0]",
            "methods, paths or both",
        ),
        (
            json!([{"host": "api.example.com", "allow": [{"methods": ["get"]}]}]),
            "http[0].allow[0].methods[0]",
            "upper case",
        ),
        (
            json!([{"host": "api.example.com", "deny": [{"methods": ["PO ST"]}]}]),
            "http[0].deny[0].methods[0]",
            "not an HTTP method",
        ),
        (
            json!([{"host": "api.example.com", "allow": [{"methods": []}]}]),
            "http[0].allow[0].methods",
            "empty",
        ),
        (
            json!([{"host": "api.example.com", "allow": [{"methods": ["*", "GET"]}]}]),
            "http[0].allow[0].methods",
            "stands alone",
        ),
        (
            json!([{"host": "api.example.com", "allow": [{"paths": []}]}]),
            "http[0].allow[0].paths",
            "empty",
        ),
        (
            json!([{"host": "api.example.com", "allow": [{"paths": ["/a", "/b", "v1/x"]}]}]),
            "http[0].allow[0].paths[2]",
            "starts with /",
        ),
        (
            json!([{"host": "api.example.com", "allow": [{"paths": ["/v1/*/x"]}]}]),
            "http[0].allow[0].paths[0]",
            "last segment",
        ),
        (
            json!([{"host": "api.example.com", "allow": [{"paths": ["/v1/x*"]}]}]),
            "http[0].allow[0].paths[0]",
            "last segment",
        ),
        (
            json!([{"host": "api.example.com", "allow": [{"paths": ["/v1/./files"]}]}]),
            "http[0].allow[0].paths[0]",
            "write \"/v1/files\"",
        ),
        (
            json!([{"host": "api.example.com", "allow": [{"paths": ["/v1//files/*"]}]}]),
            "http[0].allow[0].paths[0]",
            "write \"/v1/files/*\"",
        ),
        (
            json!([{"host": "api.example.com", "deny": [{"paths": ["/v1/%66iles"]}]}]),
            "http[0].deny[0].paths[0]",
            "normal form",
        ),
        (
            json!([{"host": "api.example.com", "deny": [{"paths": ["/a%2Fb"]}]}]),
            "http[0].deny[0].paths[0]",
            "encoded separator",
        ),
        (
            json!([{"host": "api.example.com", "deny": [{"paths": ["/a?x=1"]}]}]),
            "http[0].deny[0].paths[0]",
            "query",
        ),
    ] {
        let e = error(with(http.clone()));
        assert!(
            e.contains(&format!("{FIELD}.{field}")) && e.contains(word),
            "{http}: {e}"
        );
    }
    // Unknown keys are refused by the parser, naming them.
    let raw = json!({"process": {"interception": {"network": {
        "allowedDomains": ["a.example"], "http": [{"host": "a.example", "alow": []}]}}}});
    assert!(from_config(&raw).unwrap_err().to_string().contains("alow"));
    // http without allowedDomains.
    let e = error(json!({"http": [{"host": "a.example"}]}));
    assert!(
        e.contains(&format!("{FIELD}.http")) && e.contains("needs allowedDomains"),
        "{e}"
    );
    // A wildcard host overlapping an allowed wildcard is fine, as is a name below one.
    rules(with(
        json!([{"host": "*.a.example.org"}, {"host": "b.example.org:8443"}]),
    ));
}

#[test]
fn path_patterns_in_normal_form_are_accepted() {
    for (p, want) in [
        ("/", PathPattern::Exact("/".into())),
        ("/*", PathPattern::Below("/".into())),
        ("/v1/messages", PathPattern::Exact("/v1/messages".into())),
        ("/v1/messages/", PathPattern::Exact("/v1/messages/".into())),
        ("/v1/messages/*", PathPattern::Below("/v1/messages/".into())),
        ("/a%20b/~c", PathPattern::Exact("/a%20b/~c".into())),
    ] {
        assert_eq!(parse_path(p), Ok(want), "{p}");
    }
}

#[test]
fn the_http_example_is_accepted_and_decides_as_documented() {
    let example: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../spec/examples/interception-http.json"
    ))
    .unwrap();
    let raw = json!({"process": {"interception": example}});
    let n = from_config(&raw).unwrap().unwrap().network.unwrap();
    let r = n.domains(FIELD).unwrap().unwrap().http;
    let at = |m: &str, p: &str| r.decide("api.example.com", 443, m, Some(&path::normalize(p)));
    assert!(matches!(
        at("POST", "/v1/messages"),
        Some(RequestDecision::Allow { .. })
    ));
    assert!(matches!(
        at("HEAD", "/v1/models/x"),
        Some(RequestDecision::Allow { .. })
    ));
    assert!(matches!(
        at("POST", "/v1/%66iles"),
        Some(RequestDecision::Deny { .. })
    ));
    assert!(matches!(
        at("GET", "/v1/files/1"),
        Some(RequestDecision::Deny { .. })
    ));
    assert_eq!(
        r.decide("pypi.org", 443, "GET", Some(&path::normalize("/"))),
        None
    );
}
