//! `features` against `runc features` on the same machine: every field runc reports, the
//! runtime reports with the same meaning (sets may be larger where it does more, never
//! missing what it implements), and values probed from this kernel.

use crate::harness::{runtime, runtime_is_runc};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

fn features(bin: &str) -> Value {
    let out = Command::new(bin)
        .arg("features")
        .output()
        .expect("run features");
    assert!(out.status.success(), "{bin} features: {out:?}");
    serde_json::from_slice(&out.stdout).expect("features JSON")
}

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn features_match_runc_in_meaning() {
    if runtime_is_runc() {
        eprintln!("skipped: the runtime under test is runc");
        return;
    }
    let ours = features(&runtime());
    let runc = features("runc");
    assert_eq!(set(&ours["hooks"]), set(&runc["hooks"]));
    // runc lists tmpcopyup, which ward refuses rather than ignores: never advertised.
    let mut want = set(&runc["mountOptions"]);
    want.remove("tmpcopyup");
    let have = set(&ours["mountOptions"]);
    assert!(
        want.is_subset(&have),
        "missing mount options: {:?}",
        want.difference(&have).collect::<Vec<_>>()
    );
    assert!(!have.contains("tmpcopyup") && !have.contains("idmap"));
    for key in ["namespaces", "capabilities"] {
        let (r, o) = (set(&runc["linux"][key]), set(&ours["linux"][key]));
        assert!(
            r.is_subset(&o),
            "{key}: missing {:?}",
            r.difference(&o).collect::<Vec<_>>()
        );
    }
    assert_eq!(ours["linux"]["cgroup"]["v1"], runc["linux"]["cgroup"]["v1"]);
    assert_eq!(ours["linux"]["cgroup"]["v2"], runc["linux"]["cgroup"]["v2"]);
    let (rs, os) = (&runc["linux"]["seccomp"], &ours["linux"]["seccomp"]);
    assert_eq!(os["enabled"], rs["enabled"]);
    assert_eq!(set(&os["actions"]), set(&rs["actions"]));
    assert_eq!(set(&os["operators"]), set(&rs["operators"]));
    // ward compiles filters for the x86 family only; each one runc knows too.
    let archs = set(&os["archs"]);
    assert!(archs.is_subset(&set(&rs["archs"])) && archs.contains("SCMP_ARCH_X86_64"));
}

#[test]
fn features_are_probed_from_this_kernel() {
    if runtime_is_runc() {
        return;
    }
    let ours = features(&runtime());
    let last_cap: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        ours["linux"]["capabilities"].as_array().unwrap().len(),
        last_cap + 1
    );
    let abi = ours["annotations"]["org.ward.landlock.abi"]
        .as_str()
        .unwrap();
    assert_eq!(
        abi.parse::<i64>().unwrap(),
        crate::skip::landlock_abi(),
        "the Landlock ABI this kernel reports"
    );
    let unix_hooks = crate::skip::unix_hooks();
    assert_eq!(
        ours["annotations"]["org.ward.interception.allowUnix"],
        unix_hooks.to_string(),
        "whether this kernel has the cgroup unix socket hooks (6.7+, BTF)"
    );
    assert!(ours["potentiallyUnsafeConfigAnnotations"].is_array());
    let flags = set(&ours["linux"]["seccomp"]["supportedFlags"]);
    assert!(flags.contains("SECCOMP_FILTER_FLAG_LOG"));
    let ns = set(&ours["linux"]["namespaces"]);
    assert_eq!(
        ns.contains("time"),
        crate::skip::time_ns(),
        "time namespaces listed exactly when this kernel has them"
    );
}
