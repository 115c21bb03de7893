//! Egress by domain name (`allowedDomains`, `deniedDomains`, `deniedDomainReasons`, `proxyEnv`
//! in `process.interception.network` or the annotation `org.ward.interception`): what create
//! refuses (naming the field, exiting non-zero, leaving nothing behind) and what a container
//! with domain rules sees from inside without the egress lab (names answered by ward's own
//! DNS, the wall). The end-to-end proof against real origins is integration/egress/e2e.sh.
//! ward-only (runc has no egress policy and ignores both the field and the annotation).

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
fn domain_rules_need_a_network_namespace_of_their_own() {
    if skip() {
        return;
    }
    // The control: the same container with the IP rules alone runs and leaves its mark.
    let (mut env, mark) = env_with(
        Some(json!({"network": {"default": "deny", "allow": ["10.0.0.0/8:443"]}})),
        None,
    );
    host_network(&mut env);
    env.run(&env.id()).ok();
    assert!(mark.exists(), "the control container left no mark");
    for (field, annotation) in [
        (
            Some(json!({"network": {"allowedDomains": ["api.github.com"], "proxyEnv": true}})),
            None,
        ),
        (None, Some(json!({"network": {"deniedDomains": ["*"]}}))),
    ] {
        let (mut env, mark) = env_with(field, annotation);
        host_network(&mut env);
        env.assert_run_refused(
            "linux.namespaces: egress by domain name needs a network namespace of the container's own",
        );
        let before = env.root_entries();
        let id = env.id();
        let out = env.create(&id);
        assert_ne!(out.code, 0, "{out:?}");
        env.assert_nothing_left(&id, &before);
        assert!(!mark.exists(), "the container ran");
        assert!(!host_lo_has_the_range(), "the host's lo got ward's range");
    }
}

/// `"default": "allow"` beside domain rules would contradict them; absent, it is deny.
#[test]
fn an_explicit_default_allow_beside_domain_rules_is_refused() {
    if skip() {
        return;
    }
    for (words, field, annotation) in [
        (
            "process.interception.network.default: ",
            Some(json!({"network": {"default": "allow", "allowedDomains": ["a.example"]}})),
            None,
        ),
        (
            "annotations.org.ward.interception: network.default: ",
            None,
            Some(json!({"network": {"default": "allow", "deniedDomains": ["b.example"]}})),
        ),
    ] {
        let (env, mark) = env_with(field, annotation);
        env.assert_run_refused(words);
        assert!(!mark.exists(), "the container ran");
    }
}

/// Makes `env` run under runc with this ward as its `ward hook egress` at createRuntime and
/// poststop; returns the hook's state root.
pub fn under_runc_with_the_hook(env: &mut Env) -> std::path::PathBuf {
    env.binary = "runc".into();
    let hook_root = env.dir.join("hook-root");
    let hook = json!({"path": env!("CARGO_BIN_EXE_ward"),
        "args": ["ward", "--root", hook_root, "hook", "egress"]});
    env.config["hooks"] = json!({"createRuntime": [hook], "poststop": [hook]});
    hook_root
}

/// The hook's record directory under `hook_root` holds no container.
pub fn assert_hook_left_nothing(hook_root: &std::path::Path) {
    let left = std::fs::read_dir(hook_root.join("@egress-hook"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "the hook left a record behind");
}

fn host_network(env: &mut Env) {
    let ns = env.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network");
}

fn host_lo_has_the_range() -> bool {
    let out = std::process::Command::new("ip")
        .args(["-4", "addr", "show", "dev", "lo"])
        .output()
        .expect("ip addr");
    String::from_utf8_lossy(&out.stdout).contains("198.18.")
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
    env.assert_run_refused(
        "process.interception.network.allowedDomains: egress by domain name is not available in the gvisor tier",
    );
    assert!(!shared.join("ran").exists(), "the container ran");
}

#[test]
fn features_claim_domain_rules() {
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
        doc["annotations"]["org.ward.interception.domains"], "true",
        "{doc}"
    );
}

