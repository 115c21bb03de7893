//! config.json as `ward create` reads it, and `process.landlock`, on generated inputs
//! (`crate::fuzzkit`): random bytes and JSON, the shipped configs (runc's default, rootless,
//! with seccomp, resources, sysctl, Landlock, egress, http rules, credentials) mutated as text
//! and as structure (a value anywhere replaced by another type or an edge value: huge and
//! negative numbers, empty strings, `../`, NUL, long strings, deep nesting). Properties: no
//! panic, every call within the kit's bound, and every error is a configuration error that
//! names its field: a path whose first key is in the input (or is one that is required), or,
//! for the file as a whole, where the JSON breaks or which field is missing.
//!
//! `assert_names_field` is the check every other spec and policy fuzz target uses too.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::bundle::Bundle;
use super::landlock::{self, FS_NAMES, NET_NAMES, SCOPE_NAMES};
use crate::error::Error;
use crate::fuzzkit::{file_text, run, Rng};
use crate::spec::interception::ANNOTATION;

/// The field of a configuration error, which must name one (non-empty, under one of
/// `prefixes` when any are given) and say what is wrong; anything but `Error::Spec` fails.
pub(crate) fn assert_names_field(e: &Error, prefixes: &[&str]) -> String {
    let Error::Spec { field, msg } = e else {
        panic!("not a configuration error naming a field: {e:?}");
    };
    assert!(!field.trim().is_empty() && !msg.trim().is_empty(), "{e}");
    assert!(
        prefixes.is_empty() || prefixes.iter().any(|p| field.starts_with(p)),
        "{field:?} is not under {prefixes:?}: {e}"
    );
    field.clone()
}

/// `process.interception` as a config holds it: the field, or the same JSON in the annotation
/// (as an engine passes it); and where errors must be named.
pub(crate) fn placed(rng: &mut Rng, policy: &Value) -> (Value, &'static str) {
    if rng.one_in(3) {
        let raw = json!({"annotations": {ANNOTATION: policy.to_string()}});
        (raw, "annotations.org.ward.interception")
    } else {
        let raw = json!({"process": {"interception": policy}});
        (raw, "process.interception")
    }
}

/// A bundle directory with an empty rootfs, removed on drop.
pub(crate) struct TempBundle(pub PathBuf);

impl TempBundle {
    pub(crate) fn new(what: &str) -> TempBundle {
        let dir = std::env::temp_dir().join(format!("ward-fuzz-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).expect("make the bundle");
        TempBundle(std::fs::canonicalize(&dir).expect("the bundle"))
    }
}

impl Drop for TempBundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn example(text: &str) -> Value {
    serde_json::from_str(text).expect("a shipped example parses")
}

/// The configs mutations start from: what `ward spec` writes, and each of ward's extensions
/// on top of it.
fn samples() -> Vec<Value> {
    let base = super::template::config(false, 0, 0);
    let with = |pointer: &str, v: Value| {
        let mut c = base.clone();
        if let Some(slot) = c.pointer_mut(pointer) {
            *slot = v;
        }
        c
    };
    let seccomp = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"], "listenerPath": null,
        "syscalls": [{"names": ["getpid", "read"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]});
    let mut linux = base["linux"].clone();
    linux["seccomp"] = seccomp;
    linux["resources"] = json!({"memory": {"limit": 104857600, "swap": -1},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000}, "pids": {"limit": 64}});
    linux["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"});
    let mut process = base["process"].clone();
    process["landlock"] = example(include_str!("../../spec/examples/landlock.json"));
    process["interception"] = example(include_str!("../../spec/examples/credentials.json"));
    let annotations = json!({
        "org.ward.landlock": "auto",
        "org.ward.interception":
            include_str!("../../spec/examples/interception-http.json"),
    });
    vec![
        base.clone(),
        super::template::config(true, 1000, 1000),
        with("/linux", linux),
        with("/process", process),
        with(
            "/process/interception",
            example(include_str!(
                "../../spec/examples/interception-domains.json"
            )),
        ),
        with(
            "/process/interception",
            example(include_str!("../../spec/examples/interception.json")),
        ),
        with("/annotations", annotations),
    ]
}

