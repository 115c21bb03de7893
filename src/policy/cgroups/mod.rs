//! Cgroups: where a container's processes live and what they may use.
//!
//! One interface over three host layouts, so the rest of ward does not care which it runs on:
//! - pure v2 (`/sys/fs/cgroup` is cgroup2): one directory, every controller, device rules as an
//!   eBPF program;
//! - hybrid (v1 controllers plus an empty v2 at `/sys/fs/cgroup/unified`, like this host): a
//!   directory in every v1 hierarchy (limits applied there) and one in `unified` (placement,
//!   freeze, kill, CLONE_INTO_CGROUP), as runc does;
//! - legacy v1 only.
//!
//! The host's cgroup mounts are only read, never changed.

pub mod devices;
pub mod exec;
pub mod hierarchy;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

pub use devices::Rule;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

const ROOT: &str = "/sys/fs/cgroup";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Unified,
    Hybrid,
    Legacy,
}

pub fn detect() -> Mode {
    if crate::policy::cgroups::hierarchy::host_is_unified() {
        Mode::Unified
    } else if Path::new(ROOT).join("unified/cgroup.procs").exists() {
        Mode::Hybrid
    } else {
        Mode::Legacy
    }
}

/// A container's cgroup: the layout and its path below each hierarchy root. Stored in the
/// container's state so every later command finds the same directories.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cgroup {
    pub mode: Mode,
    /// Normalised cgroupsPath: absolute, or relative to ward's own cgroup. With the systemd
    /// driver, the scope's cgroup (absolute), so that every later command (`ps`, `kill --all`,
    /// `pause`, `events`) reads the files without asking systemd.
    pub path: String,
    /// `--systemd-cgroup`: the transient scope unit systemd owns (`update` and `delete` talk
    /// to systemd about it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Scope>,
    /// For a relative `path`: /proc/self/cgroup of the ward that created the container, so
    /// that every later command finds the directories below *that* process's cgroups, not
    /// below its own (an engine may run `delete` from another cgroup than `create`; runc keeps
    /// the absolute paths for the same reason). None in states written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// Where a container's cgroup directories are: the normalised path and, for a relative one,
/// the creating ward's /proc/self/cgroup (see `Cgroup::base`).
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    pub path: &'a str,
    pub base: Option<&'a str>,
}

/// Normalises `linux.cgroupsPath` the way runc's cgroupfs driver reads it: an absolute path
/// below each hierarchy root, a relative one below the runtime's own cgroup, none = `<id>`
/// below the runtime's own cgroup. `..` components are refused (they would escape).
pub fn normalise(path: Option<&Path>, id: &str) -> Result<String> {
    let raw = match path {
        Some(p) if !p.as_os_str().is_empty() => p.to_string_lossy().into_owned(),
        _ => id.to_string(),
    };
    if raw.contains(':') {
        return Err(Error::Unsupported(format!(
            "linux.cgroupsPath {raw:?} in the systemd form (slice:prefix:name)"
        )));
    }
    let abs = raw.starts_with('/');
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(Error::spec(
            "linux.cgroupsPath",
            format!("{raw:?} must not contain .."),
        ));
    }
    let joined = parts.join("/");
    Ok(if abs { format!("/{joined}") } else { joined })
}

