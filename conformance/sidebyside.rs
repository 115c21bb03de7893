//! Side by side: the same bundle and config under runc and under the runtime under test must
//! give identical checker output, except for facts that legitimately differ between runs.

use crate::harness::{runtime_is_runc, Env, Facts};
use serde_json::json;

/// Directives covering the filesystem view a container gets by default.
const DIRECTIVES: &[&str] = &[
    "mount:/",
    "mount:/proc",
    "mount:/dev",
    "mount:/dev/pts",
    "mount:/dev/shm",
    "mount:/dev/mqueue",
    "mount:/sys",
    "mount:/proc/sys",
    "mount:/proc/keys",
    "ls:/",
    "ls:/dev",
    "ls:/sys/firmware",
    "ls:/proc/acpi",
    "read:/proc/keys",
    "stat:/dev/null",
    "stat:/dev/tty",
    "stat:/dev/pts",
    "stat:/dev/shm",
    "link:/dev/ptmx",
    "link:/dev/fd",
    "write:/proc/sys/kernel/hostname",
    "write:/proc/sysrq-trigger",
    "write:/tmp/x",
    "write:/dev/shm/x",
];

/// Keys whose values differ between any two containers: namespace inode numbers. And SigIgn:
/// runc 1.1.5 passes on signal 32 ignored when its caller ignores it; ward resets every signal
/// (process::signals_start_with_default_dispositions checks ward's side exactly).
fn legitimately_differs(key: &str) -> bool {
    key == "SigIgn"
        || key.starts_with("ns.") && key != "ns.user" && key != "ns.cgroup" && key != "ns.time"
}

fn facts_under(binary: &str, customize: impl Fn(&mut Env)) -> Facts {
    let mut env = Env::new();
    env.binary = binary.to_string();
    customize(&mut env);
    let mut f = env.check(DIRECTIVES);
    f.0.retain(|k, _| !legitimately_differs(k));
    f
}

fn compare(customize: impl Fn(&mut Env)) {
    if runtime_is_runc() {
        eprintln!("side-by-side skipped: the runtime under test is runc");
        return;
    }
    let reference = facts_under("runc", &customize);
    let tested = facts_under(&crate::harness::runtime(), &customize);
    let keys: std::collections::BTreeSet<&String> =
        reference.0.keys().chain(tested.0.keys()).collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| reference.0.get(*k) != tested.0.get(*k))
        .map(|k| {
            format!(
                "{k}: runc={:?} tested={:?}",
                reference.0.get(k),
                tested.0.get(k)
            )
        })
        .collect();
    assert!(
        diffs.is_empty(),
        "differences from runc:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn default_config_matches_runc() {
    compare(|_| {});
}

#[test]
fn unprivileged_user_config_matches_runc() {
    compare(|env| {
        env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
        env.config["process"]["cwd"] = "/tmp".into();
        env.config["root"]["readonly"] = false.into();
    });
}
