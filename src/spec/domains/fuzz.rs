//! Egress rules on generated inputs (`crate::fuzzkit`): the domain fields (`allowedDomains`,
//! `deniedDomains`, `deniedDomainReasons`, `proxyEnv`), the `http` method/path rules, and the
//! address rules of `process.interception.network` (CIDR rules, `allowUnix`, `families`,
//! `observe`), through the config field and the annotation. Properties: no panic, every call
//! within the kit's bound, every error names its field, and what is accepted decides as
//! written (an exact name or wildcard admits what it says; deny wins; http rules only allow what
//! an allow rule matches and no deny rule does; accepted paths are in normal form).

use serde_json::{json, Value};

use super::http::{RequestDecision, UNCLEAR};
use super::path::normalize;
use super::{Decision, Domains, Host, FIELD};
use crate::fuzzkit::{mutate_json, run, Rng};
use crate::spec::fuzz::{assert_names_field, placed};
use crate::spec::interception::{self, from_config};

/// Pieces that hit every branch of the pattern parser and IDNA.
const PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    "9",
    "65535",
    "65536",
    "0x",
    "-",
    "_",
    ".",
    ".",
    "..",
    "*",
    "*.",
    ":",
    ":443",
    "[",
    "]",
    "::",
    "::1",
    "ffff:",
    "%",
    "/",
    "@",
    " ",
    "\t",
    "\0",
    "\u{7f}",
    "xn--",
    "ü",
    "É",
    "。",
    "ｅ",
    "\u{200d}",
    "\u{300}",
    "ß",
    "ς",
    "\u{fffd}",
    "com",
    "co.uk",
    "github.io",
    "example",
    "127",
    "1.2.3.4",
    "0177",
    "255",
    "256",
];

fn text(rng: &mut Rng) -> String {
    if rng.one_in(20) {
        "a".repeat(rng.below(300))
    } else {
        rng.text(PIECES, 8)
    }
}

fn network_of(raw: &Value) -> interception::Network {
    from_config(raw)
        .expect("accepted")
        .and_then(|i| i.network)
        .expect("a network policy")
}

#[test]
fn fuzz_domain_fields() {
    let stats = run("domain-fields", |c| {
        let allowed: Vec<String> = (0..c.rng.below(3)).map(|_| text(&mut c.rng)).collect();
        let denied: Vec<String> = (0..c.rng.below(3)).map(|_| text(&mut c.rng)).collect();
        let mut reasons = serde_json::Map::new();
        if c.rng.one_in(4) {
            let key = if denied.is_empty() || c.rng.one_in(3) {
                text(&mut c.rng)
            } else {
                c.rng.pick(&denied).clone()
            };
            reasons.insert(key, json!(text(&mut c.rng)));
        }
        let network = json!({"allowedDomains": allowed, "deniedDomains": denied,
            "deniedDomainReasons": reasons, "proxyEnv": c.rng.one_in(2)});
        let (raw, at) = placed(&mut c.rng, &json!({ "network": network }));
        match c.call(|| from_config(&raw)) {
            Err(e) => {
                // `….network.allowedDomains[1]` (config) or `…: network.allowedDomains[1]`.
                let fields = ["allowedDomains[", "deniedDomains[", "deniedDomainReasons["];
                let field = assert_names_field(&e, &[at]);
                let rest = field[at.len()..].trim_start_matches(['.', ':', ' ']);
                assert!(fields
                    .iter()
                    .any(|f| rest.starts_with(&format!("network.{f}"))));
                "refused"
            }
            Ok(_) => {
                let d = network_of(&raw).domains(FIELD).unwrap().unwrap();
                for _ in 0..4 {
                    let name = text(&mut c.rng);
                    let port = c.rng.next() as u16;
                    c.call(|| d.decide(&name, port));
                }
                // Each accepted exact name or wildcard admits what it says, when nothing denies.
                for p in &d.allowed {
                    let only = Domains {
                        allowed: vec![p.clone()],
                        ..Default::default()
                    };
                    let allows = |name: &str, port| {
                        matches!(only.decide(name, port), Decision::Allow { .. })
                    };
                    let port = p.port.unwrap_or(1);
                    match &p.host {
                        Host::Name(n) => assert!(allows(n.as_str(), port), "{p:?}"),
                        Host::Below(b) => {
                            assert!(allows(&format!("x.{b}"), port), "{p:?}");
                            assert!(!allows(b.as_str(), port), "{p:?}");
                        }
                        Host::Ip(a) => assert!(allows(&a.to_string(), port), "{p:?}"),
                        Host::Any => panic!("`*` accepted in allowedDomains"),
                    }
                }
                "accepted"
            }
        }
    });
    stats.assert_reaches(&["accepted", "refused"]);
}

