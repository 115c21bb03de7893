//! `ward spec`: the default config.json (spec/templates/config.json), runc's defaults with
//! ward's name, and its rootless variant.

use serde_json::{json, Value};

pub const DEFAULT: &str = include_str!("../../spec/templates/config.json");

/// The default config; `rootless` maps the caller's uid/gid to root in a new user namespace,
/// drops the network namespace and binds /sys instead of mounting sysfs (runc's rootless spec).
pub fn config(rootless: bool, uid: u32, gid: u32) -> Value {
    let mut v: Value = serde_json::from_str(DEFAULT).unwrap_or(Value::Null);
    if rootless {
        if let Some(ns) = v["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
            ns.push(json!({"type": "user"}));
        }
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        if let Some(obj) = v["linux"].as_object_mut() {
            obj.remove("resources");
        }
        if let Some(mounts) = v["mounts"].as_array_mut() {
            for m in mounts.iter_mut() {
                if m["type"] == "sysfs" {
                    *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                } else if m["type"] == "devpts" {
                    if let Some(opts) = m["options"].as_array_mut() {
                        opts.retain(|o| o != "gid=5");
                    }
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
    }
}
