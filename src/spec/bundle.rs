//! Loading and validating a bundle's config.json.
//!
//! Deserialisation goes through `serde_path_to_error`, so a type-wrong field is reported with its
//! full path (`process.user.uid: invalid type: string "zero", expected u32`). Semantic checks that
//! the OCI runtime-spec states as MUSTs are done here, before anything is created on the host.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::error::{excerpt, Error, IoContext, Result};
use crate::spec::json::{from_value, parse_json};

/// The annotation that makes the rootfs the host's own view: the whole tree of `/` bound onto
/// `root.path` (an empty directory), read-only all the way down when `root.readonly`
/// (`ward sandbox`).
pub const HOST_VIEW: &str = "org.ward.rootfs.hostView";

/// Whether the config asks for the host's own view as its rootfs (`HOST_VIEW` = "true").
pub fn host_view(spec: &Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(HOST_VIEW))
        .is_some_and(|v| v == "true")
}

/// A validated bundle: the spec, and the absolute paths it refers to.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// config.json as written: ward's extensions live in fields oci-spec does not know.
    pub raw: serde_json::Value,
    /// `process.landlock` or the `org.ward.landlock` annotation, validated.
    pub landlock: Option<crate::spec::landlock::Landlock>,
    /// `process.interception` or the `org.ward.interception` annotation, validated.
    pub interception: Option<crate::spec::interception::Interception>,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).io("open bundle", dir)?;
        let config = dir.join("config.json");
        // Wiped when dropped: it holds the env's values (credentials among them, issue 17).
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(&config).io("read", &config)?);
        // Parsed once; the typed spec is read from the same tree (field paths in errors kept).
        let raw: serde_json::Value = parse_json(&text, "config.json")?;
        Self::from_raw(dir, raw)
    }

    /// A bundle whose config is given rather than read from `dir/config.json` (`ward sandbox`
    /// builds its own: the env it carries is never written to a file).
    pub fn from_raw(dir: PathBuf, mut raw: serde_json::Value) -> Result<Bundle> {
        // Anything but an object is refused here, naming the file: read as one below (as
        // `raw["process"]` once did) it would panic.
        let Some(top) = raw.as_object_mut() else {
            return Err(Error::spec(
                "config.json",
                format!("must be a JSON object, not {}", json_kind(&raw)),
            ));
        };
        if let Some(process) = top.get_mut("process") {
            crate::spec::capabilities::skip_unknown(process);
        }
        let spec: Spec = from_value(&raw, "config.json")?;
        let rootfs = rootfs_of(&dir, &spec)?;
        let landlock = crate::spec::landlock::from_config(&raw)?;
        let interception = crate::spec::interception::from_config(&raw)?;
        let bundle = Bundle {
            dir,
            rootfs,
            spec,
            raw,
            landlock,
            interception,
        };
        bundle.validate()?;
        Ok(bundle)
    }

    pub fn process(&self) -> Result<&Process> {
        self.spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::spec("process", "missing (required to create a container)"))
    }

    /// The namespaces of `linux.namespaces`, as (type, optional path to join).
    pub fn namespaces(&self) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
            .into_iter()
            .map(|ns| (ns.typ(), ns.path().clone()))
            .collect()
    }

    pub fn has_new_namespace(&self, typ: LinuxNamespaceType) -> bool {
        self.namespaces()
            .iter()
            .any(|(t, p)| *t == typ && p.is_none())
    }

    pub fn has_namespace(&self, typ: LinuxNamespaceType) -> bool {
        self.namespaces().iter().any(|(t, _)| *t == typ)
    }

    fn validate(&self) -> Result<()> {
        let process = self.process()?;
        match process.args() {
            Some(args) if !args.is_empty() && !args[0].is_empty() => {}
            _ => {
                return Err(Error::spec(
                    "process.args",
                    "must name at least one argument",
                ))
            }
        }
        if !process.cwd().is_absolute() {
            return Err(Error::spec(
                "process.cwd",
                format!(
                    "{:?} must be an absolute path",
                    excerpt(&process.cwd().to_string_lossy())
                ),
            ));
        }
        if let Some(env) = process.env() {
            for (i, e) in env.iter().enumerate() {
                if !e.contains('=') || e.starts_with('=') {
                    return Err(Error::spec(
                        format!("process.env[{i}]"),
                        format!("{:?} is not of the form KEY=value", excerpt(e)),
                    ));
                }
            }
        }
        for (i, m) in self.spec.mounts().iter().flatten().enumerate() {
            if !m.destination().is_absolute() {
                return Err(Error::spec(
                    format!("mounts[{i}].destination"),
                    format!(
                        "{:?} must be an absolute path",
                        excerpt(&m.destination().to_string_lossy())
                    ),
                ));
            }
        }
        let mut seen = HashSet::new();
        for (typ, path) in self.namespaces() {
            if !seen.insert(typ) {
                return Err(Error::spec(
                    "linux.namespaces",
                    format!("namespace {typ} is listed twice"),
                ));
            }
            if let Some(p) = path {
                if !p.is_absolute() {
                    return Err(Error::spec(
                        format!("linux.namespaces[{typ}].path"),
                        format!("{p:?} must be an absolute path"),
                    ));
                }
            }
        }
        let linux = self.spec.linux().as_ref();
        let maps = linux.map(|l| {
            (
                l.uid_mappings().as_ref().map_or(0, |m| m.len()),
                l.gid_mappings().as_ref().map_or(0, |m| m.len()),
            )
        });
        if self.has_new_namespace(LinuxNamespaceType::User) {
            if maps.unwrap_or((0, 0)) == (0, 0) {
                return Err(Error::spec(
                    "linux.uidMappings",
                    "a new user namespace needs uidMappings and gidMappings",
                ));
            }
            self.check_user_mapped()?;
        } else if maps.is_some_and(|(u, g)| u + g > 0) {
            return Err(Error::spec(
                "linux.uidMappings",
                "uid/gid mappings need a new user namespace in linux.namespaces",
            ));
        }
        if linux.and_then(|l| l.time_offsets().as_ref()).is_some()
            && !self.has_new_namespace(LinuxNamespaceType::Time)
        {
            return Err(Error::spec(
                "linux.timeOffsets",
                "time offsets need a new time namespace in linux.namespaces",
            ));
        }
        if self.spec.hostname().is_some() && !self.has_namespace(LinuxNamespaceType::Uts) {
            return Err(Error::spec(
                "hostname",
                "setting the hostname needs a uts namespace",
            ));
        }
        self.refuse_runtimes_own_namespaces()?;
        if !self.has_namespace(LinuxNamespaceType::Mount) {
            self.validate_without_mountns()?;
        }
        if let Some(res) = linux.and_then(|l| l.resources().as_ref()) {
            crate::spec::resources::check(res)?;
        }
        if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
            crate::spec::sysctl::validate(
                sysctl.keys(),
                &self.namespaces(),
                self.spec.hostname().is_some(),
                crate::spec::sysctl::is_runtime_namespace,
            )?;
        }
        Ok(())
    }
}