impl Cgroup {
    /// Where the directories are (path and the creator's cgroups).
    pub fn place(&self) -> Place<'_> {
        Place {
            path: &self.path,
            base: self.base.as_deref(),
        }
    }

    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let path = normalise(cgroups_path, id)?;
        let base = if path.starts_with('/') {
            None
        } else {
            std::fs::read_to_string("/proc/self/cgroup").ok()
        };
        Ok(Cgroup {
            mode: detect(),
            path,
            systemd: None,
            base,
        })
    }

    /// `--systemd-cgroup`: the scope `linux.cgroupsPath` (`slice:prefix:name`) names. Made by
    /// `start_scope` once init exists; pure cgroup v2 hosts only.
    pub fn systemd(cgroups_path: Option<&Path>, id: &str, rootless: bool) -> Result<Cgroup> {
        let raw = cgroups_path.map(|p| p.to_string_lossy().into_owned());
        let scope = systemd::Scope::parse(raw.as_deref(), id, rootless)?;
        // Refused before init exists, not at the first D-Bus call.
        systemd::dbus::precheck(scope.user.is_some())?;
        let mode = detect();
        if mode != Mode::Unified {
            return Err(Error::Unsupported(format!(
                "--systemd-cgroup on a {mode:?} cgroup host (only pure cgroup v2)"
            )));
        }
        Ok(Cgroup {
            mode,
            path: scope.cgroup_path(),
            systemd: Some(scope),
            base: None,
        })
    }

    /// `--systemd-cgroup`: asks systemd for the scope with `pid` (init, still waiting for its
    /// go) in it and the limits as unit properties, waits until systemd has made it and moved
    /// `pid` there, then writes what systemd has no property for into the scope's cgroup.
    /// The device rules are systemd's to enforce (DevicePolicy/DeviceAllow): its own device
    /// program is attached to the scope, and a second one of ward's could not join it.
    pub fn start_scope(
        &self,
        pid: i32,
        res: Option<&LinuxResources>,
        rules: &[Rule],
    ) -> Result<()> {
        let Some(scope) = &self.systemd else {
            return Ok(());
        };
        let res = unset_zeros(&res.cloned().unwrap_or_default());
        let mut props = systemd::props::resources(&res)?;
        let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
        props.extend(systemd::props::devices(rules, &proc_devices));
        let bus = systemd::dbus::Systemd::connect(scope.user.is_some())?;
        bus.start_scope(&scope.unit, &scope.slice, pid, &props)?;
        tracing::debug!(unit = %scope.unit, pid, "create: systemd scope started");
        // The path ward recorded is where systemd must have put the scope (a user instance's
        // subtree is systemd's convention, not something ward can ask for before init exists).
        let actual = bus.control_group(&scope.unit)?;
        if actual != self.path {
            return Err(Error::Systemd(format!(
                "{}: systemd put it in cgroup {actual}, ward expected {}",
                scope.unit, self.path
            )));
        }
        self.apply(&res, &[], false)
    }

    /// The v2 hierarchy's root: /sys/fs/cgroup, or its `unified` child on a hybrid host.
    fn v2_root(&self) -> Option<PathBuf> {
        match self.mode {
            Mode::Unified => Some(PathBuf::from(ROOT)),
            Mode::Hybrid => Some(Path::new(ROOT).join("unified")),
            Mode::Legacy => None,
        }
    }

    /// The container's v2 directory (pure v2, or in `unified` on a hybrid host).
    pub fn v2_dir(&self) -> Option<PathBuf> {
        self.v2_root().map(|r| v2::dir(&r, self.place()))
    }

    /// Creates the directories (and, on v2, enables the controllers the limits need).
    pub fn create(&self, res: Option<&LinuxResources>) -> Result<()> {
        if self.mode != Mode::Unified {
            v1::create(self.place())?;
        }
        if let (Some(root), Some(dir)) = (self.v2_root(), self.v2_dir()) {
            v2::create(&root, &dir, self.mode == Mode::Unified, res)?;
        }
        Ok(())
    }

    /// Whether the caller may write the parent of any of the cgroup's directories (a
    /// rootless caller with no delegated cgroup may not: its create is skipped without
    /// trying every hierarchy).
    pub fn any_parent_writable(&self) -> bool {
        let mut dirs: Vec<PathBuf> = self.v2_dir().into_iter().collect();
        if self.mode != Mode::Unified {
            dirs.extend(v1::dirs(self.place()).into_iter().map(|(_, d)| d));
        }
        dirs.iter().any(|d| {
            d.parent()
                .is_some_and(|p| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok())
        })
    }

    /// Refuses a cgroup that already holds processes or is frozen, before anything of the
    /// container is made (newer runc's rule; runc 1.1 only warned about processes): a shared
    /// cgroup would mix limits, pause and kill other processes with the container, and a frozen
    /// one would freeze init mid-setup. Processes are counted in every hierarchy.
    pub fn check_unused(&self) -> Result<()> {
        let mut files: Vec<PathBuf> = Vec::new();
        if let Some(d) = self.v2_dir() {
            files.push(d.join("cgroup.procs"));
        }
        if self.mode != Mode::Unified {
            files.extend(
                v1::dirs(self.place())
                    .into_iter()
                    .map(|(_, d)| d.join("cgroup.procs")),
            );
        }
        let mut pids = std::collections::BTreeSet::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        if !pids.is_empty() {
            return Err(Error::BadState(format!(
                "container's cgroup is not empty: {} process(es) found (linux.cgroupsPath {:?})",
                pids.len(),
                self.path
            )));
        }
        if self.is_frozen() {
            return Err(Error::BadState(format!(
                "container's cgroup unexpectedly frozen (linux.cgroupsPath {:?})",
                self.path
            )));
        }
        Ok(())
    }

    /// Applies `linux.resources` (at create, and for `update`).
    pub fn apply(&self, res: &LinuxResources, rules: &[Rule], update: bool) -> Result<()> {
        let res = &unset_zeros(res);
        if let Some(scope) = &self.systemd {
            return self.apply_systemd(scope, res, update);
        }
        match self.mode {
            Mode::Unified => v2::apply(&v2::dir(Path::new(ROOT), self.place()), res, rules, update),
            _ => v1::apply(self.place(), res, rules),
        }
    }

    /// The systemd scope's files (and, for `update`, its unit properties, so systemd keeps
    /// them across a reload). Files first: the v2 driver refuses a memory limit below the
    /// usage before anything changes. cpu.weight is runc's linear conversion of the shares,
    /// the value systemd writes for CPUWeight, so the file and the unit agree.
    fn apply_systemd(
        &self,
        scope: &systemd::Scope,
        res: &LinuxResources,
        update: bool,
    ) -> Result<()> {
        let dir = v2::dir(Path::new(ROOT), self.place());
        let mut files = res.clone();
        let shares = res
            .cpu()
            .as_ref()
            .and_then(|c| c.shares())
            .filter(|s| *s > 0);
        if let (Some(_), Some(cpu)) = (shares, files.cpu_mut().as_mut()) {
            cpu.set_shares(None);
        }
        v2::apply(&dir, &files, &[], update)?;
        if let Some(s) = shares {
            write(
                &dir,
                "cpu.weight",
                &systemd::props::shares_to_weight(s).to_string(),
            )?;
        }
        if update {
            let props = systemd::props::resources(res)?;
            systemd::dbus::Systemd::connect(scope.user.is_some())?
                .set_properties(&scope.unit, &props)?;
        }
        Ok(())
    }

    /// Places `pid` in every hierarchy (v1) — the v2 placement is done by CLONE_INTO_CGROUP.
    pub fn add_v1(&self, pid: i32) -> Result<()> {
        if self.mode == Mode::Unified {
            return Ok(());
        }
        v1::add(self.place(), pid)
    }

    /// Every process in the cgroup.
    /// The processes of the container's cgroup and of every sub-cgroup made inside it.
    pub fn pids(&self) -> Vec<i32> {
        let procs = match self.v2_dir() {
            Some(d) => d.join("cgroup.procs"),
            None => v1::procs_file(self.place()),
        };
        let mut out = Vec::new();
        if let Some(dir) = procs.parent() {
            procs_below(dir, &mut out);
        }
        out
    }

    /// Freezes or thaws: cgroup.freeze on pure v2, the v1 freezer elsewhere (on a hybrid host
    /// the freezer hierarchy is what runc and engines read).
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        match self.mode {
            Mode::Unified => {
                let dir = v2::dir(Path::new(ROOT), self.place());
                match v2::freeze(&dir, frozen) {
                    // systemd removes a scope's cgroup with its last process: a thaw that lost
                    // that race has nothing left to thaw.
                    Err(_) if !frozen && self.systemd.is_some() && !dir.exists() => Ok(()),
                    r => r,
                }
            }
            _ => v1::freeze(self.place(), frozen),
        }
    }

    /// Whether the container is paused, as `state` reports it: frozen, or asked to be and
    /// still on its way (a process that joined a frozen cgroup, an `exec` racing `pause`, is
    /// frozen a moment after it arrives; until then the kernel says FREEZING / frozen 0, and
    /// "running" would be a lie about a container that was paused).
    pub fn is_paused(&self) -> bool {
        match self.mode {
            Mode::Unified => v2::is_paused(&v2::dir(Path::new(ROOT), self.place())),
            _ => v1::is_paused(self.place()),
        }
    }

    pub fn is_frozen(&self) -> bool {
        match self.mode {
            Mode::Unified => v2::is_frozen(&v2::dir(Path::new(ROOT), self.place())),
            _ => v1::is_frozen(self.place()),
        }
    }

    /// SIGKILLs everything in the cgroup (cgroup.kill where the kernel has it; else freeze,
    /// signal each process, thaw — so nothing can fork away in between).
    pub fn kill_all(&self) -> Result<()> {
        if let Some(d) = self.v2_dir() {
            // systemd removes a scope, and its cgroup, with the scope's last process.
            if self.systemd.is_some() && !d.exists() {
                return Ok(());
            }
            let kill = d.join("cgroup.kill");
            if kill.exists() {
                return match std::fs::write(&kill, "1") {
                    Err(e) if self.systemd.is_some() && cgroup_gone(&e) => Ok(()),
                    r => r.io("write", kill),
                };
            }
        }
        // A freezer that cannot be frozen is gone (a delete killed half-way removed it): then
        // there is nothing to thaw either, and the signals go out unfrozen.
        let froze = self.freeze(true).is_ok();
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if froze {
            self.freeze(false)
        } else {
            Ok(())
        }
    }

    /// Removes the directories; they must be empty of processes.
    pub fn destroy(&self) -> Result<()> {
        if let Some(scope) = &self.systemd {
            // systemd removes the scope's cgroup with the unit; what is left (a sub-cgroup
            // the container made) is removed here.
            systemd::dbus::Systemd::connect(scope.user.is_some())?.stop_and_forget(&scope.unit)?;
        }
        if let Some(d) = self.v2_dir() {
            remove_dir(&d)?;
        }
        if self.mode != Mode::Unified {
            v1::destroy(self.place())?;
        }
        Ok(())
    }

    pub fn stats(&self) -> serde_json::Value {
        match self.mode {
            Mode::Unified => stats::v2(&v2::dir(Path::new(ROOT), self.place())),
            _ => stats::v1(self.place()),
        }
    }
}