/// Without any network: ward's DNS answers allowed names with addresses of its reserved range
/// (whatever server the client asks), denied names get NXDOMAIN, a raw connect anywhere else
/// is refused by the wall, and `proxyEnv` puts the explicit proxy in the env.
#[test]
fn names_are_answered_by_ward_and_the_wall_holds() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    env.config["process"]["interception"] = json!({"network": {
        "allowedDomains": ["allowed.example", "*.wild.example"],
        "deniedDomains": ["no.wild.example"], "proxyEnv": true}});
    env.args(&[
        "sh",
        "-c",
        "nslookup allowed.example 192.0.2.53; echo rc1=$?; \
         nslookup no.wild.example 192.0.2.53; echo rc2=$?; \
         nslookup x.wild.example 203.0.113.9; echo rc3=$?; \
         nc -w 2 192.0.2.80 80 </dev/null; echo nc=$?; env | grep -i _proxy | sort",
    ]);
    let id = env.id();
    let out = env.run(&id);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{out:?}");
    let after = |marker: &str| text.split(marker).next().unwrap_or_default().to_string();
    assert!(after("rc1=0").contains("198.18.0.2"), "{text}");
    assert!(text.contains("rc2=1"), "denied name resolved: {text}");
    assert!(
        text.contains("rc3=0") && text.contains("198.18.0.3"),
        "{text}"
    );
    assert!(
        text.contains("nc=1") && text.contains("not permitted"),
        "{text}"
    );
    assert!(
        text.contains("HTTPS_PROXY=http://198.18.0.1:3128"),
        "{text}"
    );
    assert!(
        text.contains("ALL_PROXY=socks5h://198.18.0.1:3128"),
        "{text}"
    );
    assert!(text.contains("http_proxy=http://198.18.0.1:3128"), "{text}");
}

/// The proxy is a process of ward's outside the container's cgroup, recorded in the state,
/// writes its decisions to the container's violation log, and is gone after delete.
#[test]
fn the_proxy_lives_and_dies_with_its_container() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    env.config["process"]["interception"] =
        json!({"network": {"allowedDomains": ["allowed.example"], "proxyEnv": true}});
    let id = env.run_sleeping();
    let state: Value = serde_json::from_str(&crate::harness::read(
        &env.root.join(&id).join("state.json"),
    ))
    .expect("state.json");
    let proxy = state["proxy"][0]
        .as_i64()
        .expect("a proxy pid in state.json");
    assert!(crate::harness::alive(proxy), "proxy {proxy} not running");
    let cg = std::fs::read_to_string(format!("/proc/{proxy}/cgroup")).unwrap();
    assert!(
        !cg.contains(&id),
        "the proxy is in the container's cgroup: {cg}"
    );
    let status = std::fs::read_to_string(format!("/proc/{proxy}/status")).unwrap();
    for caps in ["CapEff:", "CapPrm:", "CapBnd:"] {
        let line = status.lines().find(|l| l.starts_with(caps)).unwrap();
        assert!(line.ends_with("0000000000000000"), "proxy {line}");
    }
    env.rt(&["exec", &id, "nslookup", "denied.example", "192.0.2.53"]);
    // `exec` starts from the container's process: the proxy variables are there too.
    let out = env.rt(&["exec", &id, "env"]);
    assert!(
        out.stdout.contains("HTTPS_PROXY=http://198.18.0.1:3128"),
        "{out:?}"
    );
    let log = crate::harness::read(&env.root.join(&id).join("violations.jsonl"));
    let denied = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["type"] == "egress" && r["name"] == "denied.example");
    let denied = denied.unwrap_or_else(|| panic!("no record of the denied name: {log}"));
    assert_eq!(denied["source"], "dns", "{denied}");
    assert!(
        denied["decision"].as_str().unwrap().starts_with("denied"),
        "{denied}"
    );
    env.kill(&id, "KILL");
    env.wait_status(&id, "stopped");
    env.delete(&id).ok();
    crate::harness::wait_for("the proxy to be gone", || !crate::harness::alive(proxy));
}

/// hooks/: runc with `ward hook egress` at createRuntime and poststop gets ward's DNS, wall and
/// proxy for the same policy (runc ignores process.interception; the hook reads it), and
/// poststop leaves nothing of ward's behind. Runs under either WARD_RUNTIME: the runtime here
/// is always runc, the hook always the ward under test.
#[test]
fn runc_with_the_hook_gets_the_same_walls() {
    let mut env = Env::new();
    let hook_root = under_runc_with_the_hook(&mut env);
    env.config["annotations"] = json!({"org.ward.interception":
        json!({"network": {"allowedDomains": ["allowed.example"]}}).to_string()});
    env.args(&[
        "sh",
        "-c",
        "nslookup allowed.example 192.0.2.53; echo rc1=$?; \
         nslookup evil.example 192.0.2.53; echo rc2=$?; \
         nc -w 2 192.0.2.80 80 </dev/null; echo nc=$?",
    ]);
    let id = env.id();
    let out = env.run(&id);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        text.contains("198.18.0.2") && text.contains("rc1=0"),
        "{text}"
    );
    assert!(text.contains("rc2=1"), "denied name resolved: {text}");
    assert!(
        text.contains("nc=1") && text.contains("not permitted"),
        "{text}"
    );
    assert_hook_left_nothing(&hook_root);
    // Without the hook, the same container under runc has no walls: the test can tell.
    env.config["hooks"] = json!({});
    let out = env.run(&env.id());
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(!text.contains("198.18.0.2"), "{text}");
    assert!(!text.contains("not permitted"), "{text}");
}

