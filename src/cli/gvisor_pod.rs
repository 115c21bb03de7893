//! The app containers of a gVisor pod (runsc subcontainers) under containerd's runc shim; the
//! why is in ward::container::gvisor_pod.
//! `create` leaves a keeper behind and gives the shim its pid,
//! `start` runs `runsc start` with the stdio the keeper holds and releases it, the keeper exits
//! with the container's status, `delete` ends a keeper whose container never ran.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ward::container::gvisor_pod::{self, Pinned};
use ward::container::state::{ContainerDir, Stored};
use ward::container::tier::Runsc;
use ward::spec::Bundle;
use ward::{Error, Result};

use super::{Cli, CreateFlags};

/// `ward gvisor-keeper`: not for people; `create` starts it.
#[derive(clap::Args, Debug)]
pub struct KeeperArgs {
    /// The start fifo, opened read-write by `create` and inherited.
    #[arg(long = "start-fd")]
    pub start_fd: i32,
    pub id: String,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io("resolve", p, e))
}

/// `create` of a subcontainer: runsc records it in the pod's sandbox (no process yet, and
/// runsc's pid-file would name the sandbox; a terminal's master goes to --console-socket now),
/// then the keeper is left holding our stdio and its pid goes to --pid-file.
pub fn create(cli: &Cli, r: &Runsc, b: &Bundle, f: &CreateFlags, dir: &ContainerDir) -> Result<()> {
    if f.preserve_fds > 0 {
        return Err(Error::Unsupported(
            "--preserve-fds for a container joining a gVisor pod".into(),
        ));
    }
    let terminal = b
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    // runsc itself sends a subcontainer's pty master during create, as runc does.
    ward::container::create::check_console(terminal, f.console_socket.is_some(), false)?;
    let console = match &f.console_socket {
        Some(sock) if terminal => Some(absolute(sock)?),
        _ => None,
    };
    let mut args = vec![
        "create".to_string(),
        "--bundle".into(),
        absolute(&b.dir)?.display().to_string(),
    ];
    if let Some(c) = console {
        args.extend(["--console-socket".into(), c.display().to_string()]);
    }
    args.push(dir.id.clone());
    let code = r.run(&args)?;
    if code != 0 {
        return Err(Error::Init(format!(
            "runsc create {} in its pod's sandbox exited with {code}",
            dir.id
        )));
    }
    let mut keeper = spawn_keeper(cli, dir, terminal)?;
    let pid = keeper.id() as i32;
    let recorded = ward::container::state::proc_stat(pid)
        .map(|(_, t)| t)
        .ok_or_else(|| Error::Init(format!("keeper {pid} exited at once")))
        .and_then(|start_time| {
            if let Some(pf) = &f.pid_file {
                ward::container::state::write_atomic(&absolute(pf)?, pid.to_string().as_bytes())?;
            }
            ward::container::tier::record(dir, r, b, &dir.id, Some((pid, start_time)))
        });
    if recorded.is_err() {
        // Still our child: end it, or it would wait for a start that never comes.
        let _ = keeper.kill();
        let _ = keeper.wait();
    }
    recorded
}

/// Starts `ward gvisor-keeper`, holding our stdio (it outlives us and is reparented to our
/// caller, a subreaper under containerd). With a terminal the container's stdio is the pty
/// runsc made, and ours is the caller's capture of our output: the keeper must not hold that
/// open (the shim reads it to EOF before create counts as done).
fn spawn_keeper(cli: &Cli, dir: &ContainerDir, terminal: bool) -> Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // /proc/self/exe itself, not the path it names: ward runs from a detached read-only copy
    // of its binary (selfclone.rs), which has no path.
    let exe = std::path::PathBuf::from("/proc/self/exe");
    // Opened without close-on-exec, and only now, so the keeper is the one process inheriting it.
    let fifo = gvisor_pod::make_start_fifo(&dir.exec_fifo())?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg0(std::env::args_os().next().unwrap_or_else(|| "ward".into()));
    cmd.arg("--root").arg(absolute(&cli.root)?);
    if let Some(l) = &cli.log {
        cmd.arg("--log").arg(absolute(l)?);
    }
    cmd.arg("--log-format").arg(match cli.log_format {
        ward::logging::LogFormat::Json => "json",
        ward::logging::LogFormat::Text => "text",
    });
    if cli.debug {
        cmd.arg("--debug");
    }
    cmd.arg("gvisor-keeper")
        .arg("--start-fd")
        .arg(fifo.as_raw_fd().to_string())
        .arg(&dir.id)
        // Out of the bundle (the shim removes it) and out of a terminal's job control.
        .current_dir("/")
        .process_group(0);
    if terminal {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    let child = cmd
        .spawn()
        .map_err(|e| Error::io("spawn", "ward gvisor-keeper", e))?;
    drop(fifo);
    Ok(child)
}

/// `start` of a subcontainer: runsc starts it with the stdio create was given (taken from the
/// keeper), then the keeper may wait for it.
pub fn start(r: &Runsc, dir: &ContainerDir, stored: &Stored) -> Result<i32> {
    let keeper = Pinned::open(stored.pid, stored.init_start_time)?.ok_or_else(|| {
        Error::BadState(format!(
            "container {}: its keeper (pid {}) is gone, so its exit could not be reported: delete it",
            stored.id, stored.pid
        ))
    })?;
    let [i, o, e] = [0, 1, 2].map(|fd| keeper.take_fd(fd));
    let mut cmd = r.command(&["start".into(), stored.id.clone()])?;
    cmd.stdin(Stdio::from(i?))
        .stdout(Stdio::from(o?))
        .stderr(Stdio::from(e?));
    let status = cmd
        .status()
        .map_err(|e| Error::io("run", "runsc start", e))?;
    if !status.success() {
        return Ok(status.code().unwrap_or(1));
    }
    gvisor_pod::release_keeper(&dir.exec_fifo())?;
    let _ = std::fs::remove_file(dir.exec_fifo());
    Ok(0)
}

/// After runsc deleted a subcontainer: a keeper still waiting for `start` (the container never
/// ran) is ended; one that waits on runsc has already exited or will with the container.
pub fn end_keeper(stored: &Stored) -> Result<()> {
    if let Some(k) = Pinned::open(stored.pid, stored.init_start_time)? {
        k.kill()?;
    }
    Ok(())
}

/// The keeper: waits for `start`, lets go of the container's stdio, and exits with the
/// container's status as `runsc wait` reports it.
pub fn keeper(r: &Runsc, a: &KeeperArgs) -> Result<i32> {
    let st = nix::sys::stat::fstat(a.start_fd)
        .map_err(|e| Error::sys("fstat", format!("start fd {}", a.start_fd), e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Err(Error::Init(format!(
            "gvisor-keeper: fd {} is not the start fifo",
            a.start_fd
        )));
    }
    // SAFETY: the fd is open (fstat succeeded), is the fifo create left to us, and nothing
    // else in this process owns it.
    let fifo = unsafe { OwnedFd::from_raw_fd(a.start_fd) };
    if !gvisor_pod::await_start(fifo)? {
        return Ok(255);
    }
    gvisor_pod::release_stdio()?;
    let out = r
        .command(&["wait".into(), a.id.clone()])?
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("run", "runsc wait", e))?;
    match gvisor_pod::wait_status(&out.stdout) {
        Ok(code) => Ok(code & 0xff),
        Err(e) => {
            // Its sandbox went away under it (the pod was stopped): report it killed.
            tracing::warn!(
                "gvisor-keeper {}: {e}; runsc: {}",
                a.id,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            Ok(128 + libc::SIGKILL)
        }
    }
}
