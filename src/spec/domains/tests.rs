//! Every rule of the domain patterns, the decision and the annotation path (the generated-case
//! loops over arbitrary input are in `fuzz`).

use super::*;
use crate::spec::interception::{refuse_domains, Interception, Network};
use serde_json::json;

fn net(v: serde_json::Value) -> Network {
    serde_json::from_value(v).expect("network parses")
}

fn policy(v: serde_json::Value) -> Domains {
    net(v)
        .domains(FIELD)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("has domain rules")
}

fn allows(d: &Domains, name: &str, port: u16) -> bool {
    matches!(d.decide(name, port), Decision::Allow { .. })
}

fn error(v: serde_json::Value) -> String {
    match net(v.clone()).domains(FIELD) {
        Err(e) => e.to_string(),
        Ok(d) => panic!("{v} accepted as {d:?}"),
    }
}

#[test]
fn exact_names_match_only_themselves() {
    let d = policy(json!({"allowedDomains": ["example.com"]}));
    assert!(allows(&d, "example.com", 443));
    assert!(allows(&d, "example.com", 1));
    assert!(!allows(&d, "www.example.com", 443));
    assert!(!allows(&d, "example.org", 443));
    assert!(!allows(&d, "badexample.com", 443));
    assert!(!allows(&d, "example.com.evil.net", 443));
}

#[test]
fn wildcards_match_subdomains_not_the_apex() {
    let d = policy(json!({"allowedDomains": ["*.example.com"]}));
    assert!(allows(&d, "a.example.com", 443));
    assert!(allows(&d, "a.b.example.com", 80));
    assert!(!allows(&d, "example.com", 443));
    assert!(!allows(&d, "badexample.com", 443));
    assert!(!allows(&d, "a.example.com.evil.net", 443));
    assert!(!allows(&d, ".example.com", 443));
}

#[test]
fn ports_narrow_an_entry_and_their_absence_means_any() {
    let d = policy(
        json!({"allowedDomains": ["api.example.com:443", "*.pypi.org:8443", "any.example.com"]}),
    );
    assert!(allows(&d, "api.example.com", 443));
    assert!(!allows(&d, "api.example.com", 80));
    assert!(allows(&d, "files.pypi.org", 8443));
    assert!(!allows(&d, "files.pypi.org", 443));
    for port in [0, 1, 22, 443, 65535] {
        assert!(allows(&d, "any.example.com", port), "{port}");
    }
}

#[test]
fn address_literals_ipv6_bracketed_and_mapped() {
    let d = policy(
        json!({"allowedDomains": ["[::1]:443", "[2001:DB8::1]", "[::ffff:192.0.2.7]", "198.51.100.1:80"]}),
    );
    assert!(allows(&d, "::1", 443));
    assert!(allows(&d, "[::1]", 443));
    assert!(allows(&d, "[0:0::1]", 443));
    assert!(!allows(&d, "::1", 80));
    assert!(allows(&d, "2001:db8:0:0::1", 9));
    // A mapped address is the IPv4 address it carries, written either way.
    assert!(allows(&d, "192.0.2.7", 1));
    assert!(allows(&d, "[::ffff:c000:207]", 1));
    assert!(allows(&d, "198.51.100.1", 80));
    assert!(!allows(&d, "198.51.100.1", 443));
}

#[test]
fn names_compare_after_idna_case_and_trailing_dot() {
    let d = policy(
        json!({"allowedDomains": ["Bücher.Example", "*.ÉCOLE.example.com.", "plain.example.com."]}),
    );
    assert!(allows(&d, "xn--bcher-kva.example", 443));
    assert!(allows(&d, "BÜCHER.example", 443));
    assert!(allows(&d, "bücher.example.", 443));
    // Full-width letters and the ideographic full stop are the same name under UTS #46.
    assert!(allows(&d, "ｂüｃｈｅｒ。example", 443));
    assert!(allows(&d, "a.xn--cole-9oa.example.com", 443));
    assert!(allows(&d, "A.école.EXAMPLE.com.", 443));
    assert!(!allows(&d, "école.example.com", 443));
    assert!(allows(&d, "PLAIN.example.com", 443));
    assert!(allows(&d, "plain.example.com.", 443));
    assert_eq!(
        parse_pattern("Bücher.Example", List::Allowed).unwrap().host,
        Host::Name("xn--bcher-kva.example".into())
    );
}

