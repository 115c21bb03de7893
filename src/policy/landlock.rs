//! Landlock applied: the policy (`spec::landlock`, explicit or `auto`) turned into a ruleset
//! on the calling process.
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

use crate::error::{Error, Result};
use crate::spec::landlock::{
    fs_access, names, net_access, scope, Landlock, Policy, RulesetSpec, FS_NAMES, NET_NAMES,
    SCOPE_NAMES,
};

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