/// Keys and values of the OCI config and ward's extensions, put where mutations land.
const CONFIG_WORDS: &[&str] = &[
    "process",
    "args",
    "cwd",
    "env",
    "user",
    "uid",
    "gid",
    "linux",
    "namespaces",
    "type",
    "path",
    "mount",
    "network",
    "pid",
    "uts",
    "ipc",
    "cgroup",
    "time",
    "uidMappings",
    "gidMappings",
    "containerID",
    "hostID",
    "size",
    "root",
    "readonly",
    "hostname",
    "domainname",
    "mounts",
    "destination",
    "source",
    "options",
    "resources",
    "memory",
    "limit",
    "cpu",
    "shares",
    "pids",
    "sysctl",
    "net.ipv4.ip_forward",
    "kernel.hostname",
    "seccomp",
    "defaultAction",
    "SCMP_ACT_ALLOW",
    "syscalls",
    "names",
    "landlock",
    "interception",
    "annotations",
    "org.ward.landlock",
    "org.ward.interception",
    "auto",
    "org.ward.rootfs.hostView",
    "capabilities",
    "bounding",
    "CAP_SYS_ADMIN",
    "CAP_NOPE",
    "rlimits",
    "RLIMIT_NOFILE",
    "/proc/self/ns/mnt",
    "/proc/self/ns/uts",
    "timeOffsets",
    "maskedPaths",
    "readonlyPaths",
    "devices",
    "rootfsPropagation",
    "ociVersion",
    "1.2.1",
    "rootfs",
    "PATH=/bin",
    "=x",
    "allowedDomains",
    "credentials",
    "envVars",
    "mask",
];

/// Where the config's field names start: its top-level keys (and the file itself).
fn check_config_error(e: &Error, text: &str) {
    let field = assert_names_field(e, &[]);
    let Error::Spec { msg, .. } = e else {
        return;
    };
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    if parsed.is_none() {
        // Broken JSON: named where it breaks (the path read so far, and line and column).
        assert!(msg.contains(" line ") && msg.contains(" column "), "{e}");
        return;
    }
    if field == "config.json" {
        // The file as a whole: where its JSON breaks, what is missing, or what it is instead
        // of an object.
        let said = msg.contains("missing field")
            || (msg.contains("JSON object") && !parsed.as_ref().is_some_and(Value::is_object));
        assert!(said, "config.json names no place: {e}\n{text:.2000}");
        return;
    }
    let path = field.strip_prefix("config.json: ").unwrap_or(&field);
    let first = path.split(['.', '[', ':']).next().unwrap_or_default();
    let present = parsed.as_ref().and_then(|v| v.get(first)).is_some();
    // Only a required field may be named where the config has nothing.
    assert!(
        present || ["process", "root"].contains(&path),
        "{field:?} names a key the config does not have: {e}\n{text:.2000}"
    );
}

#[test]
fn fuzz_config_json() {
    let bundle = TempBundle::new("config");
    let samples = samples();
    let stats = run("config-json", |c| {
        let text = file_text(&mut c.rng, &samples, CONFIG_WORDS);
        // As `Bundle::load` does, from the text on.
        let loaded = c.call(|| {
            let raw: Value = super::parse_json(&text, "config.json")?;
            Bundle::from_raw(bundle.0.clone(), raw)
        });
        match loaded {
            Ok(b) => {
                // What validation promised holds.
                let p = b.process().expect("validated: a process");
                assert!(p.args().as_ref().is_some_and(|a| !a[0].is_empty()));
                assert!(p.cwd().is_absolute());
                assert!(b.rootfs.is_absolute() && b.rootfs.is_dir());
                for m in b.spec.mounts().iter().flatten() {
                    assert!(m.destination().is_absolute());
                }
                "ok"
            }
            Err(e) => {
                check_config_error(&e, &text);
                "refused"
            }
        }
    });
    stats.assert_reaches(&["ok", "refused"]);
}