#[test]
fn deny_wins_and_carries_its_reason() {
    let d = policy(json!({
        "allowedDomains": ["*.github.com", "github.com"],
        "deniedDomains": ["gist.github.com", "github.com:22"],
        "deniedDomainReasons": {"github.com:22": "SSH to GitHub is blocked; use an https:// remote"}
    }));
    assert!(allows(&d, "api.github.com", 443));
    assert!(allows(&d, "github.com", 443));
    assert_eq!(
        d.decide("gist.github.com", 443),
        Decision::Deny {
            rule: "deniedDomains[0] \"gist.github.com\"".into(),
            reason: None
        }
    );
    assert_eq!(
        d.decide("GitHub.com.", 22),
        Decision::Deny {
            rule: "deniedDomains[1] \"github.com:22\"".into(),
            reason: Some("SSH to GitHub is blocked; use an https:// remote".into())
        }
    );
    assert_eq!(
        d.decide("api.github.com", 443),
        Decision::Allow {
            rule: "allowedDomains[0] \"*.github.com\"".into()
        }
    );
}

#[test]
fn names_default_to_deny_once_any_domain_rule_exists() {
    let not_allowed = Decision::Deny {
        rule: NOT_ALLOWED.into(),
        reason: None,
    };
    let d = policy(json!({"allowedDomains": ["a.example.com"]}));
    assert_eq!(d.decide("b.example.com", 443), not_allowed);
    let d = policy(json!({"deniedDomains": ["evil.example"]}));
    assert_eq!(d.decide("good.example", 443), not_allowed);
    let d = policy(json!({"allowedDomains": []}));
    assert_eq!(d.decide("example.com", 443), not_allowed);
    assert!(Network::default().domains(FIELD).unwrap().is_none());
}

#[test]
fn a_bare_star_in_denied_domains_denies_all() {
    let d = policy(json!({"allowedDomains": ["example.com"], "deniedDomains": ["*"]}));
    assert!(!allows(&d, "example.com", 443));
    assert!(!allows(&d, "192.0.2.1", 443));
    let d = policy(json!({"allowedDomains": ["example.com"], "deniedDomains": ["*:22"]}));
    assert!(allows(&d, "example.com", 443));
    assert_eq!(
        d.decide("example.com", 22),
        Decision::Deny {
            rule: "deniedDomains[0] \"*:22\"".into(),
            reason: None
        }
    );
}

#[test]
fn wildcards_over_public_suffixes_are_refused_where_they_allow() {
    for (bad, kind) in [
        ("*.com", "ICANN"),
        ("*.co.uk", "ICANN"),
        ("*.COM.", "ICANN"),
        ("*.github.io", "private"),
        ("*.internal", "top-level label"),
    ] {
        let e = error(json!({"allowedDomains": ["ok.example", bad]}));
        assert!(
            e.contains("process.interception.network.allowedDomains[1]")
                && e.contains("public suffix")
                && e.contains(kind),
            "{bad}: {e}"
        );
    }
    // Below a public suffix, and in deniedDomains (denying broadly is safe), they are fine.
    policy(
        json!({"allowedDomains": ["*.example.co.uk", "*.octo.github.io"], "deniedDomains": ["*.com", "*.co.uk"]}),
    );
    // An exact name that is a suffix admits only itself.
    policy(json!({"allowedDomains": ["co.uk"]}));
}