/// Engines send 0 for every limit they do not set (Docker's `"cpu": {"shares": 0}` at create,
/// and a whole resources object with zeros for the fields `docker update` leaves alone). As in
/// runc, 0 means "unset" for these fields (-1 means unlimited): they are dropped before
/// anything is written, so an update never half-applies or clamps a default.
pub fn unset_zeros(res: &LinuxResources) -> LinuxResources {
    const ZERO_IS_UNSET: &[(&str, &[&str])] = &[
        (
            "memory",
            &["limit", "reservation", "swap", "kernel", "kernelTCP"],
        ),
        (
            "cpu",
            &[
                "shares",
                "quota",
                "period",
                "realtimeRuntime",
                "realtimePeriod",
            ],
        ),
        ("pids", &["limit"]),
        ("blockIO", &["weight", "leafWeight"]),
    ];
    let Ok(mut v) = serde_json::to_value(res) else {
        return res.clone();
    };
    for (section, keys) in ZERO_IS_UNSET {
        if let Some(obj) = v.get_mut(*section).and_then(|s| s.as_object_mut()) {
            obj.retain(|k, val| !(keys.contains(&k.as_str()) && val.as_i64() == Some(0)));
        }
    }
    if v.get("pids").and_then(|p| p.get("limit")).is_none() {
        if let Some(obj) = v.as_object_mut() {
            obj.remove("pids");
        }
    }
    serde_json::from_value(v).unwrap_or_else(|_| res.clone())
}

