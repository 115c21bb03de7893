use serde_json::{json, Value};

use super::*;
use crate::spec::interception::from_config;

fn policy(credentials: Value) -> Value {
    json!({"process": {"interception": {
        "network": {"allowedDomains": ["api.example.com", "*.corp.example:443"]},
        "credentials": credentials}}})
}

fn compiled(credentials: Value) -> Result<Compiled> {
    let raw = policy(credentials);
    let i = from_config(&raw)?.expect("a policy");
    Ok(i.compiled_credentials(&raw)?.unwrap_or_default())
}

fn refused(credentials: Value) -> String {
    compiled(credentials).unwrap_err().to_string()
}

#[test]
fn the_spec_example_is_accepted() {
    let example: Value =
        serde_json::from_str(include_str!("../../../spec/examples/credentials.json")).unwrap();
    let raw = json!({"process": {"interception": example}});
    let i = from_config(&raw).unwrap().unwrap();
    let c = i.compiled_credentials(&raw).unwrap().unwrap();
    assert_eq!(c.entries.len(), 3);
    assert_eq!(
        c.entries[0].label,
        "credentials.envVars[0] (ANTHROPIC_API_KEY)"
    );
    assert_eq!(
        c.entries[0].methods.as_deref(),
        Some(&["POST".to_string()][..])
    );
    assert_eq!(c.entries[0].hosts.len(), 1);
}

#[test]
fn defaults_inject_to_every_allowed_domain_any_method_any_path() {
    let c = compiled(json!({"envVars": [{"name": "TOKEN", "mode": "mask"}]})).unwrap();
    let e = &c.entries[0];
    assert_eq!(e.source, Source::Env("TOKEN".into()));
    assert_eq!(e.mode, Mode::Mask);
    let hosts: Vec<&str> = e.hosts.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(hosts, ["api.example.com", "*.corp.example:443"]);
    assert!(e.methods.is_none() && e.paths.is_none() && e.extract.is_none());
    assert!(!c.allow_plaintext_inject);
    assert_eq!(c.on_extract_no_match, NoMatch::Warn);
}

#[test]
fn methods_and_paths_read_as_http_rules_do() {
    let c = compiled(json!({"files": [{"path": "/root/.netrc", "mode": "mask",
        "injectHosts": ["git.corp.example"], "methods": ["*"], "paths": ["/v1/*"]}]}))
    .unwrap();
    let e = &c.entries[0];
    assert_eq!(e.source, Source::File("/root/.netrc".into()));
    assert!(e.methods.is_none(), "* is any method");
    assert_eq!(e.paths, Some(vec![PathPattern::Below("/v1/".into())]));
    assert_eq!(e.label, "credentials.files[0] (/root/.netrc)");
}