#[test]
fn bad_patterns_are_errors_naming_the_entry() {
    let cases: &[(&str, &str)] = &[
        ("*", "every name"),
        ("*:443", "every name"),
        ("ex*ample.com", "wildcard"),
        ("*example.com", "wildcard"),
        ("a.*.example.com", "wildcard"),
        ("*.*.example.com", "wildcard"),
        ("**.example.com", "wildcard"),
        ("", "empty name"),
        (":443", "empty name"),
        ("*.", "empty label"),
        ("a..example.com", "empty label"),
        (".example.com", "empty label"),
        ("example.com..", "empty label"),
        ("example.com:0", "out of range"),
        ("example.com:65536", "out of range"),
        ("example.com:99999999999999999999", "out of range"),
        ("example.com:0443", "leading zeros"),
        ("example.com:", "not a number"),
        ("example.com:-1", "not a number"),
        ("example.com:+1", "not a number"),
        ("example.com:https", "not a number"),
        ("::1", "brackets"),
        ("2001:db8::1:443", "brackets"),
        ("[::1", "unclosed"),
        ("[::1]443", "only :port"),
        ("[::1]:", "not a number"),
        ("[::1]:70000", "out of range"),
        ("[fe80::1%eth0]", "zone"),
        ("[192.0.2.1]", "not an IPv6"),
        ("[example.com]", "not an IPv6"),
        ("*.192.0.2.1", "IP address"),
        ("192.0.2.999", "IPv4"),
        ("010.0.0.1", "IPv4"),
        ("0x7f.1", "IPv4"),
        ("example.123", "IPv4"),
        ("exa mple.com", "IDNA"),
        ("example.com/path", "not a URL"),
        ("https://example.com", "not a URL"),
        ("user@example.com", "IDNA"),
        ("ex%61mple.com", "IDNA"),
        ("a\u{7}b.com", "IDNA"),
        ("xn--a.com", "IDNA"),
    ];
    for (bad, why) in cases {
        for (list, field) in [
            ("allowedDomains", "allowedDomains[2]"),
            ("deniedDomains", "deniedDomains[2]"),
        ] {
            if list == "deniedDomains" && bad.starts_with('*') && why == &"every name" {
                continue; // deny-all
            }
            let e = error(json!({list: ["a.example", "b.example", bad]}));
            assert!(
                e.contains(&format!("process.interception.network.{field}:")) && e.contains(why),
                "{list} {bad:?}: {e}"
            );
        }
    }
    let long_label = format!("{}.com", "a".repeat(64));
    assert!(error(json!({"allowedDomains": [long_label]})).contains("longer than 63"));
    let long_name = vec!["a".repeat(60); 5].join(".");
    assert!(error(json!({"deniedDomains": [long_name]})).contains("longer than 253"));
}

#[test]
fn reasons_must_key_a_denied_entry_and_be_one_short_line() {
    let e =
        error(json!({"deniedDomains": ["a.example"], "deniedDomainReasons": {"b.example": "no"}}));
    assert!(
        e.contains("network.deniedDomainReasons[\"b.example\"]") && e.contains("not an entry"),
        "{e}"
    );
    // Keys are entries as written, not names they match.
    let e =
        error(json!({"deniedDomains": ["A.example"], "deniedDomainReasons": {"a.example": "no"}}));
    assert!(e.contains("not an entry"), "{e}");
    for (reason, why) in [
        ("", "empty"),
        ("  ", "empty"),
        ("line\nbreak", "control"),
        ("\u{1b}[31mred", "control"),
    ] {
        let e = error(
            json!({"deniedDomains": ["a.example"], "deniedDomainReasons": {"a.example": reason}}),
        );
        assert!(
            e.contains("deniedDomainReasons[\"a.example\"]") && e.contains(why),
            "{e}"
        );
    }
    let long = "x".repeat(REASON_MAX + 1);
    let e =
        error(json!({"deniedDomains": ["a.example"], "deniedDomainReasons": {"a.example": long}}));
    assert!(e.contains("longer than"), "{e}");
    policy(
        json!({"deniedDomains": ["a.example"], "deniedDomainReasons": {"a.example": "é ".repeat(200)}}),
    );
}

#[test]
fn proxy_env_needs_a_domain_list() {
    let e = error(json!({"proxyEnv": true}));
    assert!(
        e.contains("network.proxyEnv") && e.contains("needs allowedDomains"),
        "{e}"
    );
    let d = policy(json!({"proxyEnv": true, "allowedDomains": ["example.com"]}));
    assert!(d.proxy_env);
    assert!(net(json!({"proxyEnv": false}))
        .domains(FIELD)
        .unwrap()
        .is_none());
}

#[test]
fn decisions_on_address_spellings_resolvers_accept() {
    let d = policy(
        json!({"allowedDomains": ["*.example.com", "localhost"], "deniedDomains": ["127.0.0.1"]}),
    );
    for spelled in [
        "127.0.0.1",
        "127.1",
        "0x7f.1",
        "0177.0.0.1",
        "2130706433",
        "0x7F000001",
        "127.0.0.1.",
        "[::ffff:127.0.0.1]",
        "::ffff:7f00:1",
    ] {
        assert_eq!(
            d.decide(spelled, 80),
            Decision::Deny {
                rule: "deniedDomains[0] \"127.0.0.1\"".into(),
                reason: None
            },
            "{spelled}"
        );
    }
    // An address never matches a wildcard over names.
    assert!(!allows(&d, "1.2.3.4", 443));
    assert!(allows(&d, "localhost", 8080));
}