/// A network namespace joined by path outlives the container: ward's range comes off its `lo`
/// at delete, and after a create that failed half-way, with no proxy left either.
#[test]
fn a_joined_namespace_gets_its_lo_back() {
    if skip() {
        return;
    }
    let name = format!("ward-t-egress-{}", std::process::id());
    let ip = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .status()
            .expect("ip")
    };
    assert!(ip(&["netns", "add", &name]).success());
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", &self.0])
                .status();
        }
    }
    let _gone = Gone(name.clone());
    let has_range = || {
        let out = std::process::Command::new("ip")
            .args(["-n", &name, "-4", "addr", "show", "dev", "lo"])
            .output()
            .expect("ip addr");
        String::from_utf8_lossy(&out.stdout).contains("198.18.0.1/15")
    };
    let mut env = Env::new();
    env.config["process"]["interception"] =
        json!({"network": {"allowedDomains": ["allowed.example"]}});
    for ns in env.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(format!("/run/netns/{name}"));
        }
    }
    env.args(&["sh", "-c", "nslookup allowed.example 192.0.2.53"]);
    let out = env.run(&env.id());
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("198.18.0.2"), "{out:?}");
    assert!(
        !has_range(),
        "the range stayed on the joined namespace's lo"
    );
    // A create that fails after the proxy started (no such executable) undoes it all.
    env.args(&["/no/such/binary"]);
    let before = env.root_entries();
    let id = env.id();
    let out = env.run(&id);
    assert_ne!(out.code, 0, "{out:?}");
    env.assert_nothing_left(&id, &before);
    assert!(!has_range(), "the range stayed after a failed create");
}

/// A dead proxy fails closed: no answers, no connections to names, the wall still holds.
#[test]
fn a_dead_proxy_fails_closed() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    env.config["process"]["interception"] =
        json!({"network": {"allowedDomains": ["allowed.example"]}});
    let id = env.run_sleeping();
    let probe = "nslookup allowed.example 192.0.2.53; echo rc1=$?; \
                 nc -w 2 198.18.0.2 443 </dev/null; echo nc1=$?; \
                 nc -w 2 192.0.2.80 80 </dev/null; echo nc2=$?";
    // The control: with the proxy alive, the name resolves and its address accepts.
    let out = env.rt(&["exec", &id, "sh", "-c", probe]);
    assert!(out.stdout.contains("rc1=0"), "{out:?}");
    assert!(out.stdout.contains("nc1=0"), "{out:?}");
    let state: Value = serde_json::from_str(&crate::harness::read(
        &env.root.join(&id).join("state.json"),
    ))
    .expect("state.json");
    let proxy = state["proxy"][0].as_i64().expect("proxy pid");
    assert_eq!(env.state(&id)["helpers"]["proxy"], "running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    crate::harness::wait_for("the proxy to die", || !crate::harness::alive(proxy));
    assert_eq!(
        env.state(&id)["helpers"]["proxy"],
        "exited",
        "state of a proxy-less container"
    );
    let out = env.rt(&["exec", &id, "sh", "-c", probe]);
    assert!(
        out.stdout.contains("rc1=1"),
        "a name resolved without the proxy: {out:?}"
    );
    assert!(
        out.stdout.contains("nc1=1"),
        "a name's address accepted without the proxy: {out:?}"
    );
    assert!(out.stdout.contains("nc2=1"), "{out:?}");
    assert!(out.stderr.contains("not permitted"), "{out:?}");
}

/// The hook runs after runc has set the process's env: `proxyEnv` is refused naming the field
/// (the container does not start), never silently dropped.
#[test]
fn the_hook_refuses_proxy_env() {
    let mut env = Env::new();
    let shared = env.shared_dir("mark", "/mark");
    let hook_root = under_runc_with_the_hook(&mut env);
    env.config["process"]["interception"] =
        json!({"network": {"allowedDomains": ["allowed.example"], "proxyEnv": true}});
    env.args(&["sh", "-c", "echo ran > /mark/ran"]);
    let out = env.run(&env.id());
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("process.interception.network.proxyEnv"),
        "{out:?}"
    );
    assert!(!shared.join("ran").exists(), "the container ran");
    assert_hook_left_nothing(&hook_root);
}

