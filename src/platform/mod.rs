//! ward on macOS and Windows: translators from an OCI Spec to the host's own isolation language,
//! and a thin executor per OS.
//!
//! The translators are pure functions of the spec (plus a [`Context`] naming the container and
//! where its files live), so they compile and are tested on every OS, and `ward translate`
//! prints their output anywhere. Only the executors are behind `cfg`:
//!
//! * [`seatbelt`]: an SBPL profile for `sandbox-exec` (macOS); `darwin_exec` runs it and
//!   `darwin` keeps the container's state between commands.
//! * [`hcs`]: HCS schema v2 ComputeSystem documents (Windows); `windows_exec` hands them to
//!   computecore.dll.
//!
//! Neither translator touches the file system: paths are resolved lexically against
//! [`Context::bundle`], which the caller canonicalizes.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub mod hcs;
pub mod seatbelt;

#[cfg(target_os = "macos")]
pub mod darwin;
#[cfg(target_os = "macos")]
pub mod darwin_exec;
#[cfg(windows)]
pub mod windows_exec;

pub use crate::spec::DARWIN_ALLOW_UNENFORCED;

pub type Result<T, E = PlatformError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The spec is malformed for this platform (wrong shape, out-of-range value).
    #[error("invalid configuration: {field}: {msg}")]
    Spec { field: String, msg: String },

    /// The spec asks for something the platform cannot enforce, and dropping it would weaken
    /// isolation. Each entry is (field, why).
    #[error("{}", refused_message(target, fields, *overridable))]
    Refused {
        target: &'static str,
        fields: Vec<(String, String)>,
        /// Whether `org.ward.darwin.allow-unenforced` can accept these fields.
        overridable: bool,
    },

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Kept whole inside ward's `Error` (which cannot name this type: it sits below this module).
impl From<PlatformError> for crate::error::Error {
    fn from(e: PlatformError) -> Self {
        crate::error::Error::Platform(Box::new(e))
    }
}

impl PlatformError {
    pub fn spec(field: impl Into<String>, msg: impl Into<String>) -> PlatformError {
        PlatformError::Spec {
            field: field.into(),
            msg: msg.into(),
        }
    }

    /// The refused field names, for tests and callers that want to list them.
    pub fn refused_fields(&self) -> Vec<&str> {
        match self {
            PlatformError::Refused { fields, .. } => {
                fields.iter().map(|(f, _)| f.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }
}

fn refused_message(target: &str, fields: &[(String, String)], overridable: bool) -> String {
    let list: Vec<String> = fields
        .iter()
        .map(|(f, why)| format!("{f} ({why})"))
        .collect();
    let mut msg = format!("{target} cannot enforce: {}", list.join("; "));
    if overridable {
        let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
        msg.push_str(&format!(
            "; to run without them, list them in the annotation {DARWIN_ALLOW_UNENFORCED}=\"{}\"",
            names.join(",")
        ));
    }
    msg
}

/// What the translators need besides the spec.
#[derive(Debug, Clone)]
pub struct Context {
    /// The container id: tags denials (`ward:<id>`) and names per-container files.
    pub id: String,
    /// The bundle directory, absolute and canonical; relative paths in the spec are joined to it.
    pub bundle: PathBuf,
    /// ward's state directory for this container (`<--root>/<id>`): tmpfs-type mounts on macOS
    /// become fresh directories under it.
    pub state_dir: PathBuf,
    /// Loopback TCP ports a container without network may still reach (ward's egress settings;
    /// none until those exist).
    pub loopback_ports: Vec<u16>,
}

/// The translation targets of `ward translate --to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Seatbelt,
    Hcs,
}

impl std::str::FromStr for Target {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Target> {
        match s {
            "seatbelt" => Ok(Target::Seatbelt),
            "hcs" => Ok(Target::Hcs),
            other => Err(PlatformError::spec(
                "--to",
                format!("{other:?} is not seatbelt or hcs"),
            )),
        }
    }
}

/// The bundle path the translators join relative paths to: canonical on Unix; on Windows only
/// made absolute, since canonicalize returns a `\\?\` verbatim path that HCS documents should
/// not carry. A path that cannot be resolved (a Windows bundle translated elsewhere) is kept.
pub fn bundle_path(bundle: &Path) -> PathBuf {
    let resolved = if cfg!(windows) {
        std::path::absolute(bundle)
    } else {
        std::fs::canonicalize(bundle)
    };
    resolved.unwrap_or_else(|_| bundle.to_path_buf())
}

/// Read `<bundle>/config.json` as a Spec for `target`'s platform, without the Linux-specific
/// checks of `spec::Bundle` (a Windows spec's `root.path` is a volume path, not a directory of
/// this host).
pub fn load_spec(bundle: &Path, target: Target) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| PlatformError::Io {
        op: "read",
        path: path.clone(),
        source,
    })?;
    parse_spec(&text, target)
}

/// Parse config.json text as a Spec with the required fields of `target`'s platform.
/// oci-spec 0.10 spells `windows.hyperv.utilityVMPath` as `utilityVmPath` (and would silently
/// drop the runtime-spec's spelling), so it is renamed first. `process.user` is required on
/// POSIX platforms only (runtime-spec config.md): a Windows config without it gets an empty
/// one (no username: the image's default user), since oci-spec always requires the field.
pub fn parse_spec(text: &str, target: Target) -> Result<Spec> {
    let mut raw: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| PlatformError::spec("config.json", e.to_string()))?;
    if let Some(process) = raw.get_mut("process").and_then(|p| p.as_object_mut()) {
        if !process.contains_key("user") {
            match target {
                Target::Hcs => {
                    process.insert("user".into(), serde_json::json!({}));
                }
                Target::Seatbelt => {
                    return Err(PlatformError::spec(
                        "process.user",
                        "missing: required on POSIX platforms (macOS)",
                    ))
                }
            }
        }
    }
    if let Some(hv) = raw
        .pointer_mut("/windows/hyperv")
        .and_then(|h| h.as_object_mut())
    {
        if let Some(path) = hv.remove("utilityVMPath") {
            hv.insert("utilityVmPath".into(), path);
        }
    }
    serde_json::from_value(raw).map_err(|e| PlatformError::spec("config.json", e.to_string()))
}

/// The printable translation of `spec` for `target`: an SBPL profile, or the HCS documents.
pub fn translate(target: Target, spec: &Spec, ctx: &Context) -> Result<String> {
    match target {
        Target::Seatbelt => Ok(seatbelt::plan(spec, ctx)?.profile),
        Target::Hcs => hcs::translate(spec, ctx)?.to_json(),
    }
}

/// `ward features` on macOS and Windows: the runtime-spec Features document of their
/// executors. Nothing is probed and little is claimed: no hooks, no Linux section.
pub fn features(os: &str) -> serde_json::Value {
    let unsafe_annotations: &[&str] = if os == "macOS" {
        &[DARWIN_ALLOW_UNENFORCED]
    } else {
        &[]
    };
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": [],
        "mountOptions": [],
        "potentiallyUnsafeConfigAnnotations": unsafe_annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_USER: &str = r#"{"ociVersion":"1.2.1","process":{"args":["x"],"cwd":"/"},
        "root":{"path":"rootfs"}}"#;

    #[test]
    fn user_is_required_on_posix_only() {
        let spec = parse_spec(NO_USER, Target::Hcs).expect("windows: optional");
        let user = spec.process().as_ref().expect("process").user();
        assert_eq!(user.username(), &None);
        let err = parse_spec(NO_USER, Target::Seatbelt)
            .expect_err("macOS: required")
            .to_string();
        assert!(err.contains("process.user"), "{err}");
    }
}
