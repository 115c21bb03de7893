//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient scope
//! unit systemd makes and owns, `<prefix>-<name>.scope` in the slice `linux.cgroupsPath` names
//! (`slice:prefix:name`, runc's form), and its limits are unit properties, so systemd keeps
//! them across a `daemon-reload` instead of undoing them.
//!
//! - here: the path's parsing, systemd's slice nesting, the unit's name and its cgroup;
//! - `props`: `linux.resources` as unit properties (runc's conversions);
//! - `dbus`: the calls to systemd's manager (StartTransientUnit, SetUnitProperties, StopUnit).
//!
//! What systemd has no property for is written into the scope's cgroup by the v2 driver
//! (`Cgroup::apply`), as runc does. Pure cgroup v2 hosts only. Root talks to PID 1; a non-root
//! caller to its own user instance (rootless, as runc), in whose delegated subtree the scope
//! lives.

pub mod dbus;
pub mod props;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const FIELD: &str = "linux.cgroupsPath";

/// A container's scope: the unit, the slice it lives in, and its cgroup below the v2 root.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Scope {
    /// `<prefix>-<name>.scope`.
    pub unit: String,
    /// The parent slice unit (`system.slice`, `kubepods-burstable-pod<uid>.slice`).
    pub slice: String,
    /// Rootless: the uid whose user instance of systemd owns the scope (over its session bus);
    /// its units live below `/user.slice/user-<uid>.slice/user@<uid>.service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<u32>,
}

impl Scope {
    /// Parses `linux.cgroupsPath` in the systemd form `slice:prefix:name` (runc's rules): an
    /// empty slice is `system.slice` (`user.slice` rootless), an empty name the container's id;
    /// no path at all is `:ward:<id>`. Any other form is an error naming the value.
    pub fn parse(path: Option<&str>, id: &str, rootless: bool) -> Result<Scope> {
        let raw = path.filter(|p| !p.is_empty());
        let Some(raw) = raw else {
            return Scope::parse(Some(&format!(":ward:{id}")), id, rootless);
        };
        let parts: Vec<&str> = raw.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(Error::spec(
                FIELD,
                format!(
                    "{raw:?}: with --systemd-cgroup it must be of the form \"slice:prefix:name\""
                ),
            ));
        };
        let slice = match slice {
            "" if rootless => "user.slice",
            "" => "system.slice",
            s => s,
        };
        expand_slice(slice)?;
        let name = if name.is_empty() { id } else { name };
        if name.ends_with(".slice") {
            return Err(Error::Unsupported(format!(
                "{FIELD} {raw:?}: a container in a slice unit of its own (name ending in .slice)"
            )));
        }
        let unit = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        if unit.contains('/') || unit.chars().any(|c| c.is_control()) {
            return Err(Error::spec(
                FIELD,
                format!("{raw:?}: {unit:?} is not a valid unit name"),
            ));
        }
        Ok(Scope {
            unit,
            slice: slice.to_string(),
            user: rootless.then(|| nix::unistd::geteuid().as_raw()),
        })
    }

    /// The scope's cgroup below the v2 root, absolute (`/system.slice/x-y.scope`).
    pub fn cgroup_path(&self) -> String {
        // The slice was checked at parse time.
        let slice = expand_slice(&self.slice).unwrap_or_default();
        match self.user {
            // systemd's own layout for a user instance (user@.service in user-<uid>.slice);
            // start_scope checks it against the ControlGroup systemd reports.
            Some(uid) => format!(
                "/user.slice/user-{uid}.slice/user@{uid}.service{slice}{}",
                self.unit
            ),
            None => format!("{slice}{}", self.unit),
        }
    }
}

/// Where systemd puts a slice (`a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice/`, `-.slice`
/// -> `/`), refusing names systemd refuses (no `.slice` suffix, a `/`, an empty component).
pub fn expand_slice(slice: &str) -> Result<String> {
    let bad = |why: &str| Error::spec(FIELD, format!("slice {slice:?}: {why}"));
    let Some(base) = slice.strip_suffix(".slice") else {
        return Err(bad("a slice name ends in .slice"));
    };
    if slice.contains('/') {
        return Err(bad("a slice name has no \"/\""));
    }
    if slice == "-.slice" {
        return Ok("/".into());
    }
    if base.is_empty() || base.split('-').any(str::is_empty) {
        return Err(bad("empty component (a leading, trailing or double \"-\")"));
    }
    let mut out = String::from("/");
    let mut acc = String::new();
    for part in base.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        out.push_str(&acc);
        out.push_str(".slice/");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_nest_as_systemd_does() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice/");
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(
            expand_slice("kubepods-burstable-pod1.slice").unwrap(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
        );
        for bad in [
            "notaslice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "ward/test.slice",
            ".slice",
        ] {
            let e = expand_slice(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn paths_and_runc_defaults() {
        let s = Scope::parse(Some("system.slice:docker:abc"), "id", false).unwrap();
        assert_eq!(s.unit, "docker-abc.scope");
        assert_eq!(s.cgroup_path(), "/system.slice/docker-abc.scope");
        let s = Scope::parse(
            Some("kubepods-besteffort-podX.slice:cri-containerd:c1"),
            "id",
            false,
        )
        .unwrap();
        assert_eq!(
            s.cgroup_path(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podX.slice/cri-containerd-c1.scope"
        );
        let s = Scope::parse(Some(":ward-test:dflt"), "id", false).unwrap();
        assert_eq!(s.cgroup_path(), "/system.slice/ward-test-dflt.scope");
        // Rootless: the caller's user instance, runc's default slice user.slice inside it.
        let s = Scope::parse(Some(":p:"), "id", true).unwrap();
        let uid = nix::unistd::geteuid();
        assert_eq!(
            s.cgroup_path(),
            format!("/user.slice/user-{uid}.slice/user@{uid}.service/user.slice/p-id.scope")
        );
        let s = Scope::parse(None, "c9", false).unwrap();
        assert_eq!(s.unit, "ward-c9.scope");
        for bad in ["/ward-test/bad", "system.slice:ward-test", "a:b:c:d"] {
            let e = Scope::parse(Some(bad), "id", false)
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad), "{e}");
        }
        let e = Scope::parse(Some("notaslice:p:n"), "id", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("notaslice"), "{e}");
    }
}