/// `--interception FILE` (engines that cannot pass the annotation, e.g. Docker 20.10 through a
/// runtime entry's runtimeArgs): the file's policy applies to a container without one; a
/// container with its own is refused, as is a bad file, naming the flag.
#[test]
fn the_runtime_flag_imposes_a_policy() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    let file = env.dir.join("policy.json");
    std::fs::write(
        &file,
        json!({"network": {"allowedDomains": ["allowed.example"]}}).to_string(),
    )
    .unwrap();
    let flag = file.to_str().unwrap().to_string();
    env.args(&[
        "sh",
        "-c",
        "nslookup allowed.example 192.0.2.53; nc -w 2 192.0.2.80 80 </dev/null; echo nc=$?",
    ]);
    env.write_config();
    let bundle = env.bundle.to_str().unwrap().to_string();
    let out = env.rt(&[
        "--interception",
        &flag,
        "run",
        "--bundle",
        &bundle,
        &env.id(),
    ]);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("198.18.0.2"), "{text}");
    assert!(
        text.contains("nc=1") && text.contains("not permitted"),
        "{text}"
    );
    // The control: without the flag, no proxy answers.
    let out = env.rt(&["run", "--bundle", &bundle, &env.id()]);
    assert!(
        !format!("{}{}", out.stdout, out.stderr).contains("198.18.0.2"),
        "{out:?}"
    );
    // A config with its own policy.
    env.config["process"]["interception"] =
        json!({"network": {"allowedDomains": ["other.example"]}});
    env.write_config();
    let before = env.root_entries();
    let id = env.id();
    let out = env.rt(&["--interception", &flag, "run", "--bundle", &bundle, &id]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(&format!("--interception {flag}")),
        "{out:?}"
    );
    env.assert_nothing_left(&id, &before);
    // A bad file names the flag and the entry.
    env.config["process"]
        .as_object_mut()
        .unwrap()
        .remove("interception");
    env.write_config();
    std::fs::write(&file, r#"{"network": {"allowedDomains": ["*.com"]}}"#).unwrap();
    let id = env.id();
    let out = env.rt(&["--interception", &flag, "run", "--bundle", &bundle, &id]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("allowedDomains[0]") && out.stderr.contains("--interception"),
        "{out:?}"
    );
    env.assert_nothing_left(&id, &before);
}

/// An engine that wires the container's network in a createRuntime/prestart hook (Docker's
/// libnetwork) has done so before ward's proxy starts: the proxy's upstream sockets then
/// leave from the container's namespace, where the engine's network policy applies.
#[test]
fn the_proxy_dials_from_a_namespace_a_hook_wired() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    env.config["process"]["interception"] =
        json!({"network": {"allowedDomains": ["allowed.example"]}});
    let script = env.dir.join("wire.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\npid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p')\n\
         nsenter -t \"$pid\" -n sh -c 'ip link add d0 type veth peer name d1 && ip link set d0 up && \
         ip addr add 192.0.2.1/24 dev d0'\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.config["hooks"] = json!({"createRuntime": [{"path": script}]});
    let id = env.run_sleeping();
    let state: Value = serde_json::from_str(&crate::harness::read(
        &env.root.join(&id).join("state.json"),
    ))
    .expect("state.json");
    let proxy = state["proxy"][0].as_i64().expect("proxy pid");
    let init = state["pid"].as_i64().unwrap();
    let ns = |pid: i64| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert!(
        ns(init) != ns(std::process::id() as i64),
        "the container has no namespace of its own"
    );
    assert_eq!(
        ns(proxy),
        ns(init),
        "the proxy dials from another namespace"
    );
}

/// Engines keep state under long roots (Docker: /run/docker/runtime-runc/moby/<64 hex>/): the
/// supervisor's socket there is longer than a sockaddr_un holds. A container with a network
/// policy must still run.
#[test]
fn a_policy_works_under_a_long_state_root() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    env.root = env
        .dir
        .join(format!("runtime-runc/moby/{}", "b".repeat(64)));
    std::fs::create_dir_all(&env.root).unwrap();
    env.config["process"]["interception"] =
        json!({"network": {"allowedDomains": ["allowed.example"]}});
    env.args(&["sh", "-c", "nslookup allowed.example 192.0.2.53"]);
    let id = format!("{}-{}", "c".repeat(40), std::process::id());
    let out = env.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("198.18.0.2"), "{out:?}");
}