#[test]
fn errors_name_the_field() {
    let at = "process.interception.credentials";
    for (doc, field, why) in [
        (
            json!({"envVars": [{"name": "A", "mode": "mask", "extract": "a(b"}]}),
            format!("{at}.envVars[0].extract"),
            "is not a regex",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask"},
                               {"name": "B", "mode": "mask", "extract": "token=\\S+"}]}),
            format!("{at}.envVars[1].extract"),
            "has no group",
        ),
        (
            json!({"envVars": [{"name": "A"}]}),
            format!("{at}.envVars[0].mode"),
            "missing",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "hide"}]}),
            "process.interception: credentials.envVars[0].mode".to_string(),
            "unknown variant",
        ),
        (
            json!({"envVars": [{"name": "A=B", "mode": "mask"}]}),
            format!("{at}.envVars[0].name"),
            "not an environment variable name",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask"}, {"name": "A", "mode": "deny"}]}),
            format!("{at}.envVars[1].name"),
            "already envVars[0]",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "deny", "injectHosts": ["api.example.com"]}]}),
            format!("{at}.envVars[0].injectHosts"),
            "only with \"mode\": \"mask\"",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask", "injectHosts": ["evil.example"]}]}),
            format!("{at}.envVars[0].injectHosts[0]"),
            "no allowedDomains entry allows this host",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask", "injectHosts": ["*"]}]}),
            format!("{at}.envVars[0].injectHosts[0]"),
            "would allow every name",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask", "injectHosts": []}]}),
            format!("{at}.envVars[0].injectHosts"),
            "empty",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask", "methods": ["post"]}]}),
            format!("{at}.envVars[0].methods[0]"),
            "upper case",
        ),
        (
            json!({"files": [{"path": "/a", "mode": "mask", "paths": ["/v1/./x"]}]}),
            format!("{at}.files[0].paths[0]"),
            "not in normal form",
        ),
        (
            json!({"files": [{"path": "relative/x", "mode": "mask"}]}),
            format!("{at}.files[0].path"),
            "not an absolute path",
        ),
        (
            json!({"files": [{"path": "/etc/../x", "mode": "mask"}]}),
            format!("{at}.files[0].path"),
            ". or ..",
        ),
        (
            json!({"files": [{"path": "/x", "mode": "mask"}, {"path": "//x/", "mode": "deny"}]}),
            format!("{at}.files[1].path"),
            "already files[0]",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask", "inject": []}]}),
            "process.interception: credentials.envVars[0]".to_string(),
            "unknown field",
        ),
    ] {
        let e = refused(doc.clone());
        assert!(e.contains(&field) && e.contains(why), "{doc}: {e}");
    }
}

#[test]
fn credentials_need_allowed_domains_and_every_byte_through_the_proxy() {
    let creds = json!({"envVars": [{"name": "A", "mode": "mask"}]});
    for (network, field, why) in [
        (
            Value::Null,
            "process.interception.credentials",
            "needs allowedDomains",
        ),
        (
            json!({"deniedDomains": ["evil.example"]}),
            "process.interception.credentials",
            "needs allowedDomains",
        ),
        (
            json!({"default": "deny", "allow": ["10.0.0.0/8"]}),
            "process.interception.credentials",
            "needs allowedDomains",
        ),
        (
            json!({"allowedDomains": ["a.example"], "allow": ["127.0.0.1", "10.0.0.0/8:443"]}),
            "process.interception.network.allow[1]",
            "lets bytes past ward's proxy",
        ),
        (
            json!({"allowedDomains": ["a.example"], "allow": ["0.0.0.0/0"]}),
            "process.interception.network.allow[0]",
            "denied by default for names and addresses",
        ),
    ] {
        let mut i = json!({"credentials": creds});
        if !network.is_null() {
            i["network"] = network.clone();
        }
        let raw = json!({"process": {"interception": i}});
        let e = from_config(&raw).unwrap_err().to_string();
        assert!(e.contains(field) && e.contains(why), "{network}: {e}");
    }
    // Loopback stays the container's own.
    let raw = json!({"process": {"interception": {"credentials": creds,
        "network": {"allowedDomains": ["a.example"], "allow": ["127.0.0.1:8080", "[::1]"]}}}});
    from_config(&raw).unwrap();
    // http rules are held to the same rule.
    let raw = json!({"process": {"interception": {"network": {"allowedDomains": ["a.example"],
        "allow": ["192.0.2.1"], "http": [{"host": "a.example", "allow": [{"methods": ["GET"]}]}]}}}});
    let e = from_config(&raw).unwrap_err().to_string();
    assert!(
        e.contains("network.allow[0]") && e.contains("with http rules"),
        "{e}"
    );
    // Without credentials or http rules an IP rule beside domains is as before.
    let raw = json!({"process": {"interception": {"network": {"allowedDomains": ["a.example"],
        "allow": ["192.0.2.1"]}}}});
    from_config(&raw).unwrap();
}

#[test]
fn errors_from_the_annotation_name_it() {
    let raw = json!({"annotations": {"org.ward.interception": json!({
        "network": {"allowedDomains": ["a.example"]},
        "credentials": {"envVars": [{"name": "A", "mode": "mask", "extract": "x"}]}}).to_string()}});
    let e = from_config(&raw).unwrap_err().to_string();
    assert!(
        e.contains("annotations.org.ward.interception: credentials.envVars[0].extract"),
        "{e}"
    );
}

