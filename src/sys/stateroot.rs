//! What Linux and macOS (the Unix hosts) share about the state root (`--root`, one directory per container):
//! the id rules, the root's ownership check, atomic writes, listing, and the status and JSON
//! that `ward state` and `ward list` print (runc's names and order). Linux's `state` builds on it.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

pub const STATE_FILE: &str = "state.json";
/// ward's own directories under the state root are named with `@`, which no container id can
/// contain, so they never collide with a container. This one holds caches (compiled seccomp
/// filters).
pub const CACHE_DIR: &str = "@cache";

/// Validates a container id as runc does: `[A-Za-z0-9_.+-]`, not `.` or `..`, at most 255
/// bytes (so `<root>/<id>` can be a directory name).
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidId(id.into(), "must not be empty"));
    }
    if id == "." || id == ".." {
        return Err(Error::InvalidId(id.into(), "must not be . or .."));
    }
    if id.len() > 255 {
        return Err(Error::InvalidId(id.into(), "longer than 255 bytes"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
    {
        return Err(Error::InvalidId(
            id.into(),
            "only letters, digits and _ . + - are allowed",
        ));
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// The JSON `ward state` prints: runc's names and order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    pub owner: String,
    /// ward's own processes of the container (its supervisor, its egress proxy), each
    /// "running" or "exited": printed only for a container that has one. A walled container
    /// whose helper has died fails closed (observed syscalls fail ENOSYS, connections to names
    /// fail); this is where that shows. Engines read runc's fields and ignore the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helpers: Option<std::collections::BTreeMap<&'static str, &'static str>>,
}

/// Creates the state root (0700) if needed, and refuses one that another user could write to:
/// whoever can write there can plant symlinks where ward writes state.
pub fn ensure_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .io("create state root", root)?;
    let meta = fs::metadata(root).io("stat", root)?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(Error::Init(format!(
            "state root {} must be owned by uid {me} and not writable by group or others",
            root.display()
        )));
    }
    Ok(())
}

/// Ids of every container under `root`, sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(Error::io("read", root, e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if validate_id(&name).is_ok() && entry.path().join(STATE_FILE).exists() {
            ids.push(name);
        }
    }
    ids.sort();
    Ok(ids)
}

/// Replaces `path` with `data` atomically: a fresh temporary file in the same directory (created
/// exclusively, never through a symlink someone planted), then rename(2) over `path` (which
/// replaces a symlink at `path` rather than writing through it). Readers see the old or the
/// new content, never a part. No fsync: what the state root describes (processes, cgroups)
/// does not outlive a crash of the machine either, and runc does not sync its state; each
/// fsync cost create about a millisecond on a disk-backed --root.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = path.with_file_name(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&tmp)
        .io("create", &tmp)?;
    let written = f.write_all(data).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write", path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_like_runc() {
        for ok in ["a", "web-1", "x_y.z+1", &"a".repeat(255)] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/",
            "a\0b",
            "a b",
            &"a".repeat(256),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
