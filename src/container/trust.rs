//! Trust inside (issue 17): a container whose proxy terminates TLS (http rules or credentials)
//! must trust the CA made for it. ward writes a bundle = the rootfs's own CA bundle (the first
//! of the usual paths, read inside the rootfs) + the CA's certificate, mounts it read-only at
//! `BUNDLE_PATH`, and points the variables most TLS stacks read (`ENV_VARS`) at it, unless the
//! config sets them. The CA's key never leaves the proxy's memory.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use crate::error::{Error, Result};
use crate::spec::Bundle;

/// Where the container finds the bundle.
pub const BUNDLE_PATH: &str = "/etc/ward/ca-bundle.pem";
/// The bundle in the state dir (public: certificates only).
const STATE_FILE: &str = "ca-bundle.pem";

/// The variables set to `BUNDLE_PATH` (OpenSSL and Go, Python requests, curl, Node (added to
/// its own roots), git, pip, the AWS SDKs and CLI).
pub const ENV_VARS: [&str; 7] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
    "AWS_CA_BUNDLE",
];

/// Where distributions keep their bundle, most common first (Debian/Ubuntu/Alpine, Fedora/RHEL,
/// openSUSE, older RHEL, the extracted RHEL one, BSD-style).
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A bundle larger than this is not read (the Mozilla set is ~220 KB).
const BUNDLE_MAX: u64 = 16 << 20;

/// Writes the bundle into `state_dir`, mounts it into the container and sets the variables;
/// returns the variables set (for `ward exec`'s processes).
pub fn install(
    bundle: &mut Bundle,
    ca_pem: &str,
    state_dir: &Path,
) -> Result<Vec<(String, String)>> {
    // The host's own view (`ward sandbox`) is read-only and has no /etc/ward: the bundle goes
    // over the host's own system bundle instead (so tools that read no variable trust it too).
    let host_view = crate::spec::bundle::host_view(&bundle.spec);
    let seen_from = if host_view {
        Path::new("/")
    } else {
        bundle.rootfs.as_path()
    };
    let (mut pem, found) = rootfs_bundle_at(seen_from);
    if !pem.is_empty() && !pem.ends_with(b"\n") {
        pem.push(b'\n');
    }
    pem.extend_from_slice(ca_pem.as_bytes());
    let path = state_dir.join(STATE_FILE);
    write_public(&path, &pem)?;
    let at = match (host_view, found) {
        (true, Some(system)) => system,
        (true, None) => {
            return Err(Error::Host(format!(
                "TLS is terminated for this sandbox (http rules or credentials) but this host \
                 has no CA bundle at any of {SYSTEM_BUNDLES:?} to add ward's CA to"
            )))
        }
        (false, _) => {
            // The mount point, made now by ward (the host's root): in a user namespace init's
            // root may not write the image's /etc.
            let root = crate::sys::safepath::open_root(&bundle.rootfs)?;
            crate::sys::safepath::ensure(root.as_fd(), Path::new(BUNDLE_PATH), false).map_err(
                |e| Error::Init(format!("the CA bundle's mount point {BUNDLE_PATH}: {e}")),
            )?;
            BUNDLE_PATH
        }
    };
    crate::container::credentials::add_mounts(
        bundle,
        vec![crate::container::credentials::read_only_bind(
            &path,
            Path::new(at),
        )],
    );
    let mut env: Vec<String> = bundle.process()?.env().clone().unwrap_or_default();
    let mut set = Vec::new();
    for name in ENV_VARS {
        let present = env
            .iter()
            .any(|kv| kv.split_once('=').map_or(kv.as_str(), |(n, _)| n) == name);
        if !present {
            env.push(format!("{name}={at}"));
            set.push((name.to_string(), at.to_string()));
        }
    }
    crate::container::credentials::set_env(bundle, env)?;
    Ok(set)
}

/// The rootfs's own bundle (the first usual path that is a regular file in it), read inside the
/// rootfs; empty when it has none.
pub fn rootfs_bundle(rootfs: &Path) -> Vec<u8> {
    rootfs_bundle_at(rootfs).0
}

/// `rootfs_bundle`, and which of the usual paths it was.
fn rootfs_bundle_at(rootfs: &Path) -> (Vec<u8>, Option<&'static str>) {
    let Ok(root) = crate::sys::safepath::open_root(rootfs) else {
        return (Vec::new(), None);
    };
    for p in SYSTEM_BUNDLES {
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let Ok(fd) = crate::sys::safepath::open(root.as_fd(), Path::new(p), flags) else {
            continue;
        };
        let Ok(st) = nix::sys::stat::fstat(fd.as_raw_fd()) else {
            continue;
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size as u64 > BUNDLE_MAX {
            continue;
        }
        let mut out = Vec::new();
        if std::fs::File::from(fd)
            .take(BUNDLE_MAX)
            .read_to_end(&mut out)
            .is_ok()
            && !out.is_empty()
        {
            tracing::debug!(path = p, "trust: the rootfs's CA bundle");
            return (out, Some(p));
        }
    }
    (Vec::new(), None)
}

pub fn write_public(path: &PathBuf, data: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    std::io::Write::write_all(&mut f, data).map_err(|e| Error::io("write", path, e))?;
    // The umask may have narrowed it: every user of the container reads it.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(|e| Error::io("chmod", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rootfs_bundle_is_read_inside_the_rootfs() {
        let dir = std::env::temp_dir().join(format!("ward-trust-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let certs = dir.join("etc/pki/tls/certs");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::write(certs.join("ca-bundle.crt"), b"ROOTS").unwrap();
        assert_eq!(rootfs_bundle(&dir), b"ROOTS");
        // An absolute symlink resolves inside the rootfs, never to the host's file.
        std::fs::create_dir_all(dir.join("etc/ssl/certs")).unwrap();
        std::os::unix::fs::symlink(
            "/etc/pki/tls/certs/ca-bundle.crt",
            dir.join("etc/ssl/certs/ca-certificates.crt"),
        )
        .unwrap();
        assert_eq!(rootfs_bundle(&dir), b"ROOTS");
        std::fs::remove_file(dir.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
        std::os::unix::fs::symlink("/nowhere", dir.join("etc/ssl/certs/ca-certificates.crt"))
            .unwrap();
        assert_eq!(rootfs_bundle(&dir), b"ROOTS", "a dangling link is skipped");
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(rootfs_bundle(&empty).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
