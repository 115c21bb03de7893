//! Where a container lives on the host between commands: `<root>/<id>/`.
//!
//! - `state.json`: what `ward state` prints plus ward's private fields, written atomically
//!   (write a temporary file, then rename).
//! - `config.json`: the spec the container was created from (poststop hooks run from it even if
//!   the bundle changed).
//! - `exec.fifo`: the fifo the created init waits on (as runc's); its presence means "created"
//!   while init still runs the file it ran at create (`init_exe`): a start killed after
//!   releasing init, before removing the fifo, leaves a running container and the fifo.
//! - `creating.json`: what `create` has made so far (cgroup, init, supervisor), each written
//!   *before* it is made; `delete --force` reads it when state.json is missing or unreadable
//!   (create killed half-way), so nothing it made can be lost.
//! - the directory itself is flock'ed by every command that changes the container, so two
//!   commands on one id cannot interleave (no lock file: see `ContainerDir::lock`).
//!
//! The status is never stored: it is derived from the kernel (is the init process, identified by
//! pid *and* start time, still alive?) so it cannot go stale when init dies.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
pub use crate::sys::stateroot::{
    ensure_root, list_ids, validate_id, write_atomic, Report, Status, CACHE_DIR, STATE_FILE,
};

pub const EXEC_FIFO: &str = "exec.fifo";
/// runsc's root, one of ward's own directories under the state root (see `CACHE_DIR`).
pub const RUNSC_DIR: &str = "@runsc";
const CONFIG_FILE: &str = "config.json";
const LEFTOVERS_FILE: &str = "creating.json";

/// What `create` has made on the host so far (`creating.json`), for a `delete --force` that
/// finds no usable state.json.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Leftovers {
    #[serde(default)]
    pub cgroup: Option<crate::policy::cgroups::Cgroup>,
    /// init (pid, start time), once forked.
    #[serde(default)]
    pub init: Option<(i32, u64)>,
    #[serde(default)]
    pub supervisor: Option<(i32, u64)>,
    /// The egress proxy (pid, start time), once spawned.
    #[serde(default)]
    pub proxy: Option<(i32, u64)>,
    /// The joined network namespace the proxy's range was put on (removed at delete).
    #[serde(default)]
    pub proxy_netns: Option<PathBuf>,
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
    /// The file init ran while created (device, inode of /proc/<pid>/exe): once init's exe is
    /// another file, init has exec'd the container's process, even if the exec fifo is still
    /// there (a `start` killed between releasing init and removing the fifo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_exe: Option<(u64, u64)>,
    /// The container has its own pid namespace: killing init kills everything in it.
    pub private_pid_ns: bool,
    /// Where its cgroup is (absent: created before ward managed cgroups).
    #[serde(default)]
    pub cgroup: Option<crate::policy::cgroups::Cgroup>,
    /// The isolation tier; gvisor containers are run by runsc, ward routes every command.
    #[serde(default)]
    pub tier: crate::spec::isolation::Tier,
    /// ward's supervisor of this container (pid, start time), if it has one.
    #[serde(default)]
    pub supervisor: Option<(i32, u64)>,
    /// ward's egress proxy of this container (pid, start time), if its policy names domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<(i32, u64)>,
    /// The network namespace joined by path whose `lo` got the proxy's range: delete takes
    /// the range off once no proxy holds a slot there (a new namespace goes with its owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_netns: Option<PathBuf>,
}

/// A container's directory under the state root.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
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

    /// The directory of an id `list_ids` just returned, not checked again (`load` says
    /// NotExist if it went away since).
    pub fn listed(root: &Path, id: &str) -> ContainerDir {
        ContainerDir {
            id: id.into(),
            path: root.join(id),
        }
    }

    /// The directory of `id` whatever its content (state.json may be missing or corrupt).
    pub fn open_any(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = root.join(id);
        if !path.is_dir() {
            return Err(Error::NotExist(id.into()));
        }
        Ok(ContainerDir {
            id: id.into(),
            path,
        })
    }

    /// Records what create is about to make (call it before making it).
    pub fn save_leftovers(&self, l: &Leftovers) -> Result<()> {
        let data = serde_json::to_vec(l).map_err(|e| Error::Init(e.to_string()))?;
        write_atomic(&self.path.join(LEFTOVERS_FILE), &data)
    }

    /// The record of create's work; empty when there is none (nothing was made yet).
    pub fn load_leftovers(&self) -> Leftovers {
        fs::read(self.path.join(LEFTOVERS_FILE))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default()
    }

    /// Takes the container's lock; it is held until the returned guard is dropped. The lock is
    /// the state directory itself (flock on a directory fd): nothing is created for it, so
    /// start, pause, update and delete still work when the state root's file system is full
    /// or read-only (a lock *file* made on first use could not be, and delete failed).
    pub fn lock(&self) -> Result<Flock<File>> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&self.path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotExist(self.id.clone()),
                _ => Error::io("open", &self.path, e),
            })?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::sys("flock", self.path.display().to_string(), e))
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
        let text = crate::sys::read_small(&p).map_err(|e| match e.kind() {
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
        } else if state.cgroup.as_ref().is_some_and(|c| c.is_paused()) {
            // A frozen cgroup is `paused` whatever froze it, even before start (runc's order).
            Status::Paused
        } else if self.exec_fifo().exists() && !init_execed(state) {
            Status::Created
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
            helpers: helpers(state),
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

/// (state char, start time) of a process from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = crate::sys::read_small(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and ')': the fields after it start at the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the line is index 19 after the state (field 3).
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether a helper process (pid, start time) is still the one ward started and alive.
pub fn helper_alive((pid, start): (i32, u64)) -> bool {
    matches!(proc_stat(pid), Some((s, t)) if t == start && s != 'Z' && s != 'X')
}

/// The container's helpers and whether each still runs (None: it has none).
pub fn helpers(state: &Stored) -> Option<std::collections::BTreeMap<&'static str, &'static str>> {
    let named = [("supervisor", state.supervisor), ("proxy", state.proxy)];
    let map: std::collections::BTreeMap<_, _> = named
        .into_iter()
        .filter_map(|(name, h)| {
            h.map(|h| (name, if helper_alive(h) { "running" } else { "exited" }))
        })
        .collect();
    (!map.is_empty()).then_some(map)
}

/// The (device, inode) of the file a live process runs.
pub fn exe_of(pid: i32) -> Option<(u64, u64)> {
    nix::sys::stat::stat(format!("/proc/{pid}/exe").as_str())
        .ok()
        .map(|st| (st.st_dev, st.st_ino))
}

/// Has init exec'd the container's process? Known only when create recorded the file init ran
/// and it can still be looked at; otherwise no (the exec fifo alone decides, as in runc).
pub(crate) fn init_execed(state: &Stored) -> bool {
    state
        .init_exe
        .is_some_and(|made| exe_of(state.pid).is_some_and(|now| now != made))
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
    fn own_process_is_alive() {
        let pid = std::process::id() as i32;
        let (s, t) = proc_stat(pid).unwrap();
        assert_ne!(s, 'Z');
        assert!(t > 0);
    }
}