#[test]
fn extract_spans_are_group_one_and_never_empty() {
    let re = compile_extract(r"(?m)^password (\S*)$").unwrap();
    let text = b"machine a\npassword s3cret\nmachine b\npassword \npassword t0ken\n";
    let got: Vec<&[u8]> = spans(&re, text)
        .unwrap()
        .into_iter()
        .map(|r| &text[r])
        .collect();
    assert_eq!(got, [&b"s3cret"[..], b"t0ken"]);
    assert!(spans(&re, b"nothing here").is_none());
    let optional = compile_extract("a(b)?").unwrap();
    assert!(
        spans(&optional, b"a a").is_none(),
        "an unmatched group is no span"
    );
}

#[test]
fn an_empty_credentials_block_is_nothing() {
    let c = compiled(json!({})).unwrap();
    assert!(c.is_empty());
    let raw = json!({"process": {"interception": {"credentials": {"envVars": []}}}});
    assert!(from_config(&raw)
        .unwrap()
        .unwrap()
        .compiled_credentials(&raw)
        .unwrap()
        .is_none());
}

mod schema {
    use regex::Regex;
    use serde_json::{json, Value};

    use crate::spec::schema_check::validate;

    fn schema() -> Value {
        serde_json::from_str(include_str!("../../../spec/interception.schema.json")).unwrap()
    }

    fn check(doc: &Value) -> Vec<String> {
        let s = schema();
        validate(&s, &s, doc, "$")
    }

    #[test]
    fn the_example_validates_and_wrong_entries_are_flagged() {
        let example: Value =
            serde_json::from_str(include_str!("../../../spec/examples/credentials.json")).unwrap();
        assert!(check(&example).is_empty(), "{:?}", check(&example));
        let env = |e: Value| json!({"credentials": {"envVars": [e]}});
        for (doc, word) in [
            (env(json!({"name": "A"})), "envVars[0]: missing mode"),
            (env(json!({"name": "A", "mode": "hide"})), "envVars[0].mode"),
            (
                env(json!({"name": "A=B", "mode": "mask"})),
                "envVars[0].name",
            ),
            (
                env(json!({"name": "A", "mode": "mask", "injectHosts": []})),
                "injectHosts: fewer than minItems",
            ),
            (
                env(json!({"name": "A", "mode": "mask", "injectHosts": ["*"]})),
                "injectHosts[0]",
            ),
            (
                env(json!({"name": "A", "mode": "mask", "methods": ["get"]})),
                "methods[0]",
            ),
            (
                env(json!({"name": "A", "mode": "mask", "paths": ["v1"]})),
                "paths[0]",
            ),
            (
                env(json!({"name": "A", "mode": "mask", "inject": []})),
                "unexpected inject",
            ),
            (
                json!({"credentials": {"files": [{"path": "etc/x", "mode": "mask"}]}}),
                "files[0].path",
            ),
            (
                json!({"credentials": {"files": [{"path": "/a/../x", "mode": "mask"}]}}),
                "files[0].path",
            ),
            (
                json!({"credentials": {"onExtractNoMatch": "ignore"}}),
                "onExtractNoMatch",
            ),
            (
                json!({"credentials": {"allowPlaintextInject": "yes"}}),
                "allowPlaintextInject",
            ),
        ] {
            let errors = check(&doc);
            assert!(errors.iter().any(|e| e.contains(word)), "{doc}: {errors:?}");
        }
    }

    /// Every path the parser accepts, the schema accepts too.
    #[test]
    fn the_schema_accepts_every_path_the_parser_accepts() {
        let s = schema();
        let pattern = s["$defs"]["credentialFile"]["properties"]["path"]["pattern"]
            .as_str()
            .unwrap();
        let re = Regex::new(pattern).unwrap();
        let pieces = [
            "/", "//", "a", ".", "..", ".x", "..x", "x.", "é", " ", "-", "~",
        ];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..50_000 {
            let text: String = (0..1 + next(6))
                .map(|_| pieces[next(pieces.len())])
                .collect();
            let ok = super::check_path(&text).is_ok();
            if ok {
                accepted += 1;
            } else {
                refused += 1;
            }
            assert_eq!(ok, re.is_match(&text), "path {text:?}");
        }
        assert!(accepted > 1000 && refused > 1000, "{accepted}/{refused}");
    }
}

