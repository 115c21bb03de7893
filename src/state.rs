//! Where a container lives on the host between commands: `<root>/<id>/`.
//!
//! - `state.json`: what `ward state` prints plus ward's private fields, written atomically
//!   (write a temporary file, then rename).
//! - `config.json`: the spec the container was created from (poststop hooks run from it even if
//!   the bundle changed).
//! - `exec.fifo`: the fifo the created init waits on (as runc's); its presence means "created".
//! - `lock`: flock'ed by every command that changes the container, so two commands on one id
//!   cannot interleave.
//!
//! The status is never stored: it is derived from the kernel (is the init process, identified by
//! pid *and* start time, still alive?) so it cannot go stale when init dies.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

pub const EXEC_FIFO: &str = "exec.fifo";
/// ward's own directories under the state root are named with `@`, which no container id can
/// contain, so they never collide with a container.
pub const CACHE_DIR: &str = "@cache";
pub const RUNSC_DIR: &str = "@runsc";
const STATE_FILE: &str = "state.json";
const CONFIG_FILE: &str = "config.json";

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

/// What is stored in state.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    pub owner: String,
    /// Start time of init (/proc/<pid>/stat field 22): tells init from a reused pid.
    pub init_start_time: u64,
    /// The container has its own pid namespace: killing init kills everything in it.
    pub private_pid_ns: bool,
    /// Where its cgroup is (absent: created before ward managed cgroups).
    #[serde(default)]
    pub cgroup: Option<crate::cgroups::Cgroup>,
    /// The isolation tier; gvisor containers are run by runsc, ward routes every command.
    #[serde(default)]
    pub tier: crate::tier::Tier,
    /// ward's supervisor of this container (pid, start time), if it has one.
    #[serde(default)]
    pub supervisor: Option<(i32, u64)>,
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
}

/// A container's directory under the state root.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
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

impl ContainerDir {
    /// Claims `<root>/<id>` for a new container; a second create of the same id fails here.
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        ensure_root(root)?;
        let path = root.join(id);
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => Ok(ContainerDir {
                id: id.into(),
                path,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(id.into()))
            }
            Err(e) => Err(Error::io("create container state", &path, e)),
        }
    }

    pub fn open(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = root.join(id);
        if !path.join(STATE_FILE).exists() {
            return Err(Error::NotExist(id.into()));
        }
        Ok(ContainerDir {
            id: id.into(),
            path,
        })
    }

    /// Takes the container's lock; it is held until the returned guard is dropped.
    pub fn lock(&self) -> Result<Flock<File>> {
        let p = self.path.join("lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&p)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotExist(self.id.clone()),
                _ => Error::io("open", &p, e),
            })?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::sys("flock", p.display().to_string(), e))
    }

    pub fn exec_fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    pub fn save(&self, state: &Stored) -> Result<()> {
        let data = serde_json::to_vec(state).map_err(|e| Error::Init(e.to_string()))?;
        write_atomic(&self.path.join(STATE_FILE), &data)
    }

    pub fn load(&self) -> Result<Stored> {
        let p = self.path.join(STATE_FILE);
        let text = fs::read_to_string(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotExist(self.id.clone()),
            _ => Error::io("read", &p, e),
        })?;
        crate::spec::parse_json(&text, "state.json")
    }

    /// Saves the config as written (ward's extensions included).
    pub fn save_config(&self, raw: &serde_json::Value) -> Result<()> {
        let data = serde_json::to_vec(raw).map_err(|e| Error::Init(e.to_string()))?;
        write_atomic(&self.path.join(CONFIG_FILE), &data)
    }

    pub fn load_config(&self) -> Result<oci_spec::runtime::Spec> {
        crate::spec::from_value(&self.load_raw_config()?, "config.json")
    }

    pub fn load_raw_config(&self) -> Result<serde_json::Value> {
        let p = self.path.join(CONFIG_FILE);
        let text = fs::read_to_string(&p).io("read", &p)?;
        crate::spec::parse_json(&text, "config.json")
    }

    /// The status as the kernel sees it now.
    pub fn status(&self, state: &Stored) -> Status {
        if !init_alive(state) {
            Status::Stopped
        } else if self.exec_fifo().exists() {
            Status::Created
        } else if state.cgroup.as_ref().is_some_and(|c| c.is_frozen()) {
            Status::Paused
        } else {
            Status::Running
        }
    }

    pub fn report(&self, state: &Stored) -> Report {
        let status = self.status(state);
        Report {
            oci_version: state.oci_version.clone(),
            id: state.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                state.pid
            },
            status,
            bundle: state.bundle.clone(),
            rootfs: state.rootfs.clone(),
            created: state.created.clone(),
            annotations: state.annotations.clone(),
            owner: state.owner.clone(),
        }
    }

    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &self.path, e)),
        }
    }
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
/// replaces a symlink at `path` rather than writing through it).
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
    let written = f
        .write_all(data)
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write", path, e));
    }
    Ok(())
}

/// (state char, start time) of a process from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and ')': the fields after it start at the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the line is index 19 after the state (field 3).
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Is the container's init (same pid, same start time) alive and not a zombie?
pub fn init_alive(state: &Stored) -> bool {
    state.pid > 0
        && matches!(proc_stat(state.pid), Some((s, t)) if s != 'Z' && s != 'X' && t == state.init_start_time)
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

    #[test]
    fn own_process_is_alive() {
        let pid = std::process::id() as i32;
        let (s, t) = proc_stat(pid).unwrap();
        assert_ne!(s, 'Z');
        assert!(t > 0);
    }
}
