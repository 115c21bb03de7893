//! The container lifecycle on macOS: `<root>/<id>/state.json` around [`darwin_exec`].
//!
//! create translates the bundle (refusing what Seatbelt cannot enforce), forks the process
//! waiting on `<root>/<id>/start.fifo` and records its pid; start releases it; the status is
//! derived, never stored: stopped when the pid is gone, created while the fifo exists, else
//! running. Unlike Linux, a reused pid is not told apart from the container's (no start time
//! is recorded).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::darwin_exec;
use super::{seatbelt, Context};
use crate::error::{Error, IoContext, Result};
use crate::sys::stateroot::{self, Report, Status, STATE_FILE};

const START_FIFO: &str = "start.fifo";

/// What is stored in state.json on macOS.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The per-container directories standing in for tmpfs mounts, removed on delete.
    #[serde(default)]
    pub fresh_dirs: Vec<String>,
}

fn dir_of(root: &Path, id: &str) -> Result<PathBuf> {
    stateroot::validate_id(id)?;
    Ok(root.join(id))
}

pub fn load(root: &Path, id: &str) -> Result<Stored> {
    let path = dir_of(root, id)?.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotExist(id.into()),
        _ => Error::io("read", &path, e),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::spec("state.json", e.to_string()))
}

fn status(root: &Path, s: &Stored) -> Status {
    if !darwin_exec::is_running(s.pid) {
        Status::Stopped
    } else if root.join(&s.id).join(START_FIFO).exists() {
        Status::Created
    } else {
        Status::Running
    }
}

pub fn report(root: &Path, s: &Stored) -> Report {
    let status = status(root, s);
    Report {
        oci_version: s.oci_version.clone(),
        id: s.id.clone(),
        pid: if status == Status::Stopped { 0 } else { s.pid },
        status,
        bundle: s.bundle.clone(),
        rootfs: s.rootfs.clone(),
        created: s.created.clone(),
        annotations: s.annotations.clone(),
        owner: String::new(),
        helpers: None,
    }
}

/// Translate the bundle, fork the process waiting for `start`; returns its pid. A failure
/// after the state directory was claimed removes it again.
pub fn create(root: &Path, id: &str, bundle: &Path) -> Result<i32> {
    let dir = dir_of(root, id)?;
    stateroot::ensure_root(root)?;
    let bundle = std::fs::canonicalize(bundle).io("resolve bundle", bundle)?;
    let spec = super::load_spec(&bundle, super::Target::Seatbelt)?;
    let ctx = Context {
        id: id.into(),
        bundle: bundle.clone(),
        state_dir: dir.clone(),
        loopback_ports: Vec::new(),
    };
    let plan = seatbelt::plan(&spec, &ctx)?;
    match std::fs::create_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Exists(id.into()))
        }
        r => r.io("create container state", &dir)?,
    }
    let created = (|| {
        let child = darwin_exec::spawn(&plan, Some(&dir.join(START_FIFO)))
            .io("spawn sandbox-exec for", &bundle)?;
        let stored = Stored {
            oci_version: spec.version().clone(),
            id: id.into(),
            pid: child.id() as i32,
            bundle: bundle.clone(),
            rootfs: PathBuf::from(&plan.root),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            annotations: spec.annotations().clone().unwrap_or_default(),
            fresh_dirs: plan.fresh_dirs.clone(),
        };
        let data = serde_json::to_vec(&stored).map_err(|e| Error::Init(e.to_string()))?;
        stateroot::write_atomic(&dir.join(STATE_FILE), &data).map(|()| stored.pid)
    })();
    if created.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    created
}

pub fn start(root: &Path, id: &str) -> Result<()> {
    let s = load(root, id)?;
    match status(root, &s) {
        Status::Created => {}
        other => {
            return Err(Error::BadState(format!(
                "cannot start a container that is {other}"
            )))
        }
    }
    let fifo = root.join(id).join(START_FIFO);
    darwin_exec::release(&fifo).io("release", &fifo)
}

/// Signal every process of the container (it leads its own process group).
pub fn kill(root: &Path, id: &str, sig: i32) -> Result<()> {
    let s = load(root, id)?;
    if status(root, &s) == Status::Stopped {
        return Err(Error::BadState("container not running".into()));
    }
    darwin_exec::signal(s.pid, sig).io("kill", format!("process group {}", s.pid))
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let s = load(root, id)?;
    let st = status(root, &s);
    if st == Status::Running && !force {
        return Err(Error::BadState(format!(
            "cannot delete container {id} that is not stopped: {st}"
        )));
    }
    darwin_exec::delete(s.pid, &s.fresh_dirs).io("delete", root.join(id))?;
    std::fs::remove_dir_all(root.join(id)).io("remove", root.join(id))
}

/// Every container under `root` with its report; one deleted meanwhile is left out.
pub fn list(root: &Path) -> Result<Vec<Report>> {
    let ids = stateroot::list_ids(root)?;
    Ok(ids
        .iter()
        .filter_map(|id| load(root, id).ok())
        .map(|s| report(root, &s))
        .collect())
}