const HOSTS: &[&str] = &[
    "api.example.com",
    "*.example.com",
    "other.test:8080",
    "[::1]",
];
const METHODS: &[&str] = &["GET", "POST", "*", "get", "", "PO ST", "M-SEARCH", "\0"];
const PATHS: &[&str] = &[
    "/", "/*", "/v1", "/v1/", "/v1/*", "/v1/x*", "/a/./b", "/a//b", "/%2F", "/%66", "/a;b", "v1",
    "/a?q", "/é", "/A", "/*/b", "",
];
const TARGETS: &[&str] = &[
    "/", "/v1", "/v1/", "/v1/x", "/V1/x", "/v1/./x", "/v1/%78", "/v1%2Fx", "/a;b", "/a\\b", "/%00",
    "/v2", "/v1/x/y",
];

fn http_rule(rng: &mut Rng) -> Value {
    let mut m = json!({});
    if !rng.one_in(3) {
        let n = rng.below(3);
        m["methods"] = json!((0..n).map(|_| *rng.pick(METHODS)).collect::<Vec<_>>());
    }
    if !rng.one_in(3) {
        let n = rng.below(3);
        m["paths"] = json!((0..n).map(|_| *rng.pick(PATHS)).collect::<Vec<_>>());
    }
    m
}

#[test]
fn fuzz_http_rules() {
    let shipped: Value = serde_json::from_str(include_str!(
        "../../../spec/examples/interception-http.json"
    ))
    .expect("the example parses");
    let words: Vec<&str> = HOSTS.iter().chain(METHODS).chain(PATHS).copied().collect();
    let stats = run("http-rules", |c| {
        let mut network = if c.rng.one_in(4) {
            shipped["network"].clone()
        } else {
            let allowed: Vec<&str> = (0..c.rng.below(3)).map(|_| *c.rng.pick(HOSTS)).collect();
            let entries: Vec<Value> = (0..c.rng.below(3))
                .map(|_| {
                    let allow: Vec<Value> =
                        (0..c.rng.below(3)).map(|_| http_rule(&mut c.rng)).collect();
                    let deny: Vec<Value> =
                        (0..c.rng.below(2)).map(|_| http_rule(&mut c.rng)).collect();
                    json!({"host": c.rng.pick(HOSTS), "allow": allow, "deny": deny})
                })
                .collect();
            json!({"allowedDomains": allowed, "http": entries})
        };
        if c.rng.one_in(3) {
            mutate_json(&mut c.rng, &mut network, &words);
        }
        let (raw, at) = placed(&mut c.rng, &json!({ "network": network }));
        if let Err(e) = c.call(|| from_config(&raw)) {
            assert_names_field(&e, &[at]);
            return "refused";
        }
        // Accepted: a network policy (unless a mutation took it away) and its domain rules.
        let network = from_config(&raw).ok().flatten().and_then(|i| i.network);
        let Some(Ok(Some(d))) = network.map(|n| n.domains(FIELD)) else {
            return "no domain rules";
        };
        for e in &d.http.entries {
            for r in e.allow.iter().chain(&e.deny) {
                for p in r.paths.iter().flatten() {
                    let (super::http::PathPattern::Exact(s) | super::http::PathPattern::Below(s)) =
                        p;
                    assert_eq!(
                        normalize(s.as_str()).path,
                        *s,
                        "a path rule not in normal form"
                    );
                }
            }
        }
        for _ in 0..8 {
            let host = c
                .rng
                .pick(&["api.example.com", "a.example.com", "other.test", "::1"]);
            let port = *c.rng.pick(&[443, 8080]);
            let method = *c.rng.pick(METHODS);
            let target = normalize(c.rng.pick::<&str>(TARGETS));
            let Some(got) = c.call(|| d.http.decide(host, port, method, Some(&target))) else {
                continue;
            };
            let RequestDecision::Allow { rule } = got else {
                continue;
            };
            // Allowed: a clean request, an allow rule that matches, no deny rule that does.
            assert!(!target.quirks.any() && rule.starts_with("http["), "{rule}");
            let fold = |r: &super::http::Rule| {
                r.paths
                    .as_ref()
                    .is_none_or(|ps| ps.iter().any(|p| p.matches(&target.path, true)))
                    && r.methods
                        .as_ref()
                        .is_none_or(|m| m.iter().any(|x| x == method))
            };
            for e in &d.http.entries {
                let applies = super::destination(host).is_some_and(|h| e.host.matches(&h, port));
                assert!(
                    !applies || !e.deny.iter().any(fold),
                    "{rule}: deny must win"
                );
            }
        }
        let quirky = normalize("/v1%2Fx");
        let denied = d.http.decide("api.example.com", 443, "GET", Some(&quirky));
        assert!(denied
            .is_none_or(|r| matches!(r, RequestDecision::Deny { rule, .. } if rule == UNCLEAR)));
        "accepted"
    });
    stats.assert_reaches(&["accepted", "refused"]);
}

