//! Landlock from the spec: ward's `process.landlock` extension (the shape proposed in
//! runtime-spec PR #1111/#1241), the same JSON in the annotation `org.ward.landlock`, or
//! `org.ward.landlock: "auto"` — a ruleset derived from the spec's own writable mounts.
//!
//! Best effort by default: rights newer than the running kernel's ABI are dropped with a
//! warning. With `disableBestEffort: true` anything the kernel cannot enforce fails `create`.
//! Applied by `init::prepare_process` (so `exec` is confined the same way): with
//! no_new_privs just before execve; without it while CAP_SYS_ADMIN is still held.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, Ruleset,
    RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};
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

const FS_NAMES: &[&str] = &[
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
const NET_NAMES: &[&str] = &["bind_tcp", "connect_tcp"];
const SCOPE_NAMES: &[&str] = &["abstract_unix_socket", "signal"];

fn fs_access(name: &str) -> Option<AccessFs> {
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

fn net_access(name: &str) -> Option<AccessNet> {
    match name {
        "bind_tcp" => Some(AccessNet::BindTcp),
        "connect_tcp" => Some(AccessNet::ConnectTcp),
        _ => None,
    }
}

fn scope(name: &str) -> Option<Scope> {
    match name {
        "abstract_unix_socket" => Some(Scope::AbstractUnixSocket),
        "signal" => Some(Scope::Signal),
        _ => None,
    }
}

fn names<T: enumflags2::BitFlag>(
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
            let p: Policy = crate::spec::from_value(v, "process.landlock")?;
            p.validate("process.landlock")?;
            Ok(Some(Landlock::Policy(p)))
        }
        (None, Some("auto")) => Ok(Some(Landlock::Auto)),
        (None, Some(text)) => {
            let field = format!("annotations.{ANNOTATION}");
            let p: Policy = crate::spec::parse_json(text, &field)?;
            p.validate(&field)?;
            Ok(Some(Landlock::Policy(p)))
        }
        (None, None) => Ok(None),
    }
}

/// The running kernel's Landlock ABI (0: none).
pub fn kernel_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only returns
    // the ABI version; no memory is passed.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if v < 0 {
        0
    } else {
        v as i32
    }
}

/// The write-type rights `auto` handles.
fn write_rights() -> BitFlags<AccessFs> {
    AccessFs::WriteFile
        | AccessFs::RemoveDir
        | AccessFs::RemoveFile
        | AccessFs::MakeChar
        | AccessFs::MakeDir
        | AccessFs::MakeReg
        | AccessFs::MakeSock
        | AccessFs::MakeFifo
        | AccessFs::MakeBlock
        | AccessFs::MakeSym
        | AccessFs::Refer
        | AccessFs::Truncate
}

/// `auto`: write rights only beneath the writable mounts' destinations (and `/` when the root
/// is writable). A readonlyPath or maskedPath below a granted tree cannot be carved out (Landlock
/// only adds), so that tree is granted through its other entries instead, descending along the
/// excluded path. proc, sysfs and cgroup mounts are left to the kernel's own checks and ward's
/// read-only/masked mounts.
pub fn auto_grants(spec: &oci_spec::runtime::Spec) -> Vec<PathBuf> {
    let mut writable: Vec<PathBuf> = Vec::new();
    if !spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        writable.push(PathBuf::from("/"));
    }
    for m in spec.mounts().iter().flatten() {
        let typ = m.typ().as_deref().unwrap_or("");
        let ro = m
            .options()
            .iter()
            .flatten()
            .any(|o| o == "ro" || o == "rro");
        if !ro && !matches!(typ, "proc" | "sysfs" | "cgroup" | "cgroup2") {
            writable.push(m.destination().clone());
        }
    }
    let linux = spec.linux().as_ref();
    let excluded: Vec<PathBuf> = linux
        .iter()
        .flat_map(|l| {
            l.readonly_paths()
                .iter()
                .flatten()
                .chain(l.masked_paths().iter().flatten())
        })
        .map(PathBuf::from)
        .chain(
            spec.mounts()
                .iter()
                .flatten()
                .filter(|m| {
                    m.options()
                        .iter()
                        .flatten()
                        .any(|o| o == "ro" || o == "rro")
                })
                .map(|m| m.destination().clone()),
        )
        .collect();
    let mut grants = Vec::new();
    for w in writable {
        grant(&w, &excluded, &mut grants);
    }
    grants
}

fn grant(dir: &Path, excluded: &[PathBuf], out: &mut Vec<PathBuf>) {
    if excluded.iter().any(|e| e == dir) {
        return;
    }
    if !excluded.iter().any(|e| e.starts_with(dir)) {
        out.push(dir.to_path_buf());
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            grant(&e.path(), excluded, out);
        }
    }
}

