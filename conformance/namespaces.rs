//! Namespaces: created, shared, joined by path, user namespace id mappings; hostname, sysctls.

use crate::harness::{host_ns, Env};
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

const CONFIG_NS: [(&str, &str); 5] = [
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
];

#[test]
fn each_configured_namespace_is_new() {
    let f = Env::new().check(&[]);
    for (_, ns) in CONFIG_NS {
        let inside = f.get(&format!("ns.{ns}"));
        assert!(inside.starts_with(&format!("{ns}:[")), "{inside}");
        assert_ne!(inside, host_ns(ns), "{ns} namespace is the host's");
    }
    assert_eq!(
        f.get("ns.user"),
        host_ns("user"),
        "no user namespace was asked for"
    );
}

#[test]
fn unlisted_namespaces_are_shared_with_the_runtime() {
    let mut env = Env::new();
    env.config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
    env.config.as_object_mut().unwrap().remove("hostname");
    let f = env.check(&[]);
    for ns in ["net", "ipc", "uts"] {
        assert_eq!(
            f.get(&format!("ns.{ns}")),
            host_ns(ns),
            "{ns} should be shared"
        );
    }
    assert_ne!(f.get("ns.pid"), host_ns("pid"));
}

/// A named network namespace from `ip netns add`, deleted on drop.
struct NetNs(String);

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn join_network_namespace_by_path() {
    let mut env = Env::new();
    let netns = NetNs(format!("wardconf{}", env.id()));
    assert!(
        Command::new("ip")
            .args(["netns", "add", &netns.0])
            .status()
            .unwrap()
            .success(),
        "ip netns add"
    );
    let path = format!("/run/netns/{}", netns.0);
    let inode = std::fs::metadata(&path).unwrap().ino();
    for n in env.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = path.clone().into();
        }
    }
    let f = env.check(&[]);
    assert_eq!(f.get("ns.net"), format!("net:[{inode}]"));
}

#[test]
fn hostname_is_set() {
    let mut env = Env::new();
    env.config["hostname"] = "conformance-host".into();
    assert_eq!(env.check(&[]).get("hostname"), "conformance-host");
}

#[test]
fn sysctls_applied_inside_namespaces() {
    let mut env = Env::new();
    env.config["linux"]["sysctl"] =
        json!({"net.ipv4.ip_forward": "1", "kernel.domainname": "ward.example"});
    let f = env.check(&[
        "read:/proc/sys/net/ipv4/ip_forward",
        "read:/proc/sys/kernel/domainname",
    ]);
    assert_eq!(f.get("read:/proc/sys/net/ipv4/ip_forward"), "ok:1");
    assert_eq!(f.get("read:/proc/sys/kernel/domainname"), "ok:ward.example");
    let host_domain = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    assert_ne!(
        host_domain.trim(),
        "ward.example",
        "sysctl leaked to the host"
    );
}

#[test]
fn user_namespace_with_id_mappings() {
    let mut env = Env::new();
    env.with_userns();
    let f = env.check(&["read:/proc/self/uid_map", "read:/proc/self/gid_map"]);
    assert_eq!(f.get("uid"), "0");
    let words = |k: &str| {
        f.get(k)
            .trim_start_matches("ok:")
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(words("read:/proc/self/uid_map"), ["0", "100000", "65536"]);
    assert_eq!(words("read:/proc/self/gid_map"), ["0", "100000", "65536"]);
    assert_ne!(f.get("ns.user"), host_ns("user"));
}
