//! Landlock in the spec: ward's `process.landlock` extension (the shape proposed in
//! runtime-spec PR #1111/#1241), the same JSON in the annotation `org.ward.landlock`, or
//! `org.ward.landlock: "auto"` — a ruleset derived from the spec's own writable mounts.
//! Types, access names and validation; `policy::landlock` applies it.

use landlock::{AccessFs, AccessNet, BitFlags, Scope};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const ANNOTATION: &str = "org.ward.landlock";

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RulesetSpec {
    #[serde(default, rename = "handledAccessFS")]
    pub handled_access_fs: Vec<String>,
    #[serde(default)]
    pub handled_access_network: Vec<String>,
    #[serde(default)]
    pub scoped: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathRule {
    pub allowed_access: Vec<String>,
    pub paths: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortRule {
    pub allowed_access: Vec<String>,
    pub ports: Vec<u16>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rules {
    #[serde(default)]
    pub path_beneath: Vec<PathRule>,
    #[serde(default)]
    pub net_port: Vec<PortRule>,
}

/// `process.landlock`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    pub ruleset: RulesetSpec,
    #[serde(default)]
    pub rules: Rules,
    #[serde(default)]
    pub disable_best_effort: bool,
}

/// What the container gets: an explicit policy, or one derived from the spec at setup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Landlock {
    Policy(Policy),
    Auto,
}

/// The access names of the spec, as Landlock calls its rights.
pub const FS_NAMES: &[&str] = &[
    "execute",
    "write_file",
    "read_file",
    "read_dir",
    "remove_dir",
    "remove_file",
    "make_char",
    "make_dir",
    "make_reg",
    "make_sock",
    "make_fifo",
    "make_block",
    "make_sym",
    "refer",
    "truncate",
    "ioctl_dev",
];
pub const NET_NAMES: &[&str] = &["bind_tcp", "connect_tcp"];
pub const SCOPE_NAMES: &[&str] = &["abstract_unix_socket", "signal"];

/// The file-system right an access name means.
pub fn fs_access(name: &str) -> Option<AccessFs> {
    Some(match name {
        "execute" => AccessFs::Execute,
        "write_file" => AccessFs::WriteFile,
        "read_file" => AccessFs::ReadFile,
        "read_dir" => AccessFs::ReadDir,
        "remove_dir" => AccessFs::RemoveDir,
        "remove_file" => AccessFs::RemoveFile,
        "make_char" => AccessFs::MakeChar,
        "make_dir" => AccessFs::MakeDir,
        "make_reg" => AccessFs::MakeReg,
        "make_sock" => AccessFs::MakeSock,
        "make_fifo" => AccessFs::MakeFifo,
        "make_block" => AccessFs::MakeBlock,
        "make_sym" => AccessFs::MakeSym,
        "refer" => AccessFs::Refer,
        "truncate" => AccessFs::Truncate,
        "ioctl_dev" => AccessFs::IoctlDev,
        _ => return None,
    })
}

/// The network right an access name means.
pub fn net_access(name: &str) -> Option<AccessNet> {
    match name {
        "bind_tcp" => Some(AccessNet::BindTcp),
        "connect_tcp" => Some(AccessNet::ConnectTcp),
        _ => None,
    }
}

/// The scope a name means.
pub fn scope(name: &str) -> Option<Scope> {
    match name {
        "abstract_unix_socket" => Some(Scope::AbstractUnixSocket),
        "signal" => Some(Scope::Signal),
        _ => None,
    }
}

/// The rights `list` names, or an error naming the first unknown one (`field[i]`).
pub fn names<T: enumflags2::BitFlag>(
    list: &[String],
    field: &str,
    f: fn(&str) -> Option<T>,
) -> Result<BitFlags<T>> {
    let mut out = BitFlags::empty();
    for (i, n) in list.iter().enumerate() {
        out |= f(n).ok_or_else(|| {
            Error::spec(
                format!("{field}[{i}]"),
                format!("unknown access name {n:?}"),
            )
        })?;
    }
    Ok(out)
}

impl Policy {
    /// Every name known and every granted right handled: checked at create, before anything
    /// exists on the host.
    pub fn validate(&self, field: &str) -> Result<()> {
        let fs = names(
            &self.ruleset.handled_access_fs,
            &format!("{field}.ruleset.handledAccessFS"),
            fs_access,
        )?;
        let net = names(
            &self.ruleset.handled_access_network,
            &format!("{field}.ruleset.handledAccessNetwork"),
            net_access,
        )?;
        names(
            &self.ruleset.scoped,
            &format!("{field}.ruleset.scoped"),
            scope,
        )?;
        for (i, r) in self.rules.path_beneath.iter().enumerate() {
            let f = format!("{field}.rules.pathBeneath[{i}].allowedAccess");
            let a = names(&r.allowed_access, &f, fs_access)?;
            if !fs.contains(a) {
                return Err(Error::spec(
                    f,
                    "grants a right that handledAccessFS does not handle",
                ));
            }
        }
        for (i, r) in self.rules.net_port.iter().enumerate() {
            let f = format!("{field}.rules.netPort[{i}].allowedAccess");
            let a = names(&r.allowed_access, &f, net_access)?;
            if !net.contains(a) {
                return Err(Error::spec(
                    f,
                    "grants a right that handledAccessNetwork does not handle",
                ));
            }
        }
        Ok(())
    }
}

/// Reads the policy from the raw config (oci-spec drops unknown fields) and the annotation.
pub fn from_config(raw: &serde_json::Value) -> Result<Option<Landlock>> {
    let field = raw.get("process").and_then(|p| p.get("landlock"));
    let annotation = raw
        .get("annotations")
        .and_then(|a| a.get(ANNOTATION))
        .and_then(|v| v.as_str());
    match (field, annotation) {
        (Some(_), Some(_)) => Err(Error::spec(
            "process.landlock",
            format!("both process.landlock and the annotation {ANNOTATION} are set: keep one"),
        )),
        (Some(v), None) => {
            let p: Policy = crate::spec::json::from_value(v, "process.landlock")?;
            p.validate("process.landlock")?;
            Ok(Some(Landlock::Policy(p)))
        }
        (None, Some("auto")) => Ok(Some(Landlock::Auto)),
        (None, Some(text)) => {
            let field = format!("annotations.{ANNOTATION}");
            let p: Policy = crate::spec::json::parse_json(text, &field)?;
            p.validate(&field)?;
            Ok(Some(Landlock::Policy(p)))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_validates() {
        let example = include_str!("../../spec/examples/landlock.json");
        let raw = serde_json::json!({"process": {"landlock": serde_json::from_str::<serde_json::Value>(example).unwrap()}});
        assert!(matches!(
            from_config(&raw).unwrap(),
            Some(Landlock::Policy(_))
        ));
    }

    #[test]
    fn field_and_annotation_together_fail() {
        let raw = serde_json::json!({"process": {"landlock": {"ruleset": {}}}, "annotations": {ANNOTATION: "auto"}});
        let e = from_config(&raw).unwrap_err().to_string();
        assert!(
            e.contains("process.landlock") && e.contains(ANNOTATION),
            "{e}"
        );
    }

    #[test]
    fn unknown_names_and_unhandled_grants_fail() {
        let bad = serde_json::json!({"process": {"landlock": {"ruleset": {"handledAccessFS": ["write_everything"]}}}});
        assert!(from_config(&bad)
            .unwrap_err()
            .to_string()
            .contains("handledAccessFS[0]"));
        let unhandled = serde_json::json!({"process": {"landlock": {"ruleset": {"handledAccessFS": ["read_file"]},
            "rules": {"pathBeneath": [{"allowedAccess": ["write_file"], "paths": ["/tmp"]}]}}}});
        assert!(from_config(&unhandled)
            .unwrap_err()
            .to_string()
            .contains("pathBeneath[0]"));
        let annotation = serde_json::json!({"annotations": {ANNOTATION: "{\"ruleset\": {\"scoped\": [\"nope\"]}}"}});
        assert!(from_config(&annotation)
            .unwrap_err()
            .to_string()
            .contains("org.ward.landlock"));
    }
}