const RULES: &[&str] = &[
    "10.0.0.0/8:443",
    "127.0.0.1:8000-8100",
    "[::1]:8080",
    "::1",
    "10.0.0.0/33",
    "1.2.3.4:0",
    "1.2.3.4:90-80",
    "[::1",
    "0.0.0.0/0",
    "::/0",
    "1.2.3.4:65536",
    "[2001:db8::/129]:1",
    "x",
];
const UNIX: &[&str] = &[
    "/run/a.sock",
    "@metrics",
    "@",
    "/",
    "rel.sock",
    "/a\0b",
    "@\0",
];
const FAMILIES: &[&str] = &[
    "inet", "inet6", "unix", "netlink", "packet", "vsock", "ipx", "",
];
const OBSERVE: &[&str] = &["execve", "connect", "openat", "read", ""];

#[test]
fn fuzz_network_rules() {
    let shipped: Value =
        serde_json::from_str(include_str!("../../../spec/examples/interception.json"))
            .expect("the example parses");
    let words: Vec<&str> = RULES.iter().chain(UNIX).chain(FAMILIES).copied().collect();
    let stats = run("network-rules", |c| {
        let pick = |rng: &mut Rng, from: &[&str]| -> Vec<String> {
            (0..rng.below(4))
                .map(|_| rng.pick(from).to_string())
                .collect()
        };
        let mut policy = if c.rng.one_in(3) {
            shipped.clone()
        } else {
            let long = "/".to_string() + &"a".repeat(c.rng.below(120));
            let mut unix = pick(&mut c.rng, UNIX);
            unix.push(long);
            json!({"network": {"default": c.rng.pick(&["allow", "deny", "Deny"]),
                "allow": pick(&mut c.rng, RULES), "deny": pick(&mut c.rng, RULES),
                "allowUnix": unix, "families": pick(&mut c.rng, FAMILIES)},
                "observe": pick(&mut c.rng, OBSERVE)})
        };
        if c.rng.one_in(2) {
            mutate_json(&mut c.rng, &mut policy, &words);
        }
        let (raw, at) = placed(&mut c.rng, &policy);
        match c.call(|| from_config(&raw)) {
            Err(e) => {
                assert_names_field(&e, &[at]);
                "refused"
            }
            Ok(i) => {
                let Some(n) = i.and_then(|i| i.network) else {
                    return "no network";
                };
                for r in n.rules().expect("accepted rules parse") {
                    assert!(r.prefix <= if r.addr.is_ipv4() { 32 } else { 128 });
                    assert!(r.ports.0 <= r.ports.1);
                }
                for u in n.allow_unix.iter().flatten() {
                    let a = interception::address(u).expect("accepted addresses parse");
                    assert!(a.len() <= interception::PATH_MAX);
                }
                "accepted"
            }
        }
    });
    stats.assert_reaches(&["accepted", "refused"]);
}
