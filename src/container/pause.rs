//! `ward pause` / `ward resume`: freeze and thaw every process of the container through its
//! cgroup (cgroup.freeze on v2, the freezer hierarchy on v1), waiting until the kernel reports
//! the new state.

use std::path::Path;

use crate::container::state::{ContainerDir, Status};
use crate::error::{Error, Result};

pub fn set_paused(root: &Path, id: &str, paused: bool) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let _lock = dir.lock()?;
    let stored = dir.load()?;
    let status = dir.status(&stored);
    match (paused, status) {
        (true, Status::Running | Status::Created) | (false, Status::Paused) => {}
        (true, _) => return Err(Error::BadState("container not running".into())),
        (false, _) => return Err(Error::BadState("container not paused".into())),
    }
    let cg = stored
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::BadState(format!("container {id} has no cgroup to freeze")))?;
    cg.freeze(paused)
}
