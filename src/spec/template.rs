//! `ward spec`: the default config.json (spec/templates/config.json), runc's defaults with
//! ward's name, and its rootless variant.

use serde_json::{json, Value};

pub const DEFAULT: &str = include_str!("../../spec/templates/config.json");

/// The default config; `rootless` is runc's `ToRootless`: a new user namespace mapping the
/// caller's uid/gid (the effective ones) to root, no network namespace (the user could not
/// give it a way out), /sys bound from the host instead of a sysfs (which a user namespace
/// without its own network namespace may not mount), no `uid=`/`gid=` mount options (ids the
/// namespace does not map) and no `linux.resources` (limits need a cgroup the user may write).
pub fn config(rootless: bool, uid: u32, gid: u32) -> Value {
    let mut v: Value = serde_json::from_str(DEFAULT).unwrap_or(Value::Null);
    if rootless {
        if let Some(ns) = v["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network" && n["type"] != "user");
            ns.push(json!({"type": "user"}));
        }
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        if let Some(obj) = v["linux"].as_object_mut() {
            obj.remove("resources");
        }
        if let Some(mounts) = v["mounts"].as_array_mut() {
            for m in mounts.iter_mut() {
                if m["destination"] == "/sys" {
                    *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                } else if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| {
                        !o.as_str()
                            .is_some_and(|o| o.starts_with("uid=") || o.starts_with("gid="))
                    });
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parses_as_a_spec() {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(config(false, 0, 0)).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("ward"));
        let rootless: oci_spec::runtime::Spec =
            serde_json::from_value(config(true, 1000, 1000)).unwrap();
        let ns = rootless
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .clone()
            .unwrap();
        assert!(ns
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User));
        let v = config(true, 1000, 1001);
        assert_eq!(v["linux"]["gidMappings"][0]["hostID"], 1001);
        assert!(v["linux"].get("resources").is_none());
        let text = v["mounts"].to_string();
        assert!(
            !text.contains("gid=") && !text.contains("\"sysfs\""),
            "{text}"
        );
    }
}