impl Bundle {
    /// A namespace joined by path that is the one ward itself runs in is the host's (or the
    /// engine's): init would pivot and detach the root of a joined mount namespace, and set
    /// the hostname of a joined UTS one. Refused, naming the field (runc does both).
    /// In a new user namespace process.user must be an id the maps give it (else setresuid
    /// fails EINVAL deep in init, naming nothing).
    fn check_user_mapped(&self) -> Result<()> {
        let (Some(linux), Some(p)) = (self.spec.linux().as_ref(), self.spec.process().as_ref())
        else {
            return Ok(());
        };
        let mapped = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>, id: u32| {
            maps.iter().flatten().any(|m| {
                id >= m.container_id()
                    && u64::from(id) < u64::from(m.container_id()) + u64::from(m.size())
            })
        };
        let user = p.user();
        let checks = [
            (
                "process.user.uid",
                "linux.uidMappings",
                user.uid(),
                linux.uid_mappings(),
            ),
            (
                "process.user.gid",
                "linux.gidMappings",
                user.gid(),
                linux.gid_mappings(),
            ),
        ];
        for (field, maps_field, id, maps) in checks {
            if !mapped(maps, id) {
                return Err(Error::spec(
                    field,
                    format!("{id} is not mapped by {maps_field} in the new user namespace"),
                ));
            }
        }
        Ok(())
    }

    fn refuse_runtimes_own_namespaces(&self) -> Result<()> {
        use crate::spec::sysctl::is_runtime_namespace;
        for (typ, path) in self.namespaces() {
            let Some(path) = path else { continue };
            let sets_names = self.spec.hostname().is_some() || self.spec.domainname().is_some();
            let refused = match typ {
                LinuxNamespaceType::Mount => Some((
                    "linux.namespaces[mount].path".to_string(),
                    "is the runtime's own mount namespace: the container's root would replace it",
                )),
                LinuxNamespaceType::Uts if sets_names => Some((
                    if self.spec.hostname().is_some() {
                        "hostname"
                    } else {
                        "domainname"
                    }
                    .to_string(),
                    "would be set in the runtime's own uts namespace (linux.namespaces[uts].path)",
                )),
                _ => None,
            };
            if let Some((field, msg)) = refused {
                if is_runtime_namespace(typ, &path)? {
                    return Err(Error::spec(field, format!("{}: {msg}", path.display())));
                }
            }
        }
        Ok(())
    }