#[test]
fn what_is_not_a_name_is_denied_as_such() {
    let d = policy(json!({"deniedDomains": ["*.example.com"], "allowedDomains": ["example.com"]}));
    for bad in [
        "",
        ".",
        "a..b",
        "exa mple.com",
        "example.com:443",
        "[example.com]",
        "[::1",
        "::1]",
        "256.1.1.1",
        "1.2.3.4.5",
        "0x100000000",
        "a.08",
        "xn--a",
        "\u{0}",
        "%",
    ] {
        assert_eq!(
            d.decide(bad, 443),
            Decision::Deny {
                rule: NOT_A_NAME.into(),
                reason: None
            },
            "{bad:?}"
        );
    }
}

#[test]
fn the_annotation_accepts_the_same_fields_and_names_itself() {
    let text = json!({"network": {"allowedDomains": ["ok.example", "*.example.com"], "deniedDomains": ["*:22"],
        "deniedDomainReasons": {"*:22": "no SSH"}, "proxyEnv": true}})
    .to_string();
    let raw = json!({"annotations": {"org.ward.interception": text}});
    let i = crate::spec::interception::from_config(&raw)
        .unwrap()
        .unwrap();
    let n = i.network.as_ref().unwrap();
    let d = n.domains(FIELD).unwrap().unwrap();
    assert!(allows(&d, "a.example.com", 443));
    assert!(d.proxy_env);
    let bad = json!({"network": {"allowedDomains": ["ok.example", "*.co.uk"]}}).to_string();
    let raw = json!({"annotations": {"org.ward.interception": bad}});
    let e = crate::spec::interception::from_config(&raw)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("annotations.org.ward.interception: network.allowedDomains[1]"),
        "{e}"
    );
    // A field of the wrong type is named by the JSON path.
    let typo = json!({"network": {"allowedDomains": "example.com"}}).to_string();
    let raw = json!({"annotations": {"org.ward.interception": typo}});
    let e = crate::spec::interception::from_config(&raw)
        .unwrap_err()
        .to_string();
    assert!(e.contains("network.allowedDomains"), "{e}");
}

#[test]
fn the_domains_example_is_accepted_and_decides_as_documented() {
    let example: serde_json::Value = serde_json::from_str(include_str!(
        "../../../spec/examples/interception-domains.json"
    ))
    .unwrap();
    let raw = json!({"process": {"interception": example}});
    let i = crate::spec::interception::from_config(&raw)
        .unwrap()
        .unwrap();
    let d = i.network.as_ref().unwrap().domains(FIELD).unwrap().unwrap();
    assert!(allows(&d, "api.github.com", 443));
    assert!(allows(&d, "raw.githubusercontent.com", 443));
    assert!(!allows(&d, "evil.githubusercontent.com", 443));
    assert!(allows(&d, "files.pythonhosted.org", 443));
    assert!(!allows(&d, "files.pythonhosted.org", 80));
    assert!(allows(&d, "pypi.org", 443));
    assert!(!allows(&d, "pypi.org", 80));
    assert!(!allows(&d, "gist.github.com", 443));
    assert!(!allows(&d, "example.com", 443));
    assert!(d.proxy_env);
    assert!(matches!(
        d.decide("github.com", 22),
        Decision::Deny {
            reason: Some(_),
            ..
        }
    ));
}

const WHY: &str = "not in this tier";

#[test]
fn refusals_name_the_first_domain_field() {
    for (field, network) in [
        ("allowedDomains", json!({"allowedDomains": []})),
        ("deniedDomains", json!({"deniedDomains": ["*"]})),
        ("proxyEnv", json!({"proxyEnv": true})),
    ] {
        let raw = json!({"process": {"interception": {"network": network}}});
        let i: Interception =
            serde_json::from_value(raw["process"]["interception"].clone()).unwrap();
        let e = refuse_domains(&i, &raw, WHY).unwrap_err().to_string();
        assert!(
            e.contains(&format!("process.interception.network.{field}: {WHY}")),
            "{e}"
        );
    }
    let raw = json!({"annotations": {"org.ward.interception": "{}"}});
    let i = Interception {
        network: Some(net(json!({"deniedDomains": ["a.example"]}))),
        ..Default::default()
    };
    let e = refuse_domains(&i, &raw, WHY).unwrap_err().to_string();
    assert!(
        e.contains("annotations.org.ward.interception: network.deniedDomains"),
        "{e}"
    );
    let ip_only = Interception {
        network: Some(net(json!({"default": "deny", "allow": ["10.0.0.0/8"]}))),
        ..Default::default()
    };
    refuse_domains(&ip_only, &raw, WHY).unwrap();
    refuse_domains(&Interception::default(), &raw, WHY).unwrap();
}
