//! Device nodes in the container's /dev: the default set every OCI container gets, plus
//! `linux.devices`, and the standard links (/dev/fd, /dev/std*, /dev/ptmx).
//!
//! Nodes are made with mknodat in a directory fd resolved inside the rootfs. Under a new user
//! namespace mknod is not allowed, so the host's node is bind-mounted instead (as runc does).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Error, Result, SysContext};
use crate::sys::safepath;

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (runtime-spec "Default Devices").
pub fn default_nodes() -> Vec<Node> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, major, minor)| Node {
        path: p.into(),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Converts `linux.devices[index]` into a node, checking what the spec requires.
pub fn node_from_spec(index: usize, d: &LinuxDevice) -> Result<Node> {
    let field = |f: &str| format!("linux.devices[{index}].{f}");
    if !d.path().starts_with("/dev/") {
        return Err(Error::spec(
            field("path"),
            format!("{:?} is not under /dev", d.path()),
        ));
    }
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => return Err(Error::spec(field("type"), "must be c, b, u or p")),
    };
    if kind != SFlag::S_IFIFO && (d.major() < 0 || d.minor() < 0) {
        return Err(Error::spec(field("major"), "major and minor must be >= 0"));
    }
    Ok(Node {
        path: d.path().clone(),
        kind,
        major: d.major().max(0) as u64,
        minor: d.minor().max(0) as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Creates `nodes` inside the rootfs. The caller has set umask 0, so modes are exact.
pub fn create_nodes(root: BorrowedFd, nodes: &[Node], userns: bool) -> Result<()> {
    for node in nodes {
        if userns {
            bind_host_node(root, node)?;
        } else {
            make_node(root, node)?;
        }
    }
    Ok(())
}

fn split(path: &Path) -> Result<(PathBuf, std::ffi::OsString)> {
    match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => Ok((p.to_path_buf(), n.to_os_string())),
        _ => Err(Error::Init(format!("bad device path {}", path.display()))),
    }
}

fn make_node(root: BorrowedFd, node: &Node) -> Result<()> {
    let (parent, name) = split(&node.path)?;
    // An O_PATH directory fd is a valid dirfd for the *at calls below.
    let dir = safepath::mkdir_all(root, &parent)?;
    let what = node.path.display().to_string();
    let dev = makedev(node.major, node.minor);
    let mode = Mode::from_bits_truncate(node.mode);
    match mknodat(
        Some(dir.as_raw_fd()),
        name.as_os_str(),
        node.kind,
        mode,
        dev,
    ) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // Something from the image is there: replace it (never a directory).
            nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                name.as_os_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )
            .sys("unlinkat", what.clone())?;
            mknodat(
                Some(dir.as_raw_fd()),
                name.as_os_str(),
                node.kind,
                mode,
                dev,
            )
            .sys("mknodat", what.clone())?;
        }
        Err(e) => return Err(Error::sys("mknodat", what, e)),
    }
    fchownat(
        Some(dir.as_raw_fd()),
        name.as_os_str(),
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .sys("fchownat", what)
}

fn bind_host_node(root: BorrowedFd, node: &Node) -> Result<()> {
    let target = safepath::ensure(root, &node.path, false)?;
    mount(
        Some(&node.path),
        &safepath::fd_path(target.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .sys(
        "mount",
        format!("bind {} (host device)", node.path.display()),
    )
}

/// /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr, /dev/ptmx and (where the host has one)
/// /dev/core.
pub fn create_links(root: BorrowedFd) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    let dev = safepath::mkdir_all(root, Path::new("/dev"))?;
    for (target, name) in links {
        match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) => {}
            // ptmx may be a node from the image: replace it with the link to our devpts.
            Err(Errno::EEXIST) if name == "ptmx" => {
                let _ = nix::unistd::unlinkat(
                    Some(dev.as_raw_fd()),
                    name,
                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                );
                nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name)
                    .sys("symlinkat", format!("/dev/{name}"))?;
            }
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys("symlinkat", format!("/dev/{name}"), e)),
        }
    }
    Ok(())
}

/// Does the spec bind-mount the host's /dev (then ward must not populate it)?
pub fn dev_is_bind(spec: &oci_spec::runtime::Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_devices_are_checked() {
        let d: LinuxDevice = serde_json::from_str(
            r#"{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":438,"uid":1,"gid":2}"#,
        )
        .unwrap();
        let n = node_from_spec(0, &d).unwrap();
        assert_eq!(
            (n.major, n.minor, n.mode, n.uid, n.gid),
            (10, 229, 0o666, 1, 2)
        );
        let bad: LinuxDevice =
            serde_json::from_str(r#"{"path":"/etc/x","type":"c","major":1,"minor":3}"#).unwrap();
        assert!(node_from_spec(0, &bad)
            .unwrap_err()
            .to_string()
            .contains("linux.devices[0].path"));
    }

    #[test]
    fn defaults_cover_the_spec_list() {
        let names: Vec<_> = default_nodes().iter().map(|n| n.path.clone()).collect();
        for p in [
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
        ] {
            assert!(names.contains(&PathBuf::from(p)));
        }
    }
}