#[test]
fn srt_fields_ward_does_not_do_are_refused_by_name() {
    let at = "process.interception.credentials";
    for (doc, field, why) in [
        (
            json!({"envVars": [{"name": "A", "mode": "mask", "decode": "jwt"}]}),
            format!("{at}.envVars[0].decode"),
            "not supported by ward",
        ),
        (
            json!({"files": [{"path": "/a", "mode": "mask", "maskDuplicates": true}]}),
            format!("{at}.files[0].maskDuplicates"),
            "not supported by ward",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask"}],
                   "sigv4": {"streaming": "passthrough"}}),
            format!("{at}.sigv4.streaming"),
            "\"deny\" only",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask", "extract": "k=(\\w+)"},
                               {"name": "B", "mode": "mask"}],
                   "awsPairs": [{"accessKeyIdVar": "A", "secretAccessKeyVar": "B"}]}),
            format!("{at}.awsPairs[0].accessKeyIdVar"),
            "no extract",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask"}, {"name": "B", "mode": "deny"}],
                   "awsPairs": [{"accessKeyIdVar": "A", "secretAccessKeyVar": "B"}]}),
            format!("{at}.awsPairs[0].secretAccessKeyVar"),
            "is not an envVars entry",
        ),
        (
            json!({"envVars": [{"name": "A", "mode": "mask"}, {"name": "B", "mode": "mask"}],
                   "awsPairs": [{"accessKeyIdVar": "A", "secretAccessKeyVar": "B"},
                                {"accessKeyIdVar": "A", "secretAccessKeyVar": "B"}]}),
            format!("{at}.awsPairs[1].accessKeyIdVar"),
            "more than one",
        ),
        (
            json!({"awsPairs": [{"accessKeyIdVar": "A", "secretAccessKeyVar": "B"}]}),
            format!("{at}.awsPairs[0].accessKeyIdVar"),
            "is not an envVars entry",
        ),
    ] {
        let e = refused(doc.clone());
        assert!(e.contains(&field) && e.contains(why), "{doc}: {e}");
    }
}

#[test]
fn srt_shapes_ward_does_are_accepted() {
    let c = compiled(json!({
        "envVars": [
            {"name": "K", "mode": "mask", "extract": "k=(\\w+)", "onExtractNoMatch": "error"},
            {"name": "S", "mode": "mask"}],
        "files": [{"path": "/a", "mode": "mask", "extract": "p (\\S+)", "onExtractNoMatch": "deny"}],
        "awsPairs": [{"accessKeyIdVar": "S", "secretAccessKeyVar": "S2"}],
    }));
    // S2 is not an entry: refused; with it, accepted.
    assert!(c.is_err());
    let c = compiled(json!({
        "envVars": [
            {"name": "K", "mode": "mask", "extract": "k=(\\w+)", "onExtractNoMatch": "error"},
            {"name": "S", "mode": "mask"}, {"name": "S2", "mode": "mask"}],
        "files": [{"path": "/a", "mode": "mask", "extract": "p (\\S+)", "onExtractNoMatch": "deny"}],
        "awsPairs": [{"accessKeyIdVar": "S", "secretAccessKeyVar": "S2"}],
        "sigv4": {"streaming": "deny", "presigned": "deny"},
        "onExtractNoMatch": "warn"
    }))
    .unwrap();
    assert_eq!(c.entries[0].no_match, NoMatch::Error);
    assert_eq!(c.entries[1].no_match, NoMatch::Warn);
    assert_eq!(c.entries[3].no_match, NoMatch::Deny);
    assert_eq!(c.aws_pairs[0].secret_key, "S2");
}
