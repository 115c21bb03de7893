//! `credentials` on generated inputs (`crate::fuzzkit`): entries built from valid and broken
//! pieces (env var names, modes, `extract` regexes, injectHosts, methods, paths, srt's refused
//! fields, awsPairs, sigv4) and structure-aware mutations of the shipped example, through the
//! config field and the annotation. Properties: no panic, every call within the kit's bound
//! (a regex is compiled here), every error names its field under `credentials`, and an
//! accepted block holds what `compile` promises (names, absolute clean paths, a group 1, hosts),
//! its extract spans inside the value, ordered and non-empty.

use serde_json::{json, Value};

use super::{compile_extract, spans, Source};
use crate::fuzzkit::{mutate_json, run, Rng};
use crate::spec::fuzz::{assert_names_field, placed};
use crate::spec::interception::from_config;

const NAMES: &[&str] = &[
    "TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "",
    "A=B",
    "\0",
];
const MODES: &[&str] = &["mask", "deny", "Mask", ""];
const EXTRACTS: &[&str] = &[
    "token=(\\S+)",
    "(?m)^\\s*password\\s+(\\S+)",
    "no group",
    "(",
    "(a)|(b)",
    "()",
    "(\\w{100}){100}",
    "(?i)(.*)",
    "[\\x00-\\xff](x)",
];
const HOSTS: &[&str] = &[
    "api.example.com",
    "*.corp.example:443",
    "other.test",
    "*",
    "[::1]",
];
const PATHS: &[&str] = &[
    "/root/.netrc",
    "/a/b",
    "rel",
    "/a/../b",
    "/",
    "/a\0",
    "//x//y/",
    "/./x",
    "",
];

fn some(rng: &mut Rng, from: &[&str]) -> Vec<String> {
    (0..rng.below(3))
        .map(|_| rng.pick(from).to_string())
        .collect()
}

/// One envVars or files entry: each field present or not, valid or not.
fn entry(rng: &mut Rng, key: &str, values: &[&str]) -> Value {
    let mut e = json!({ key: rng.pick(values) });
    if !rng.one_in(6) {
        e["mode"] = json!(rng.pick(MODES));
    }
    if rng.one_in(3) {
        e["extract"] = if rng.one_in(20) {
            json!(format!("({})", "a".repeat(5000)))
        } else {
            json!(rng.pick(EXTRACTS))
        };
    }
    for (field, from) in [
        ("injectHosts", HOSTS),
        ("methods", &["GET", "POST", "*", "get"][..]),
        ("paths", &["/v1", "/v1/*", "v1", "/a//b"][..]),
    ] {
        if rng.one_in(4) {
            e[field] = json!(some(rng, from));
        }
    }
    if rng.one_in(5) {
        e["onExtractNoMatch"] = json!(rng.pick(&["warn", "deny", "error", "ignore"]));
    }
    if rng.one_in(20) {
        e[*rng.pick(&["decode", "maskClaims", "maskDuplicates"])] = json!("jwt");
    }
    e
}

fn credentials(rng: &mut Rng) -> Value {
    let env: Vec<Value> = (0..rng.below(4))
        .map(|_| entry(rng, "name", NAMES))
        .collect();
    let files: Vec<Value> = (0..rng.below(3))
        .map(|_| entry(rng, "path", PATHS))
        .collect();
    let mut c = json!({"envVars": env, "files": files,
        "allowPlaintextInject": rng.one_in(2)});
    if rng.one_in(4) {
        let mut pair = json!({"accessKeyIdVar": rng.pick(NAMES),
            "secretAccessKeyVar": rng.pick(NAMES)});
        if rng.one_in(2) {
            pair["sessionTokenVar"] = json!(rng.pick(NAMES));
        }
        c["awsPairs"] = json!([pair]);
    }
    if rng.one_in(6) {
        c["sigv4"] = json!({"streaming": rng.pick(&["deny", "passthrough"])});
    }
    c
}

#[test]
fn fuzz_credentials() {
    let shipped: Value =
        serde_json::from_str(include_str!("../../../spec/examples/credentials.json"))
            .expect("the example parses");
    let words: Vec<&str> = NAMES
        .iter()
        .chain(MODES)
        .chain(EXTRACTS)
        .chain(HOSTS)
        .chain(PATHS)
        .copied()
        .collect();
    let stats = run("credentials", |c| {
        let mut policy = if c.rng.one_in(3) {
            shipped.clone()
        } else {
            let allowed = some(&mut c.rng, &HOSTS[..3]);
            json!({"network": {"allowedDomains": allowed},
                   "credentials": credentials(&mut c.rng)})
        };
        if c.rng.one_in(3) {
            mutate_json(&mut c.rng, &mut policy, &words);
        }
        let (raw, at) = placed(&mut c.rng, &policy);
        let compiled = c.call(|| {
            let i = from_config(&raw)?;
            match i {
                Some(i) => i.compiled_credentials(&raw),
                None => Ok(None),
            }
        });
        let compiled = match compiled {
            Err(e) => {
                assert_names_field(&e, &[at]);
                return "refused";
            }
            Ok(None) => return "none",
            Ok(Some(compiled)) => compiled,
        };
        for e in &compiled.entries {
            assert!(e.field.starts_with(at), "{}", e.field);
            match &e.source {
                Source::Env(n) => assert!(!n.is_empty() && !n.contains(['=', '\0'])),
                Source::File(p) => {
                    use std::path::Component::{Normal, RootDir};
                    assert!(p.is_absolute() && p.parent().is_some(), "{p:?}");
                    assert!(p.components().all(|c| matches!(c, RootDir | Normal(_))));
                }
            }
            assert!(!e.hosts.is_empty(), "{}", e.field);
            if let Some(re) = &e.extract {
                assert!(re.captures_len() >= 2);
                let value = c.rng.bytes(200);
                let found = c.call(|| spans(re, &value));
                let mut end = 0;
                for s in found.iter().flatten() {
                    assert!(s.start >= end && s.start < s.end && s.end <= value.len());
                    end = s.end;
                }
            }
        }
        "accepted"
    });
    stats.assert_reaches(&["accepted", "refused"]);
}

/// `extract` alone, on random pattern text: compiled or refused with a reason, in bounded time
/// (a size limit, not the pattern's length, bounds what it may cost).
#[test]
fn fuzz_credentials_extract() {
    const PIECES: &[&str] = &[
        "(", ")", "\\", "S", "+", "*", "?", "{", "}", "1000", ",", "[", "]", "^", "$", "|", "a",
        ".", "(?", "P<n>", "\\w", "\\d", "\\p{L}", "é", "\0",
    ];
    run("credentials-extract", |c| {
        // Half of them around a group, so that both outcomes are common.
        let re = if c.rng.one_in(2) {
            let (a, b, z) = (
                c.rng.text(PIECES, 6),
                c.rng.text(PIECES, 10),
                c.rng.text(PIECES, 6),
            );
            format!("{a}({b}){z}")
        } else {
            c.rng.text(PIECES, 40)
        };
        match c.call(|| compile_extract(&re)) {
            Ok(r) => {
                assert!(r.captures_len() >= 2, "{re:?}");
                "compiled"
            }
            Err(why) => {
                assert!(!why.is_empty());
                "refused"
            }
        }
    })
    .assert_reaches(&["compiled", "refused"]);
}