/// A Landlock policy: known and unknown access names, paths and ports at the edges.
fn landlock_policy(rng: &mut Rng) -> Value {
    let names = |rng: &mut Rng, known: &[&str]| -> Vec<String> {
        (0..rng.below(5))
            .map(|_| match rng.below(12) {
                0 => "nope".to_string(),
                1 => rng.pick(FS_NAMES).to_uppercase(),
                2 => rng.pick(NET_NAMES).to_string(),
                _ => rng.pick(known).to_string(),
            })
            .collect()
    };
    let fs = names(rng, FS_NAMES);
    let net = names(rng, NET_NAMES);
    let rule_fs = |rng: &mut Rng| -> Vec<String> {
        if !fs.is_empty() && !rng.one_in(4) {
            (0..1 + rng.below(3))
                .map(|_| rng.pick(&fs).clone())
                .collect()
        } else {
            names(rng, FS_NAMES)
        }
    };
    let path_beneath: Vec<Value> = (0..rng.below(4))
        .map(|_| {
            let paths: Vec<&str> = (0..rng.below(3))
                .map(|_| *rng.pick(&["/tmp", "", "relative", "/a/../..", "/dev/null", "\0"]))
                .collect();
            json!({"allowedAccess": rule_fs(rng), "paths": paths})
        })
        .collect();
    let net_port: Vec<Value> = (0..rng.below(3))
        .map(|_| {
            let access = if !net.is_empty() && !rng.one_in(4) {
                vec![rng.pick(&net).clone()]
            } else {
                names(rng, NET_NAMES)
            };
            json!({"allowedAccess": access, "ports": [*rng.pick(&[0, 443, 65535])]})
        })
        .collect();
    json!({"ruleset": {"handledAccessFS": fs, "handledAccessNetwork": net,
                       "scoped": names(rng, SCOPE_NAMES)},
           "rules": {"pathBeneath": path_beneath, "netPort": net_port},
           "disableBestEffort": rng.one_in(2)})
}

#[test]
fn fuzz_landlock() {
    let shipped = example(include_str!("../../spec/examples/landlock.json"));
    let words: Vec<&str> = FS_NAMES
        .iter()
        .chain(NET_NAMES)
        .chain(SCOPE_NAMES)
        .copied()
        .chain([
            "ruleset",
            "rules",
            "pathBeneath",
            "netPort",
            "allowedAccess",
            "paths",
        ])
        .chain([
            "ports",
            "handledAccessFS",
            "handledAccessNetwork",
            "scoped",
            "auto",
        ])
        .collect();
    let stats = run("landlock", |c| {
        let mut policy = if c.rng.one_in(2) {
            landlock_policy(&mut c.rng)
        } else {
            shipped.clone()
        };
        if c.rng.one_in(2) {
            for _ in 0..1 + c.rng.below(3) {
                crate::fuzzkit::mutate_json(&mut c.rng, &mut policy, &words);
            }
        }
        // The field, the annotation (JSON in a string, or "auto"), or both.
        let (raw, at) = match c.rng.below(8) {
            0 => (
                json!({"annotations": {landlock::ANNOTATION: policy.to_string()}}),
                "annotations.org.ward.landlock",
            ),
            1 => (
                json!({"process": {"landlock": policy},
                       "annotations": {landlock::ANNOTATION: "auto"}}),
                "process.landlock",
            ),
            _ => (json!({"process": {"landlock": policy}}), "process.landlock"),
        };
        match c.call(|| landlock::from_config(&raw)) {
            Ok(Some(landlock::Landlock::Policy(p))) => {
                // Accepted: every name known, every grant handled.
                let fs = landlock::names(&p.ruleset.handled_access_fs, "t", landlock::fs_access)
                    .expect("accepted names are known");
                for r in &p.rules.path_beneath {
                    let a = landlock::names(&r.allowed_access, "t", landlock::fs_access)
                        .expect("accepted names are known");
                    assert!(fs.contains(a), "{p:?}");
                }
                "ok"
            }
            Ok(other) => panic!("{raw}: {other:?}"),
            Err(e) => {
                let field = assert_names_field(&e, &[at]);
                if e.to_string().contains("unknown access name") {
                    assert!(field.ends_with(']'), "{e}");
                }
                "refused"
            }
        }
    });
    stats.assert_reaches(&["ok", "refused"]);
}
