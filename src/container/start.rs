//! `ward start`: release a created init to execve the user process, then run poststart hooks.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::container::hook_state;
use crate::error::{Error, Result};
use crate::hooks::{run_hooks, HookKind};
use crate::state::{ContainerDir, Status};

pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let _lock = dir.lock()?;
    let stored = dir.load()?;
    match dir.status(&stored) {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::BadState(
                "cannot start a container that has stopped".into(),
            ))
        }
        s => {
            return Err(Error::BadState(format!(
                "cannot start an already {s} container"
            )))
        }
    }
    let sock = dir.start_socket();
    let mut conn = UnixStream::connect(&sock).map_err(|e| Error::io("connect", &sock, e))?;
    // From here on the container is no longer "created", whatever happens next.
    let _ = std::fs::remove_file(&sock);
    // startContainer hooks still see the container as "created" (runc does the same).
    conn.write_all(&hook_state(&stored, Status::Created))
        .map_err(|e| Error::io("write", &sock, e))?;
    // init closes the connection by execve (CLOEXEC) on success, or writes why it failed.
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    if !reply.is_empty() {
        return Err(Error::Init(reply));
    }
    let config = dir.load_config()?;
    let hooks = config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().clone())
        .unwrap_or_default();
    // runtime-spec: a failing poststart hook is logged; the container keeps running.
    if let Err(e) = run_hooks(
        HookKind::Poststart,
        &hooks,
        &hook_state(&stored, Status::Running),
    ) {
        tracing::warn!("poststart hook failed: {e}");
    }
    Ok(())
}
