//! Spec → Seatbelt (SBPL) profile for macOS's `sandbox-exec`.
//!
//! Two steps. [`classify`] walks the spec as JSON and files every field as honoured,
//! approximated or refused on macOS (the table lives in `spec/platforms.md`; a field this code
//! does not know is refused, so new spec fields fail closed). [`plan`] then turns the honoured
//! parts into a profile (see `profile.rs`) and the process parameters the executor needs.
//!
//! macOS has no mount namespace and no chroot for an unprivileged process, so a "container" here
//! is a process tree confined by the sandbox: it may read and execute the root and the mount
//! sources (under their host paths), write only where the spec makes a path writable, and reach
//! the network only when the spec does not ask for a new network namespace.

use std::path::{Component, Path};

use oci_spec::runtime::Spec;
use serde_json::Value;

use super::{Context, PlatformError, Result, DARWIN_ALLOW_UNENFORCED};

mod classify;
mod profile;
#[cfg(test)]
mod tests;

pub use classify::{classify, Findings};
pub use profile::{KNOWN_FILTERS, KNOWN_OPERATIONS};

/// Everything the macOS executor needs: the profile and the process to run under it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The complete SBPL profile (`sandbox-exec -p`).
    pub profile: String,
    /// The root's host path.
    pub root: String,
    pub args: Vec<String>,
    /// `KEY=VALUE`, with `PATH` entries moved under the root.
    pub env: Vec<String>,
    /// `process.cwd` under the root.
    pub cwd: String,
    /// (macOS resource number, soft, hard).
    pub rlimits: Vec<(i32, u64, u64)>,
    pub umask: Option<u32>,
    /// Per-container directories standing in for tmpfs mounts: created by the executor before
    /// the process starts, removed on delete.
    pub fresh_dirs: Vec<String>,
    /// Fields approximated, for `state` and the profile's header.
    pub approximated: Vec<String>,
    /// Refused fields the user accepted through `org.ward.darwin.allow-unenforced`.
    pub unenforced: Vec<String>,
}

/// Where a mount's content comes from on macOS.
enum MountKind {
    Bind,
    Tmpfs,
    /// Not provided (Linux pseudo file systems, block devices, overlay…): no rule at all.
    Absent,
}

fn mount_kind(typ: Option<&str>, options: &[String]) -> MountKind {
    if typ == Some("bind") || options.iter().any(|o| o == "bind" || o == "rbind") {
        MountKind::Bind
    } else if typ == Some("tmpfs") {
        MountKind::Tmpfs
    } else {
        MountKind::Absent
    }
}

