//! Converts a Docker/Podman seccomp profile (defaultAction, archMap, syscalls[] with
//! includes/excludes) to the OCI `linux.seccomp` object for an amd64 container, following
//! moby's `setupSeccomp` (profiles/seccomp/seccomp_linux.go).

use serde_json::{json, Map, Value};

/// Podman's default profile, installed by `apt-get install golang-github-containers-common`.
pub const PODMAN_DEFAULT: &str = "/usr/share/containers/seccomp.json";

/// Reads and converts Podman's default profile for a container whose bounding set is `caps`.
pub fn podman_default(caps: &[String]) -> Value {
    let text = std::fs::read_to_string(PODMAN_DEFAULT).unwrap_or_else(|e| {
        panic!("{PODMAN_DEFAULT}: {e} (apt-get install golang-github-containers-common)")
    });
    let profile: Value = serde_json::from_str(&text).expect("profile JSON");
    to_oci(&profile, caps, kernel_version())
}

/// The running kernel's (major, minor) from /proc/sys/kernel/osrelease.
fn kernel_version() -> (u64, u64) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    parse_version(&release).expect("kernel release")
}

/// "6.18.2-foo" -> (6, 18).
fn parse_version(text: &str) -> Option<(u64, u64)> {
    let mut parts = text
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// moby's filter for one syscall entry on amd64 with bounding set `caps`.
fn applies(entry: &Value, caps: &[String], kernel: (u64, u64)) -> bool {
    let has_cap = |c: &str| caps.iter().any(|have| have == c);
    let (inc, exc) = (&entry["includes"], &entry["excludes"]);
    let min_kernel = |v: &Value| v.as_str().and_then(parse_version);
    if strings(&exc["arches"]).contains(&"amd64")
        || strings(&exc["caps"]).into_iter().any(has_cap)
        || min_kernel(&exc["minKernel"]).is_some_and(|min| kernel >= min)
    {
        return false;
    }
    let arches = strings(&inc["arches"]);
    (arches.is_empty() || arches.contains(&"amd64"))
        && strings(&inc["caps"]).into_iter().all(has_cap)
        && min_kernel(&inc["minKernel"]).is_none_or(|min| kernel >= min)
}

/// The OCI `linux.seccomp` object for `profile` on amd64.
pub fn to_oci(profile: &Value, caps: &[String], kernel: (u64, u64)) -> Value {
    let mut out = Map::new();
    for key in [
        "defaultAction",
        "defaultErrnoRet",
        "flags",
        "listenerPath",
        "listenerMetadata",
    ] {
        if let Some(v) = profile.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    let native = profile["archMap"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["architecture"] == "SCMP_ARCH_X86_64");
    if let Some(a) = native {
        let mut arches = vec![a["architecture"].clone()];
        arches.extend(
            a["subArchitectures"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        out.insert("architectures".into(), Value::Array(arches));
    }
    let syscalls: Vec<Value> = profile["syscalls"]
        .as_array()
        .expect("profile syscalls")
        .iter()
        .filter(|e| applies(e, caps, kernel))
        .map(|e| {
            let mut s = Map::new();
            s.insert("names".into(), e["names"].clone());
            s.insert("action".into(), e["action"].clone());
            for key in ["errnoRet", "args"] {
                if let Some(v) = e.get(key).filter(|v| !v.is_null()) {
                    s.insert(key.into(), v.clone());
                }
            }
            Value::Object(s)
        })
        .collect();
    out.insert("syscalls".into(), json!(syscalls));
    Value::Object(out)
}

#[test]
fn converter_follows_moby_rules() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
        "syscalls": [
            {"names": ["a"], "action": "SCMP_ACT_ALLOW", "comment": "x", "includes": {}, "excludes": {}},
            {"names": ["b"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["c"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["d"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_KILL", "CAP_SYS_ADMIN"]}},
            {"names": ["e"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_KILL"]}},
            {"names": ["f"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["g"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.19"}},
            {"names": ["h"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.18"}, "args": null}
        ]
    });
    let oci = to_oci(&profile, &["CAP_KILL".to_string()], (6, 18));
    assert_eq!(
        oci,
        json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["c"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["f"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["h"], "action": "SCMP_ACT_ALLOW"}
            ]
        })
    );
}
