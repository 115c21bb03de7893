//! HTTP method/path rules (`http` in `process.interception.network`, issue 17): what create
//! refuses (naming the entry, exiting non-zero, leaving nothing behind), and requests from
//! inside a container judged by ward's proxy on the normalised path (the denials need no
//! origin: they are answered before any upstream is dialled). The proof against real origins
//! is integration/egress/e2e.sh. ward-only (runc has no egress policy).

use crate::harness::{runtime, runtime_is_runc, Env};
use serde_json::{json, Value};

fn skip() -> bool {
    if runtime_is_runc() {
        crate::skip::skipped(
            "runc has no egress policy: it ignores process.interception and org.ward.* annotations",
        );
    }
    runtime_is_runc()
}

#[test]
fn a_bad_http_rule_is_refused_naming_the_entry() {
    if skip() {
        return;
    }
    let at = "process.interception.network";
    for (field, why, policy, annotation) in [
        (
            format!("{at}.http[1].allow[0].paths[2]"),
            "not in normal form (requests are matched after normalisation)",
            json!({"network": {"allowedDomains": ["api.example"], "http": [
                {"host": "api.example", "allow": [{"methods": ["GET"]}]},
                {"host": "api.example", "allow": [{"paths": ["/a", "/b", "/v1/./files"]}]}]}}),
            false,
        ),
        (
            format!("{at}.http[0].host"),
            "no allowedDomains entry allows this host",
            json!({"network": {"allowedDomains": ["api.example"], "http": [
                {"host": "other.example", "allow": []}]}}),
            false,
        ),
        (
            format!("{at}.http[0].deny[0].methods[0]"),
            "methods are case-sensitive and written in upper case",
            json!({"network": {"allowedDomains": ["api.example"], "http": [
                {"host": "api.example", "deny": [{"methods": ["delete"]}]}]}}),
            false,
        ),
        (
            "annotations.org.ward.interception: network.http[0].allow[0].paths[0]".to_string(),
            "`*` only as the whole last segment",
            json!({"network": {"allowedDomains": ["api.example"], "http": [
                {"host": "api.example", "allow": [{"paths": ["/v1/*/files"]}]}]}}),
            true,
        ),
    ] {
        let mut env = Env::new();
        let shared = env.shared_dir("mark", "/mark");
        env.args(&["sh", "-c", "echo ran > /mark/ran"]);
        if annotation {
            env.config["annotations"] = json!({"org.ward.interception": policy.to_string()});
        } else {
            env.config["process"]["interception"] = policy;
        }
        env.assert_run_refused(&field);
        let before = env.root_entries();
        let id = env.id();
        let out = env.create(&id);
        assert!(
            out.code != 0 && out.stderr.contains(why),
            "{field}: {out:?}"
        );
        assert!(out.stderr.contains(&field), "{field}: {out:?}");
        env.assert_nothing_left(&id, &before);
        assert!(!shared.join("ran").exists(), "the container ran: {field}");
    }
}

/// A workload's plain-HTTP requests to a host with rules, through the kernel's redirect to
/// the transparent listener: the denied path and its spellings get ward's 403 naming the
/// rule, recorded with method and normalised path.
#[test]
fn requests_from_the_container_are_judged_by_path() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    env.config["process"]["interception"] = json!({"network": {
        "allowedDomains": ["api.example"],
        "http": [{"host": "api.example",
            "allow": [{"methods": ["POST"], "paths": ["/v1/messages"]}],
            "deny": [{"paths": ["/v1/files"]}]}]}});
    let req = |path: &str| {
        let path = path.replace('%', "%%"); // printf's format
        format!(
            "printf 'POST {path} HTTP/1.1\\r\\nHost: api.example\\r\\nContent-Length: 0\\r\\n\\r\\n' \
             | nc -w 5 api.example 80; echo"
        )
    };
    let script = [
        req("/v1/files"),
        "echo ===".into(),
        req("/v1/%66iles"),
        "echo ===".into(),
        req("/v1/other"),
    ]
    .join("; ");
    let id = env.run_sleeping();
    let out = env.rt(&["exec", &id, "sh", "-c", &script]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = out.stdout.clone();
    let log_path = env.root.join(&id).join("violations.jsonl");
    let parts: Vec<&str> = text.split("===").collect();
    assert_eq!(parts.len(), 3, "{text}");
    for (part, rule) in
        parts
            .iter()
            .zip(["http[0].deny[0]", "http[0].deny[0]", "http: not allowed"])
    {
        assert!(part.contains("HTTP/1.1 403 Forbidden"), "{text}");
        assert!(part.contains(&format!("X-Ward-Denied: {rule}")), "{text}");
    }
    let log = crate::harness::read(&log_path);
    let denied: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["name"] == "api.example" && r["method"] == "POST")
        .collect();
    let paths: Vec<&str> = denied.iter().filter_map(|r| r["path"].as_str()).collect();
    assert_eq!(paths, ["/v1/files", "/v1/files", "/v1/other"], "{log}");
    assert!(denied
        .iter()
        .all(|r| r["source"] == "transparent"
            && r["decision"].as_str().unwrap().starts_with("denied")));
    env.kill(&id, "KILL");
    env.wait_status(&id, "stopped");
    env.delete(&id).ok();
}

/// hooks/: runc with `ward hook egress` gets the same path rules (the hook reads the policy
/// from the annotation and starts the same proxy). Runs under either WARD_RUNTIME: the runtime
/// here is always runc, the hook always the ward under test.
#[test]
fn runc_with_the_hook_gets_the_same_path_rules() {
    let mut env = Env::new();
    let hook_root = crate::egress_domains::under_runc_with_the_hook(&mut env);
    env.config["annotations"] = json!({"org.ward.interception": json!({"network": {
        "allowedDomains": ["api.example"],
        "http": [{"host": "api.example", "deny": [{"methods": ["DELETE"]}]}]}})
    .to_string()});
    env.args(&[
        "sh",
        "-c",
        "printf 'DELETE /v1/x HTTP/1.1\\r\\nHost: api.example\\r\\n\\r\\n' \
         | nc -w 5 api.example 80",
    ]);
    let out = env.run(&env.id());
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("HTTP/1.1 403 Forbidden"), "{text}");
    assert!(text.contains("X-Ward-Denied: http[0].deny[0]"), "{text}");
    crate::egress_domains::assert_hook_left_nothing(&hook_root);
}

#[test]
fn features_claim_http_rules() {
    if skip() {
        return;
    }
    let out = std::process::Command::new(runtime())
        .arg("features")
        .output()
        .expect("run features");
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("features JSON");
    assert_eq!(
        doc["annotations"]["org.ward.interception.http"], "true",
        "{doc}"
    );
}
