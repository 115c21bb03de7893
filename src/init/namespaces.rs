//! Linux namespaces: which to create, which to join, and the order the kernel requires.
//!
//! Order matters:
//! - pid and time namespaces only apply to *children*: the parent joins them (setns) or, for a
//!   new time namespace, unshares it and writes its offsets *before* any process is inside
//!   (/proc/self/timens_offsets is only writable then), and only then forks init.
//! - New pid, user, mnt, uts, ipc and net namespaces are created by clone3 itself.
//! - The cgroup namespace is unshared by init only after it has been placed in its cgroup, so
//!   the namespace's root is the container's cgroup.
//! - Joining by path happens in init, user namespace first (the others are owned by it), and
//!   requires a single-threaded process.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType as Ns;

use crate::error::{Error, IoContext, Result, SysContext};
use crate::spec::Bundle;

pub fn clone_flag(typ: Ns) -> CloneFlags {
    match typ {
        Ns::Mount => CloneFlags::CLONE_NEWNS,
        Ns::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        Ns::Uts => CloneFlags::CLONE_NEWUTS,
        Ns::Ipc => CloneFlags::CLONE_NEWIPC,
        Ns::User => CloneFlags::CLONE_NEWUSER,
        Ns::Pid => CloneFlags::CLONE_NEWPID,
        Ns::Network => CloneFlags::CLONE_NEWNET,
        Ns::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The namespaces clone3 creates for init.
pub fn clone_flags(bundle: &Bundle) -> CloneFlags {
    let mut flags = CloneFlags::empty();
    for (typ, path) in bundle.namespaces() {
        if path.is_none() && !matches!(typ, Ns::Cgroup | Ns::Time) {
            flags |= clone_flag(typ);
        }
    }
    flags
}

fn open_ns(typ: Ns, path: &Path) -> Result<OwnedFd> {
    let fd =
        nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
            Error::spec(
                format!("linux.namespaces[{typ}].path"),
                format!("{}: {e}", path.display()),
            )
        })?;
    // SAFETY: `open` just returned this fd; we are its only owner.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// In the parent, before forking init: join the pid/time namespaces given by path, or create a
/// new time namespace with its offsets. These change the namespaces of the parent's *children*
/// only; the returned [`ParentNs`] puts the parent's own back once init is forked.
pub fn prepare_parent(bundle: &Bundle) -> Result<ParentNs> {
    let mut restore = Vec::new();
    for (typ, path) in bundle.namespaces() {
        match (typ, path) {
            (Ns::Pid | Ns::Time, Some(p)) => {
                let fd = open_ns(typ, &p)?;
                restore.push((typ, open_ns(typ, &own_ns_path(typ))?));
                setns(fd.as_fd(), clone_flag(typ))
                    .sys("setns", format!("{typ} namespace {}", p.display()))?;
            }
            (Ns::Time, None) => {
                restore.push((Ns::Time, open_ns(Ns::Time, &own_ns_path(Ns::Time))?));
                unshare(clone_flag(Ns::Time)).sys("unshare", "time namespace")?;
                write_time_offsets(bundle)?;
            }
            _ => {}
        }
    }
    Ok(ParentNs { restore })
}

fn own_ns_path(typ: Ns) -> PathBuf {
    let name = match typ {
        Ns::Pid => "pid",
        _ => "time",
    };
    PathBuf::from(format!("/proc/self/ns/{name}"))
}

/// The parent's own pid and time namespaces, to go back to for its later children.
///
/// Until restored, every process the parent forks is born in the container's pid (or time)
/// namespace: a proxy or supervisor forked after init would be a process of the container's
/// pid namespace, and the kernel refuses the parent new threads (clone with CLONE_THREAD fails
/// with EINVAL while the pid namespace for children differs from the caller's own), which the
/// systemd driver's D-Bus client needs.
#[must_use]
pub struct ParentNs {
    restore: Vec<(Ns, OwnedFd)>,
}

impl ParentNs {
    /// Back to the parent's own namespaces for children. A failure (a caller without
    /// CAP_SYS_ADMIN over its own pid namespace's owner, i.e. rootless) is reported: the
    /// caller decides whether what follows can do without it.
    pub fn restore(self) -> Result<()> {
        for (typ, fd) in self.restore {
            setns(fd.as_fd(), clone_flag(typ))
                .sys("setns", format!("back to ward's own {typ} namespace"))?;
        }
        Ok(())
    }
}

fn write_time_offsets(bundle: &Bundle) -> Result<()> {
    let offsets = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone());
    let Some(offsets) = offsets else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in &offsets {
        if clock != "monotonic" && clock != "boottime" {
            return Err(Error::spec(
                format!("linux.timeOffsets.{clock}"),
                "only monotonic and boottime clocks can be offset",
            ));
        }
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).io("write", "/proc/self/timens_offsets")
}