    /// No mount namespace (allowed, as by runc): the container shares the caller's mount
    /// table, so whatever would be mounted there — and left there, as runc leaves it — is
    /// refused, naming the field.
    fn validate_without_mountns(&self) -> Result<()> {
        const WHY: &str = "needs a mount namespace in linux.namespaces: without one it would be \
                           mounted in the caller's (the host's) mount table";
        let linux = self.spec.linux().as_ref();
        let listed = |v: Option<usize>| v.is_some_and(|n| n > 0);
        let refused = [
            ("mounts", listed(self.spec.mounts().as_ref().map(Vec::len))),
            (
                "linux.maskedPaths",
                listed(linux.and_then(|l| l.masked_paths().as_ref().map(Vec::len))),
            ),
            (
                "linux.readonlyPaths",
                listed(linux.and_then(|l| l.readonly_paths().as_ref().map(Vec::len))),
            ),
            (
                "linux.devices",
                listed(linux.and_then(|l| l.devices().as_ref().map(Vec::len))),
            ),
            (
                "linux.rootfsPropagation",
                linux.is_some_and(|l| l.rootfs_propagation().is_some()),
            ),
            (
                "root.readonly",
                self.spec
                    .root()
                    .as_ref()
                    .is_some_and(|r| r.readonly() == Some(true)),
            ),
        ];
        match refused.iter().find(|(_, set)| *set) {
            Some((field, _)) => Err(Error::spec(*field, WHY)),
            None => Ok(()),
        }
    }
}

/// What a JSON value is, for an error.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn rootfs_of(bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::spec("root", "missing"))?;
    let path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let path = std::fs::canonicalize(&path)
        .map_err(|e| Error::spec("root.path", format!("rootfs {}: {e}", path.display())))?;
    if !path.is_dir() {
        return Err(Error::spec(
            "root.path",
            format!("rootfs {} is not a directory", path.display()),
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_error_names_the_field() {
        let err = parse_json::<Spec>(
            r#"{"ociVersion":"1.0.2","process":{"user":{"uid":"zero"},"cwd":"/"}}"#,
            "config.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("process.user.uid"), "{err}");
    }

    /// Found by the fuzz target (issue 21): a config.json that is JSON but not an object
    /// (`[]`, `"x"`, `1`) panicked in `from_raw` (`raw["process"]` indexes only objects).
    #[test]
    fn a_config_that_is_not_an_object_is_refused_naming_the_file() {
        for text in ["[]", "[{\"process\": {}}]", "\"x\"", "1", "true"] {
            let raw: serde_json::Value = parse_json(text, "config.json").unwrap();
            let err = Bundle::from_raw(PathBuf::from("/nonexistent"), raw).unwrap_err();
            let Error::Spec { field, msg } = &err else {
                panic!("{text}: {err:?}");
            };
            assert_eq!(field, "config.json", "{text}: {err}");
            assert!(msg.contains("object"), "{text}: {err}");
        }
    }

    /// Found by the fuzz target (issue 21): text after the config's JSON value was ignored, so
    /// `{…}{…}` ran the first object and dropped the second without a word.
    #[test]
    fn text_after_the_json_value_is_an_error() {
        for text in ["{} x", "{}{\"process\": {}}", "null,", "[] ]"] {
            let err = parse_json::<serde_json::Value>(text, "config.json")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("config.json") && err.contains("line 1 column"),
                "{text}: {err}"
            );
        }
        assert!(parse_json::<serde_json::Value>("{}\n\t ", "config.json").is_ok());
    }

    /// Found by the fuzz target (issue 21): serde's type errors quote the input whole, so a
    /// 5,000-byte string came back in full; the echo is capped (ECHO_MAX), the field and the
    /// position stay.
    #[test]
    fn a_long_value_of_the_wrong_type_is_not_echoed_whole() {
        let long = "x".repeat(5000);
        let text = format!(r#"{{"process": {{"user": {{"uid": "{long}"}}}}}}"#);
        let err = parse_json::<Spec>(&text, "config.json")
            .unwrap_err()
            .to_string();
        assert!(err.len() < 600, "{} bytes: {err}", err.len());
        assert!(err.contains("process.user.uid"), "{err}");
        assert!(err.contains("line 1 column"), "{err}");
        assert!(err.contains("bytes in all"), "{err}");
    }

    #[test]
    fn malformed_json_is_an_error() {
        let err = parse_json::<Spec>("{not json", "config.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.json"), "{err}");
    }
}