/// rmdir that waits out the moment the kernel needs to retire the last exited task.
/// Appends the pids in `dir`'s cgroup.procs and in those of every cgroup below it.
fn procs_below(dir: &Path, out: &mut Vec<i32>) {
    let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for sub in child_cgroups(dir) {
        procs_below(&sub, out);
    }
}

/// The cgroups directly below `dir` (the directories among its entries).
fn child_cgroups(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes a cgroup and every cgroup made below it (children first), as runc's delete does.
pub(crate) fn remove_dir(d: &Path) -> Result<()> {
    for _ in 0..100 {
        match std::fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // Busy: child cgroups (removed first, then at once again; a container's cgroup
            // usually has none, so they are looked for only now), or tasks still leaving.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let children = child_cgroups(d);
                if children.is_empty() {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                for sub in children {
                    remove_dir(&sub)?;
                }
            }
            Err(e) => return Err(Error::io("remove cgroup", d, e)),
        }
    }
    Err(Error::io(
        "remove cgroup",
        d,
        std::io::Error::from_raw_os_error(libc::EBUSY),
    ))
}

/// Writes `value` to a cgroup file; the error names the file and the value.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(|e| {
        let e = if e.kind() == std::io::ErrorKind::NotFound {
            std::io::Error::new(
                e.kind(),
                "the kernel has no such cgroup file (controller absent?)",
            )
        } else {
            e
        };
        Error::io("write cgroup", format!("{} ({value:?})", p.display()), e)
    })
}

