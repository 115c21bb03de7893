//! `ward features`: the runtime-spec Features document, describing what *this* ward on *this*
//! kernel implements. Nothing is claimed that is not built (cgroups, seccomp, idmap mounts are
//! reported disabled until they land); namespaces are probed from /proc/self/ns.

use serde_json::{json, Value};

use crate::mounts::RECURSIVE_OPTIONS;

const MOUNT_OPTIONS: &[&str] = &[
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "bind",
    "rbind",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "nosymfollow",
    "symfollow",
    "lazytime",
    "nolazytime",
    "silent",
    "loud",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

fn namespaces() -> Vec<&'static str> {
    [
        ("cgroup", "cgroup"),
        ("ipc", "ipc"),
        ("mount", "mnt"),
        ("network", "net"),
        ("pid", "pid"),
        ("time", "time"),
        ("user", "user"),
        ("uts", "uts"),
    ]
    .into_iter()
    .filter(|(_, file)| std::path::Path::new("/proc/self/ns").join(file).exists())
    .map(|(name, _)| name)
    .collect()
}

fn capabilities() -> Vec<String> {
    let mut caps: Vec<String> = caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::all())
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    caps.sort();
    caps
}

pub fn document() -> Value {
    let mut mount_options: Vec<&str> = MOUNT_OPTIONS.to_vec();
    mount_options.extend_from_slice(RECURSIVE_OPTIONS);
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": namespaces(),
            "capabilities": capabilities(),
            "cgroup": {"v1": false, "v2": false, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.ward.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_rro_and_probed_namespaces() {
        let d = super::document();
        let opts = d["mountOptions"].as_array().unwrap();
        assert!(opts.iter().any(|o| o == "rro"));
        let ns = d["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.iter().any(|n| n == "pid"));
        assert!(d["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN"));
    }
}
