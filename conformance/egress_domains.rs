//! Egress by domain name (`allowedDomains`, `deniedDomains`, `deniedDomainReasons`, `proxyEnv`
//! in `process.interception.network` or the annotation `org.ward.interception`): the parser
//! accepts them, but until ward's proxy exists `create` refuses them naming the field, exits
//! non-zero and leaves nothing behind, so no config looks enforced when it is not. ward-only
//! (runc has no egress policy and ignores both the field and the annotation).

use crate::harness::{runtime, runtime_is_runc, Env};
use serde_json::{json, Value};

const NOT_BUILT: &str = "egress by domain name needs ward's proxy";

fn skip() -> bool {
    if runtime_is_runc() {
        crate::skip::skipped(
            "runc has no egress policy: it ignores process.interception and org.ward.* annotations",
        );
    }
    runtime_is_runc()
}

/// A container that would leave a mark in a shared directory if it ever ran.
fn env_with(field: Option<Value>, annotation: Option<Value>) -> (Env, std::path::PathBuf) {
    let mut env = Env::new();
    let shared = env.shared_dir("mark", "/mark");
    env.args(&["sh", "-c", "echo ran > /mark/ran"]);
    if let Some(policy) = field {
        env.config["process"]["interception"] = policy;
    }
    if let Some(policy) = annotation {
        env.config["annotations"] = json!({"org.ward.interception": policy.to_string()});
    }
    (env, shared.join("ran"))
}

#[test]
fn domain_rules_are_refused_at_create_until_the_proxy_exists() {
    if skip() {
        return;
    }
    // The control: the same container with the IP rules alone runs and leaves its mark.
    let (env, mark) = env_with(
        Some(json!({"network": {"default": "deny", "allow": ["10.0.0.0/8:443"]}})),
        None,
    );
    env.run(&env.id()).ok();
    assert!(mark.exists(), "the control container left no mark");
    let cases = [
        (
            "process.interception.network.allowedDomains: egress by domain name",
            Some(
                json!({"network": {"default": "deny", "allow": ["10.0.0.0/8:443"],
                "allowedDomains": ["api.github.com", "*.pypi.org:443"], "proxyEnv": true}}),
            ),
            None,
        ),
        (
            "process.interception.network.deniedDomains: egress by domain name",
            Some(json!({"network": {"deniedDomains": ["*"]}})),
            None,
        ),
        (
            "annotations.org.ward.interception: network.allowedDomains: egress by domain name",
            None,
            Some(json!({"network": {"allowedDomains": ["example.com"],
                "deniedDomains": ["example.com:22"],
                "deniedDomainReasons": {"example.com:22": "no SSH; use https"}}})),
        ),
    ];
    for (words, field, annotation) in cases {
        let (env, mark) = env_with(field, annotation);
        env.assert_run_refused(words);
        assert!(env.rt(&["list", "-q"]).stdout.trim().is_empty());
        // create alone is refused the same way.
        let before = env.root_entries();
        let id = env.id();
        let out = env.create(&id);
        assert_ne!(out.code, 0, "{out:?}");
        assert!(out.stderr.contains(NOT_BUILT), "{out:?}");
        env.assert_nothing_left(&id, &before);
        assert!(!mark.exists(), "the container ran: {words}");
    }
}

#[test]
fn a_bad_pattern_is_refused_naming_the_entry() {
    if skip() {
        return;
    }
    for (field, why, policy) in [
        (
            "process.interception.network.allowedDomains[1]",
            "`co.uk` is a public suffix",
            json!({"network": {"allowedDomains": ["ok.example", "*.co.uk"]}}),
        ),
        (
            "process.interception.network.deniedDomains[0]",
            "a wildcard is only allowed as the whole first label",
            json!({"network": {"deniedDomains": ["ex*ample.com"]}}),
        ),
        (
            "process.interception.network.allowedDomains[0]",
            "port 65536 out of range 1-65535",
            json!({"network": {"allowedDomains": ["example.com:65536"]}}),
        ),
    ] {
        let (env, mark) = env_with(Some(policy), None);
        env.assert_run_refused(field);
        let before = env.root_entries();
        let id = env.id();
        let out = env.create(&id);
        assert!(out.code != 0 && out.stderr.contains(why), "{out:?}");
        env.assert_nothing_left(&id, &before);
        assert!(!mark.exists(), "the container ran: {field}");
    }
}

/// The gvisor tier takes another path through create (the bundle goes to runsc), and would
/// have run a deny-all policy with domain rules as runsc `--network=none`.
#[test]
fn the_gvisor_tier_refuses_them_too() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    let shared = env.shared_dir("mark", "/mark");
    env.args(&["sh", "-c", "echo ran > /mark/ran"]);
    env.config["process"]["interception"] =
        json!({"network": {"default": "deny", "allowedDomains": ["example.com"]}});
    env.config["annotations"] = json!({"org.ward.isolation": "gvisor"});
    env.assert_run_refused("process.interception.network.allowedDomains: egress by domain name");
    assert!(!shared.join("ran").exists(), "the container ran");
}

#[test]
fn features_do_not_claim_domain_rules() {
    let out = std::process::Command::new(runtime())
        .arg("features")
        .output()
        .expect("run features");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "allowedDomains",
        "deniedDomains",
        "deniedDomainReasons",
        "proxyEnv",
    ] {
        assert!(!text.contains(word), "features mentions {word}: {text}");
    }
}