/// Restricts the calling process. `also_writable`: fds ward itself must still open for writing
/// after this (init's exec fifo).
pub fn apply(
    l: &Landlock,
    spec: &oci_spec::runtime::Spec,
    also_writable: &[BorrowedFd],
    no_new_privs: bool,
) -> Result<()> {
    let abi = kernel_abi();
    let (policy, grants) = match l {
        Landlock::Policy(p) => (p.clone(), None),
        Landlock::Auto => {
            let p = Policy {
                ruleset: RulesetSpec {
                    handled_access_fs: Vec::new(),
                    ..Default::default()
                },
                ..Default::default()
            };
            (p, Some(auto_grants(spec)))
        }
    };
    let strict = policy.disable_best_effort;
    if abi == 0 {
        if strict {
            return Err(Error::Init(
                "landlock: the kernel has no Landlock and disableBestEffort is set".into(),
            ));
        }
        tracing::warn!("landlock: the kernel has no Landlock: the ruleset is not enforced");
        return Ok(());
    }
    let kabi = ABI::from(abi);
    let mut fs = names(
        &policy.ruleset.handled_access_fs,
        "handledAccessFS",
        fs_access,
    )?;
    if grants.is_some() {
        fs = write_rights();
    }
    let net = names(
        &policy.ruleset.handled_access_network,
        "handledAccessNetwork",
        net_access,
    )?;
    let scopes = names(&policy.ruleset.scoped, "scoped", scope)?;
    let missing_fs = fs & !AccessFs::from_all(kabi);
    let missing_net = net & !AccessNet::from_all(kabi);
    let missing_scope = scopes & !Scope::from_all(kabi);
    let missing: Vec<&str> = FS_NAMES
        .iter()
        .filter(|n| fs_access(n).is_some_and(|a| missing_fs.contains(a)))
        .chain(
            NET_NAMES
                .iter()
                .filter(|n| net_access(n).is_some_and(|a| missing_net.contains(a))),
        )
        .chain(
            SCOPE_NAMES
                .iter()
                .filter(|n| scope(n).is_some_and(|a| missing_scope.contains(a))),
        )
        .copied()
        .collect();
    if !missing.is_empty() {
        let msg = format!(
            "landlock ABI {abi} of this kernel lacks {}",
            missing.join(", ")
        );
        if strict {
            return Err(Error::Init(format!(
                "{msg} (disableBestEffort: refusing to run without them)"
            )));
        }
        tracing::warn!("{msg}: dropped (best effort)");
    }
    let level = if strict {
        CompatLevel::HardRequirement
    } else {
        CompatLevel::BestEffort
    };
    let err = |e: landlock::RulesetError| Error::Init(format!("landlock: {e}"));
    let mut rs = Ruleset::default().set_compatibility(level);
    if !fs.is_empty() {
        rs = rs.handle_access(fs).map_err(err)?;
    }
    if !net.is_empty() {
        rs = rs.handle_access(net).map_err(err)?;
    }
    if !scopes.is_empty() {
        rs = rs.scope(scopes).map_err(err)?;
    }
    let mut created = rs.create().map_err(err)?.no_new_privs(no_new_privs);
    let mut path_rules: Vec<(PathBuf, BitFlags<AccessFs>)> = Vec::new();
    match grants {
        Some(g) => path_rules.extend(g.into_iter().map(|p| (p, fs))),
        None => {
            for r in &policy.rules.path_beneath {
                let a = names(&r.allowed_access, "allowedAccess", fs_access)?;
                path_rules.extend(r.paths.iter().map(|p| (PathBuf::from(p), a)));
            }
        }
    }
    for (path, access) in path_rules {
        let fd = match open_path(&path) {
            Ok(fd) => fd,
            Err(e) if !strict => {
                tracing::warn!(
                    "landlock: {}: {e}: rule skipped (best effort)",
                    path.display()
                );
                continue;
            }
            Err(e) => {
                return Err(Error::Init(format!(
                    "landlock: rule path {}: {e}",
                    path.display()
                )))
            }
        };
        let is_dir = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
            .map(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .unwrap_or(false);
        // Rights that only make sense on directories cannot be granted on a file.
        let access = if is_dir {
            access
        } else {
            access & AccessFs::from_file(kabi)
        };
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(err)?;
    }
    for r in &policy.rules.net_port {
        let a = names(&r.allowed_access, "allowedAccess", net_access)?;
        for port in &r.ports {
            created = created.add_rule(NetPort::new(*port, a)).map_err(err)?;
        }
    }
    if fs.contains(AccessFs::WriteFile) {
        for fd in also_writable {
            let own = fd
                .try_clone_to_owned()
                .map_err(|e| Error::io("dup", "exec fifo", e))?;
            created = created
                .add_rule(PathBeneath::new(own, AccessFs::WriteFile))
                .map_err(err)?;
        }
    }
    let status = created.restrict_self().map_err(err)?;
    tracing::debug!("landlock: {:?}", status.ruleset);
    Ok(())
}

fn open_path(p: &Path) -> std::io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: open just returned this fd; we own it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_validates() {
        let example = include_str!("../spec/examples/landlock.json");
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
