//! Every field of the spec, classified for macOS: honoured, approximated, or refused.
//!
//! The walk is over the spec's JSON, so the table below is the whole story: a field that is not
//! in it is refused ("unknown to ward on macOS"), and `spec/platforms.md` documents each row
//! (a unit test checks that every row is mentioned there).
//!
//! Refused means: dropping it would silently weaken isolation (or grant less than the container
//! was promised in a way it cannot notice). Approximated means: an unprivileged macOS process
//! already lacks what the field takes away, or the field has no meaning there.

use serde_json::Value;

use super::is_empty;

/// What the walk found: approximated fields (with why) and refused fields (with why).
#[derive(Debug, Default, Clone)]
pub struct Findings {
    pub approximated: Vec<String>,
    pub refused: Vec<(String, String)>,
}

#[derive(Clone, Copy)]
pub(super) enum Rule {
    Honoured,
    Approximated(&'static str),
    Refused(&'static str),
    /// An object whose own keys are looked up in the table.
    Walk,
    /// A field whose verdict depends on its value.
    Check(fn(&Value, &mut Findings)),
}
use Rule::*;

/// The classification table: JSON path (dots, no array indices) → rule.
pub(super) const TABLE: &[(&str, Rule)] = &[
    ("ociVersion", Honoured),
    ("root", Walk),
    ("root.path", Honoured),
    ("root.readonly", Honoured),
    ("mounts", Check(mounts)),
    ("process", Walk),
    ("process.args", Honoured),
    ("process.env", Honoured),
    ("process.cwd", Honoured),
    ("process.rlimits", Check(rlimits)),
    (
        "process.terminal",
        Approximated("no pty: the process inherits ward's stdio"),
    ),
    ("process.consoleSize", Approximated("no pty")),
    ("process.commandLine", Approximated("Windows only")),
    ("process.user", Walk),
    ("process.user.umask", Honoured),
    (
        "process.user.uid",
        Approximated("runs as the invoking user"),
    ),
    (
        "process.user.gid",
        Approximated("runs as the invoking user's group"),
    ),
    (
        "process.user.additionalGids",
        Approximated("keeps the invoking user's groups"),
    ),
    ("process.user.username", Approximated("Windows only")),
    ("process.capabilities", Check(capabilities)),
    (
        "process.noNewPrivileges",
        Approximated("the sandbox is inherited and cannot be lifted"),
    ),
    ("process.apparmorProfile", Refused("no AppArmor on macOS")),
    ("process.selinuxLabel", Refused("no SELinux on macOS")),
    ("process.oomScoreAdj", Approximated("no OOM killer score")),
    (
        "process.ioPriority",
        Approximated("no I/O priority classes"),
    ),
    (
        "process.scheduler",
        Approximated("no Linux scheduling policies"),
    ),
    ("process.execCPUAffinity", Approximated("no CPU affinity")),
    (
        "hostname",
        Approximated("no UTS namespace: the host name shows"),
    ),
    ("domainname", Approximated("no UTS namespace")),
    ("hooks", Refused("the macOS executor does not run hooks")),
    ("annotations", Honoured),
    ("linux", Walk),
    ("linux.namespaces", Check(namespaces)),
    ("linux.uidMappings", Refused("no user namespace mappings")),
    ("linux.gidMappings", Refused("no user namespace mappings")),
    ("linux.sysctl", Refused("no per-container sysctls")),
    ("linux.resources", Walk),
    ("linux.resources.devices", Check(device_rules)),
    ("linux.resources.memory", Refused("no memory limit")),
    ("linux.resources.cpu", Refused("no CPU limit")),
    ("linux.resources.pids", Refused("no pids limit")),
    ("linux.resources.blockIO", Refused("no I/O limit")),
    (
        "linux.resources.hugepageLimits",
        Refused("no hugepage limit"),
    ),
    ("linux.resources.rdma", Refused("no RDMA limit")),
    ("linux.resources.unified", Refused("no cgroup v2 limits")),
    (
        "linux.resources.network",
        Approximated("no net_cls/net_prio classes"),
    ),
    ("linux.cgroupsPath", Approximated("no cgroups")),
    ("linux.devices", Check(devices)),
    ("linux.seccomp", Refused("no system-call filter")),
    (
        "linux.rootfsPropagation",
        Approximated("no mount namespace"),
    ),
    ("linux.maskedPaths", Honoured),
    ("linux.readonlyPaths", Honoured),
    ("linux.mountLabel", Refused("no SELinux on macOS")),
    (
        "linux.intelRdt",
        Refused("no cache or memory-bandwidth allocation"),
    ),
    ("linux.memoryPolicy", Approximated("no NUMA policy")),
    ("linux.personality", Approximated("no execution domains")),
    ("linux.timeOffsets", Approximated("no time namespace")),
    (
        "linux.netDevices",
        Approximated("no network devices are moved in"),
    ),
    ("uidMappings", Refused("no user namespace mappings")),
    ("gidMappings", Refused("no user namespace mappings")),
    ("windows", Refused("a Windows spec; use --to hcs")),
    ("vm", Refused("a VM-isolated spec")),
    ("solaris", Approximated("Solaris only")),
    ("zos", Approximated("z/OS only")),
];

/// Classify every field of `spec` (the Spec serialised as JSON).
pub fn classify(spec: &Value) -> Findings {
    let mut f = Findings::default();
    walk(spec, "", &mut f);
    f
}

fn walk(v: &Value, prefix: &str, f: &mut Findings) {
    let Some(obj) = v.as_object() else { return };
    for (key, value) in obj {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if is_empty(value) {
            continue;
        }
        match TABLE.iter().find(|(p, _)| *p == path).map(|(_, r)| *r) {
            Some(Honoured) => {}
            Some(Approximated(why)) => f.approximated.push(format!("{path}: {why}")),
            Some(Refused(why)) => f.refused.push((path, why.to_string())),
            Some(Walk) => walk(value, &path, f),
            Some(Check(check)) => check(value, f),
            None => f.refused.push((path, "unknown to ward on macOS".into())),
        }
    }
}

/// ward spec's capability sets: what an unprivileged macOS process has no use for anyway.
const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

fn capabilities(v: &Value, f: &mut Findings) {
    let mut extra: Vec<&str> = v
        .as_object()
        .into_iter()
        .flat_map(|o| o.values())
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .filter(|c| !DEFAULT_CAPS.contains(c))
        .collect();
    extra.sort_unstable();
    extra.dedup();
    if extra.is_empty() {
        f.approximated
            .push("process.capabilities: an unprivileged process has none".into());
    } else {
        f.refused.push((
            "process.capabilities".into(),
            format!(
                "{} beyond ward spec's defaults cannot be granted",
                extra.join(", ")
            ),
        ));
    }
}

/// The macOS resource number of a Linux `RLIMIT_*`, when there is one.
pub(crate) fn darwin_rlimit(name: &str) -> Option<i32> {
    Some(match name {
        "RLIMIT_CPU" => 0,
        "RLIMIT_FSIZE" => 1,
        "RLIMIT_DATA" => 2,
        "RLIMIT_STACK" => 3,
        "RLIMIT_CORE" => 4,
        "RLIMIT_AS" => 5,
        "RLIMIT_MEMLOCK" => 6,
        "RLIMIT_NPROC" => 7,
        "RLIMIT_NOFILE" => 8,
        _ => return None,
    })
}

fn rlimits(v: &Value, f: &mut Findings) {
    for r in v.as_array().into_iter().flatten() {
        let name = r.get("type").and_then(Value::as_str).unwrap_or("?");
        if name == "RLIMIT_RSS" {
            f.approximated
                .push("process.rlimits: RLIMIT_RSS is not enforced by Linux either".into());
        } else if darwin_rlimit(name).is_none() {
            f.refused.push((
                "process.rlimits".into(),
                format!("{name} has no macOS equivalent"),
            ));
        }
    }
}

fn namespaces(v: &Value, f: &mut Findings) {
    for ns in v.as_array().into_iter().flatten() {
        let typ = ns.get("type").and_then(Value::as_str).unwrap_or("?");
        let joins = ns.get("path").is_some_and(|p| !is_empty(p));
        match (typ, joins) {
            ("network", false) => {} // honoured: network denied
            ("network", true) => f.approximated.push(
                "linux.namespaces: joining a network namespace is impossible; network is denied"
                    .into(),
            ),
            ("pid" | "ipc" | "uts" | "mount" | "cgroup" | "time" | "user", _) => {
                f.approximated.push(format!(
                    "linux.namespaces: {typ}: no namespace; the sandbox confines instead"
                ))
            }
            _ => f.refused.push((
                "linux.namespaces".into(),
                format!("unknown namespace type {typ}"),
            )),
        }
    }
}

/// The default devices of `ward spec` (path, major, minor): macOS has them, or harmlessly not.
const DEFAULT_DEVICES: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn devices(v: &Value, f: &mut Findings) {
    for d in v.as_array().into_iter().flatten() {
        let path = d.get("path").and_then(Value::as_str).unwrap_or("?");
        let known = d.get("type").and_then(Value::as_str) == Some("c")
            && DEFAULT_DEVICES.iter().any(|(p, maj, min)| {
                *p == path
                    && d.get("major").and_then(Value::as_i64) == Some(*maj)
                    && d.get("minor").and_then(Value::as_i64) == Some(*min)
            });
        if known {
            f.approximated
                .push(format!("linux.devices: {path} is the host's"));
        } else {
            f.refused.push((
                "linux.devices".into(),
                format!("{path} is not a default device"),
            ));
        }
    }
}

fn device_rules(v: &Value, f: &mut Findings) {
    for rule in v.as_array().into_iter().flatten() {
        if rule.get("allow").and_then(Value::as_bool) != Some(true) {
            continue; // a deny rule: nothing but the default devices is reachable anyway
        }
        let typ = rule.get("type").and_then(Value::as_str).unwrap_or("a");
        let major = rule.get("major").and_then(Value::as_i64).unwrap_or(-1);
        let minor = rule.get("minor").and_then(Value::as_i64).unwrap_or(-1);
        let default = typ == "c"
            && (DEFAULT_DEVICES
                .iter()
                .any(|(_, ma, mi)| (*ma, *mi) == (major, minor))
                || (major == 5 && (minor == 1 || minor == 2))
                || major == 136);
        if !default {
            f.refused.push((
                "linux.resources.devices".into(),
                format!("allows {typ} {major}:{minor} beyond the default devices"),
            ));
        }
    }
    f.approximated
        .push("linux.resources.devices: only the default devices are reachable".into());
}

fn mounts(v: &Value, f: &mut Findings) {
    let mut absent: Vec<String> = Vec::new();
    for m in v.as_array().into_iter().flatten() {
        let dest = m.get("destination").and_then(Value::as_str).unwrap_or("?");
        for key in ["uidMappings", "gidMappings"] {
            if m.get(key).is_some_and(|x| !is_empty(x)) {
                f.refused.push((
                    format!("mounts.{key}"),
                    format!("no id-mapped mounts ({dest})"),
                ));
            }
        }
        let typ = m.get("type").and_then(Value::as_str);
        let options: Vec<String> = m
            .get("options")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| o.as_str().map(String::from))
            .collect();
        if matches!(super::mount_kind(typ, &options), super::MountKind::Absent) {
            absent.push(format!("{} {dest}", typ.unwrap_or("none")));
        }
    }
    f.approximated
        .push("mounts: no mount namespace; bind sources keep their host paths".into());
    if !absent.is_empty() {
        f.approximated
            .push(format!("mounts: not provided: {}", absent.join(", ")));
    }
}