/// Namespaces init joins by path, user namespace first. Opened all at once before joining any,
/// since the paths are host paths and joining a mount namespace changes what they mean.
pub fn open_joins(bundle: &Bundle) -> Result<Vec<(Ns, PathBuf, OwnedFd)>> {
    let mut joins = Vec::new();
    for (typ, path) in bundle.namespaces() {
        if let (Some(p), false) = (path, matches!(typ, Ns::Pid | Ns::Time)) {
            let fd = open_ns(typ, &p)?;
            joins.push((typ, p, fd));
        }
    }
    joins.sort_by_key(|(t, _, _)| *t != Ns::User);
    Ok(joins)
}

pub fn join(joins: &[(Ns, PathBuf, OwnedFd)]) -> Result<()> {
    for (typ, path, fd) in joins {
        setns(fd.as_fd(), clone_flag(*typ))
            .sys("setns", format!("{typ} namespace {}", path.display()))?;
    }
    Ok(())
}

/// Writes init's uid_map and gid_map from the parent. Root writes them itself. A user
/// without root writes a map of its own id alone (gid_map after "deny" in setgroups, which
/// the kernel requires), and leaves any other map to the setuid helpers newuidmap/newgidmap
/// (package uidmap), which allow the ranges /etc/subuid and /etc/subgid give the caller.
pub fn write_id_maps(pid: i32, bundle: &Bundle) -> Result<()> {
    let Some(linux) = bundle.spec.linux().as_ref() else {
        return Ok(());
    };
    let root = nix::unistd::geteuid().is_root();
    let maps = [
        IdMap {
            file: "uid_map",
            field: "linux.uidMappings",
            tool: "newuidmap",
            own: nix::unistd::geteuid().as_raw(),
            maps: linux.uid_mappings().clone().unwrap_or_default(),
        },
        IdMap {
            file: "gid_map",
            field: "linux.gidMappings",
            tool: "newgidmap",
            own: nix::unistd::getegid().as_raw(),
            maps: linux.gid_mappings().clone().unwrap_or_default(),
        },
    ];
    for m in &maps {
        if m.maps.is_empty() {
            continue;
        }
        if root {
            m.write(pid)?;
        } else if m.only_own() {
            if m.file == "gid_map" {
                let path = format!("/proc/{pid}/setgroups");
                std::fs::write(&path, "deny").io("write", &path)?;
            }
            m.write(pid)?;
        } else {
            m.helper(pid)?;
        }
    }
    Ok(())
}

/// One of the two maps, with what its errors name.
struct IdMap {
    file: &'static str,
    field: &'static str,
    tool: &'static str,
    /// The caller's own effective id: the only one it may map without a helper.
    own: u32,
    maps: Vec<oci_spec::runtime::LinuxIdMapping>,
}

impl IdMap {
    fn only_own(&self) -> bool {
        matches!(&self.maps[..], [m] if m.host_id() == self.own && m.size() == 1)
    }

    fn write(&self, pid: i32) -> Result<()> {
        let text: String = self
            .maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = format!("/proc/{pid}/{}", self.file);
        std::fs::write(&path, text.as_bytes()).map_err(|e| {
            Error::spec(
                self.field,
                format!("write {path} ({}): {e}", text.trim().replace('\n', ", ")),
            )
        })
    }

    /// newuidmap/newgidmap PID (containerID hostID size)...
    fn helper(&self, pid: i32) -> Result<()> {
        let mut args = vec![pid.to_string()];
        for m in &self.maps {
            args.extend([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
        }
        let out = std::process::Command::new(self.tool)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::spec(
                    self.field,
                    format!(
                        "maps more than the caller's own id {}: a user without root needs \
                         {} (package uidmap) for that, and it is not in PATH",
                        self.own, self.tool
                    ),
                ))
            }
            Err(e) => return Err(Error::io("run", self.tool, e)),
        };
        if !out.status.success() {
            let subids = if self.file == "uid_map" {
                "/etc/subuid"
            } else {
                "/etc/subgid"
            };
            return Err(Error::spec(
                self.field,
                format!(
                    "{} {} failed ({}): {}; the ranges uid {} may map are in {subids}",
                    self.tool,
                    args.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    nix::unistd::geteuid(),
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_of_each_namespace() {
        assert_eq!(clone_flag(Ns::Pid), CloneFlags::CLONE_NEWPID);
        assert_eq!(clone_flag(Ns::Network), CloneFlags::CLONE_NEWNET);
        assert_eq!(clone_flag(Ns::Time).bits(), libc::CLONE_NEWTIME);
    }
}