/// The device rules ward enforces: the spec's, then the allow-list every container gets (as
/// runc appends it): mknod of any node (so init can populate /dev), and the default devices.
/// `linux.devices` nodes get no access of their own: the spec's rules decide (runc's
/// behaviour, which engines rely on). No spec rules: no device restriction at all.
pub fn device_rules(spec: &oci_spec::runtime::Spec) -> Result<Vec<Rule>> {
    let spec_rules: Vec<LinuxDeviceCgroup> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    let mut rules = devices::rules_from_spec(&spec_rules)?;
    if rules.is_empty() {
        return Ok(rules);
    }
    let rule = |kind: char, major: Option<i64>, minor: Option<i64>, access: &str| Rule {
        allow: true,
        kind,
        major,
        minor,
        access: access.into(),
    };
    rules.push(rule('b', None, None, "m"));
    rules.push(rule('c', None, None, "m"));
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (10, 200),
    ] {
        rules.push(rule('c', Some(major), Some(minor), "rwm"));
    }
    rules.push(rule('c', Some(136), None, "rwm"));
    Ok(rules)
}

/// A normalised cgroupsPath joined below a hierarchy root (relative: below `own`).
pub(crate) fn join(root: &Path, own: &str, path: &str) -> PathBuf {
    let base = if path.starts_with('/') {
        String::new()
    } else {
        own.trim_start_matches('/').to_string()
    };
    let mut p = root.to_path_buf();
    for part in base
        .split('/')
        .chain(path.split('/'))
        .filter(|c| !c.is_empty())
    {
        p.push(part);
    }
    p
}

/// Whether a failed open or write of a cgroup file means the cgroup is no longer there:
/// ENOENT before the open, ENODEV when it was removed between the open and the write (kernfs
/// refuses the write of a file whose node is gone; systemd removes a scope's cgroup as soon as
/// its last process exits, so `run` meets this when the container has just exited).
fn cgroup_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's side of the race the systemd VM met (`write .../cgroup.kill: No such
    /// device` from `run` once systemd removed the scope): a cgroup.kill opened, its cgroup
    /// removed, the write fails ENODEV, and that counts as gone. Needs root and a cgroup2 mount.
    #[test]
    fn a_cgroup_removed_after_its_file_was_opened_counts_as_gone() {
        let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists());
        let Some(root) = root else {
            eprintln!("skipped: no cgroup2 mount");
            return;
        };
        let dir = root.join(format!("ward-unit-gone-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.kill"));
        std::fs::remove_dir(&dir).unwrap();
        let mut file = file.unwrap();
        let err = std::io::Write::write_all(&mut file, b"1").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
        assert!(cgroup_gone(&err));
        let missing = std::fs::write(dir.join("cgroup.kill"), "1").unwrap_err();
        assert!(cgroup_gone(&missing), "{missing}");
        let other = std::io::Error::from_raw_os_error(libc::EINVAL);
        assert!(!cgroup_gone(&other));
    }

    #[test]
    fn zeros_from_engines_mean_unset() {
        let res: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":0,"reservation":0,"kernel":0},"cpu":{"shares":512,"quota":0,"period":0},
                "pids":{"limit":0},"blockIO":{"weight":0}}"#,
        )
        .unwrap();
        let clean = unset_zeros(&res);
        let m = clean.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.reservation(), m.kernel()), (None, None, None));
        let c = clean.cpu().as_ref().unwrap();
        assert_eq!((c.shares(), c.quota(), c.period()), (Some(512), None, None));
        assert!(clean.pids().is_none(), "pids.limit 0 leaves pids alone");
        assert_eq!(clean.block_io().as_ref().unwrap().weight(), None);
        let unlimited: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":-1}}"#).unwrap();
        assert_eq!(
            unset_zeros(&unlimited).memory().as_ref().unwrap().limit(),
            Some(-1)
        );
    }

    #[test]
    fn cgroups_path_forms() {
        assert_eq!(normalise(Some(Path::new("/a/b/")), "id").unwrap(), "/a/b");
        assert_eq!(normalise(Some(Path::new("a//b")), "id").unwrap(), "a/b");
        assert_eq!(normalise(None, "c1").unwrap(), "c1");
        assert!(normalise(Some(Path::new("/a/../../x")), "id").is_err());
        assert!(normalise(Some(Path::new("system.slice:ward:c1")), "id").is_err());
        assert_eq!(
            join(Path::new("/r"), "/own/x", "/a/b"),
            PathBuf::from("/r/a/b")
        );
        assert_eq!(
            join(Path::new("/r"), "/own/x", "a"),
            PathBuf::from("/r/own/x/a")
        );
    }
}
