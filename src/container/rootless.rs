//! Rootless mode (runc's `--rootless`): ward run by a user without root. What changes:
//! - the state root defaults to `$XDG_RUNTIME_DIR/ward` (runc: `$XDG_RUNTIME_DIR/runc`);
//! - a cgroup the user may not make is skipped with a warning, unless the config asks for
//!   limits or names its own `linux.cgroupsPath` (runc's cgroupfs rule: then it is an error);
//! - the uid/gid maps are written by an unprivileged parent (`init::idmap`).
//!
//! Everything else (namespaces, mounts, seccomp, Landlock, the memfd copy of ward) works the
//! same in a user namespace the caller owns.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};
use crate::policy::cgroups::Cgroup;

/// The state root when `--root` is not given: `/run/ward` for root, `$XDG_RUNTIME_DIR/ward`
/// for any other user. Without XDG_RUNTIME_DIR a non-root user is told what to set (runc falls
/// back to /run/runc and then fails with a bare "permission denied").
pub fn default_root(system: &str) -> Result<PathBuf> {
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from(system));
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() && Path::new(&dir).is_absolute() => {
            Ok(Path::new(&dir).join("ward"))
        }
        Some(dir) if !dir.is_empty() => Err(Error::Host(format!(
            "XDG_RUNTIME_DIR {:?} is not an absolute path; ward keeps a non-root user's state \
             in $XDG_RUNTIME_DIR/ward (or pass --root DIR)",
            Path::new(&dir)
        ))),
        _ => Err(Error::Host(format!(
            "XDG_RUNTIME_DIR is not set: ward run by uid {} keeps its state in \
                 $XDG_RUNTIME_DIR/ward; set it (e.g. to /run/user/{}) or pass --root DIR",
            nix::unistd::geteuid(),
            nix::unistd::geteuid()
        ))),
    }
}

/// `--rootless true|false|auto` (runc's meaning): auto, the default, is rootless when ward
/// runs as a user other than root, or as root of a user namespace that is not the host's.
pub fn decide(flag: Option<&str>) -> Result<bool> {
    match flag {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        None | Some("auto") => Ok(!nix::unistd::geteuid().is_root() || in_user_namespace()),
        Some(other) => Err(Error::spec(
            "--rootless",
            format!("{other:?} is not true, false or auto"),
        )),
    }
}

/// Whether this process is in a user namespace other than the host's (its uid_map is not the
/// identity over every id), as runc's `userns.RunningInUserNS`.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let f: Vec<&str> = m.split_whitespace().collect();
        f != ["0", "0", "4294967295"]
    })
}

/// Makes the container's cgroup (true), or, rootless, skips it where the user may not write
/// (false), and the container runs in the caller's cgroup. runc's rule: permission errors are
/// ignored only when the config names no `linux.cgroupsPath` and asks for no limits; otherwise
/// the error says which.
pub fn create_cgroup(
    cgroup: &Cgroup,
    res: Option<&LinuxResources>,
    explicit_path: bool,
    rootless: bool,
) -> Result<bool> {
    // Nothing writable and nothing asked for: skipped at once (trying every hierarchy costs
    // a create and a cleanup each, most of a sandbox's start).
    if rootless
        && !explicit_path
        && res.and_then(asked_limit).is_none()
        && !cgroup.any_parent_writable()
    {
        tracing::warn!(
            "rootless: no cgroup for the container (no writable parent for {:?}); it runs in \
             the caller's cgroup, without limits (as runc's rootless mode)",
            cgroup.path
        );
        return Ok(false);
    }
    let err = match cgroup.create(res) {
        Ok(()) => return Ok(true),
        Err(e) => e,
    };
    if !rootless || !is_permission(&err) {
        return Err(err);
    }
    // Whatever was made before the refusal (one v1 hierarchy may be delegated, another not).
    let _ = cgroup.destroy();
    if explicit_path {
        return Err(Error::spec(
            "linux.cgroupsPath",
            format!("rootless: cannot make cgroup {:?}: {err}", cgroup.path),
        ));
    }
    if let Some(field) = res.and_then(asked_limit) {
        return Err(Error::spec(
            format!("linux.resources.{field}"),
            format!(
                "rootless: cannot set {field} limit: container could not join or create \
                 cgroup ({err}); drop the limit or delegate a cgroup to this user"
            ),
        ));
    }
    tracing::warn!(
        "rootless: no cgroup for the container ({err}); it runs in the caller's cgroup, \
         without limits (as runc's rootless mode)"
    );
    Ok(false)
}

fn is_permission(e: &Error) -> bool {
    let errno = match e {
        Error::Io { source, .. } => source.raw_os_error(),
        Error::Sys { source, .. } => Some(*source as i32),
        _ => None,
    };
    matches!(errno, Some(libc::EACCES | libc::EPERM | libc::EROFS))
}

/// The first section of `linux.resources` that sets a limit (devices rules do not count:
/// runc ignores them rootless, where the device cgroup cannot be written anyway).
fn asked_limit(res: &LinuxResources) -> Option<String> {
    let res = crate::policy::cgroups::unset_zeros(res);
    let v = serde_json::to_value(&res).ok()?;
    let obj = v.as_object()?;
    obj.iter()
        .filter(|(k, _)| k.as_str() != "devices")
        .find(|(_, val)| match val {
            serde_json::Value::Null => false,
            serde_json::Value::Object(o) => o.values().any(|x| !x.is_null()),
            serde_json::Value::Array(a) => !a.is_empty(),
            _ => true,
        })
        .map(|(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_that_need_a_cgroup() {
        let none: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        assert_eq!(asked_limit(&none), None);
        let zeros: LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":0},"pids":{"limit":0}}"#).unwrap();
        assert_eq!(asked_limit(&zeros), None);
        let mem: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":1048576}}"#).unwrap();
        assert_eq!(asked_limit(&mem).as_deref(), Some("memory"));
    }

    #[test]
    fn flag_values() {
        assert!(decide(Some("true")).unwrap());
        assert!(!decide(Some("false")).unwrap());
        assert!(decide(Some("yes")).is_err());
    }
}