/// Translate `spec` into a profile and a process description.
pub fn plan(spec: &Spec, ctx: &Context) -> Result<Plan> {
    let value = serde_json::to_value(spec)
        .map_err(|e| PlatformError::spec("config.json", e.to_string()))?;
    let findings = classify(&value);
    let accepted = allowed_unenforced(spec);
    let (unenforced, refused): (Vec<_>, Vec<_>) = findings
        .refused
        .into_iter()
        .partition(|(f, _)| accepted.iter().any(|a| a == f));
    if !refused.is_empty() {
        return Err(PlatformError::Refused {
            target: "seatbelt (macOS)",
            fields: refused,
            overridable: true,
        });
    }

    let root_spec = spec
        .root()
        .as_ref()
        .ok_or_else(|| PlatformError::spec("root", "missing"))?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| PlatformError::spec("process", "missing"))?;
    let args = process.args().clone().unwrap_or_default();
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(PlatformError::spec("process.args", "must name a program"));
    }
    let root = host_path(&ctx.bundle, root_spec.path(), "root.path")?;
    let mut p = profile::Profile::new(&ctx.id, &root);
    p.root_writable = !root_spec.readonly().unwrap_or(false);
    p.terminal = process.terminal().unwrap_or(false);

    let mut fresh_dirs = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let options = m.options().clone().unwrap_or_default();
        let ro = options.iter().any(|o| o == "ro" || o == "rro");
        let noexec = options.iter().any(|o| o == "noexec");
        let dir = match mount_kind(m.typ().as_deref(), &options) {
            MountKind::Absent => continue,
            MountKind::Tmpfs => {
                let dir = host_path(
                    &ctx.state_dir,
                    Path::new(&format!("tmpfs/{i}")),
                    "state dir",
                )?;
                fresh_dirs.push(dir.clone());
                dir
            }
            MountKind::Bind => {
                let source = m.source().as_ref().ok_or_else(|| {
                    PlatformError::spec(format!("mounts[{i}].source"), "missing for a bind mount")
                })?;
                host_path(&ctx.bundle, source, &format!("mounts[{i}].source"))?
            }
        };
        p.read.push(dir.clone());
        if !ro {
            p.write.push(dir.clone());
        }
        if !noexec {
            p.exec.push(dir);
        }
    }

    let linux = spec.linux().as_ref();
    for path in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        p.deny_write.push(in_root(&root, path));
    }
    for path in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        p.deny_read.push(in_root(&root, path));
    }
    let new_netns = linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|ns| ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network);
    p.network = if new_netns {
        profile::Network::Loopback(ctx.loopback_ports.clone())
    } else {
        profile::Network::Host
    };
    p.approximated = findings.approximated.clone();
    p.unenforced = unenforced.iter().map(|(f, _)| f.clone()).collect();

    let cwd = in_root(&root, &process.cwd().to_string_lossy());
    let env = process
        .env()
        .iter()
        .flatten()
        .map(|kv| match kv.strip_prefix("PATH=") {
            Some(dirs) => {
                let moved: Vec<String> = dirs
                    .split(':')
                    .map(|d| {
                        if d.starts_with('/') {
                            in_root(&root, d)
                        } else {
                            d.to_string()
                        }
                    })
                    .collect();
                format!("PATH={}", moved.join(":"))
            }
            None => kv.clone(),
        })
        .collect();
    let rlimits = process
        .rlimits()
        .iter()
        .flatten()
        .filter_map(|r| {
            let name = serde_json::to_value(r.typ()).ok()?;
            Some((classify::darwin_rlimit(name.as_str()?)?, r.soft(), r.hard()))
        })
        .collect();
    Ok(Plan {
        profile: p.render()?,
        root,
        args,
        env,
        cwd,
        rlimits,
        umask: process.user().umask(),
        fresh_dirs,
        approximated: findings.approximated,
        unenforced: p.unenforced,
    })
}

/// The fields listed in `org.ward.darwin.allow-unenforced` (comma-separated).
fn allowed_unenforced(spec: &Spec) -> Vec<String> {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(DARWIN_ALLOW_UNENFORCED))
        .map(|v| {
            v.split(',')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// A host path for the profile: joined to `base` when relative, `.`/`..` resolved lexically,
/// UTF-8 without control characters (an SBPL string literal cannot carry them faithfully), and
/// the macOS firmlinks `/tmp`, `/var`, `/etc` spelled as `/private/...` because the sandbox
/// matches resolved paths.
fn host_path(base: &Path, path: &Path, field: &str) -> Result<String> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            Component::Normal(s) => {
                let s = s
                    .to_str()
                    .ok_or_else(|| PlatformError::spec(field, "path is not UTF-8"))?;
                parts.push(s.to_string());
            }
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir => {}
            Component::Prefix(_) => return Err(PlatformError::spec(field, "not a macOS path")),
        }
    }
    if !joined.is_absolute() {
        return Err(PlatformError::spec(
            field,
            "the bundle directory must be absolute",
        ));
    }
    if parts.iter().any(|p| p.chars().any(char::is_control)) {
        return Err(PlatformError::spec(
            field,
            "path contains a control character",
        ));
    }
    if matches!(
        parts.first().map(String::as_str),
        Some("tmp" | "var" | "etc")
    ) {
        parts.insert(0, "private".into());
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The host path of a container path: lexically normalised with `..` stopping at the
/// container's `/`, so no spec path can name something outside the root. Control characters
/// are replaced by `?`: such a rule then matches nothing, which only denies more.
fn in_root(root: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let inner: String = parts
        .join("/")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if inner.is_empty() {
        root.to_string()
    } else if root == "/" {
        format!("/{inner}")
    } else {
        format!("{root}/{inner}")
    }
}

/// Every ancestor directory of `path` ("/a/b/c" → "/", "/a", "/a/b").
fn ancestors(path: &str) -> Vec<String> {
    let mut out = vec!["/".to_string()];
    let mut acc = String::new();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for seg in segs.iter().take(segs.len().saturating_sub(1)) {
        acc.push('/');
        acc.push_str(seg);
        out.push(acc.clone());
    }
    out
}

/// Whether a JSON value asks for nothing (absent, empty, or `false`).
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}
