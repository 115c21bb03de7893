//! The macOS executor: run a [`Plan`] under `/usr/bin/sandbox-exec -p <profile>`.
//!
//! The container is a plain process tree: its init leads a new process group, so `state` is
//! "is the leader alive", `kill` signals the group, and `delete` kills what is left and removes
//! the per-container directories. Compiled (checked) only for macOS targets; the libc calls
//! come from the `libc` crate's macOS bindings (libSystem).
//!
//! `create` and `start` are split as runc splits them: the process is forked at create and
//! waits on a fifo (`read` in `/bin/sh`, before it execs sandbox-exec) until `start` writes to
//! it, so the container has its pid from create on.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};

use super::seatbelt::Plan;

const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";
/// `$0` is the fifo, `$@` the sandbox-exec command line.
const WAIT_FOR_START: &str = r#"read -r _ < "$0" && exec "$@""#;

/// The program to exec: `args[0]` as a path under the root, or looked up in the plan's `PATH`
/// (already moved under the root), as execvp would inside the container.
fn program(plan: &Plan) -> io::Result<String> {
    let arg0 = plan
        .args
        .first()
        .ok_or_else(|| io::Error::other("process.args is empty"))?;
    if arg0.contains('/') {
        return Ok(if arg0.starts_with('/') {
            format!("{}{arg0}", plan.root)
        } else {
            arg0.clone()
        });
    }
    let path = plan
        .env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or_default();
    path.split(':')
        .map(|dir| format!("{dir}/{arg0}"))
        .find(|candidate| std::path::Path::new(candidate).is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{arg0}: not found in the container's PATH"),
            )
        })
}

/// Start the container's process, sandboxed; it leads its own process group. With
/// `start_fifo`, the fifo is made and the process waits on it until [`release`].
pub fn spawn(plan: &Plan, start_fifo: Option<&Path>) -> io::Result<Child> {
    for dir in &plan.fresh_dirs {
        std::fs::create_dir_all(dir)?;
    }
    let mut cmd = match start_fifo {
        None => Command::new(SANDBOX_EXEC),
        Some(fifo) => {
            nix::unistd::mkfifo(
                fifo,
                nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
            )
            .map_err(io::Error::from)?;
            let mut sh = Command::new("/bin/sh");
            sh.arg("-c").arg(WAIT_FOR_START).arg(fifo).arg(SANDBOX_EXEC);
            sh
        }
    };
    let rest = plan.args.get(1..).unwrap_or_default();
    cmd.arg("-p")
        .arg(&plan.profile)
        .arg("--")
        .arg(program(plan)?)
        .args(rest);
    cmd.env_clear();
    for kv in &plan.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.current_dir(&plan.cwd).process_group(0);
    let rlimits = plan.rlimits.clone();
    let mask = plan.umask;
    // SAFETY: the closure runs in the forked child before exec; it only calls setrlimit and
    // umask, which are async-signal-safe, on values copied in before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for (resource, soft, hard) in &rlimits {
                let lim = libc::rlimit {
                    rlim_cur: *soft,
                    rlim_max: *hard,
                };
                // SAFETY: `lim` is a valid, live rlimit struct for the duration of the call.
                if libc::setrlimit(*resource, &lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(m) = mask {
                // SAFETY: umask cannot fail; mode_t is u16 on macOS and the mask is 0o777-bounded.
                libc::umask((m & 0o777) as libc::mode_t);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Let a created container's process go on to sandbox-exec (`start`). Fails, rather than
/// blocking, when nothing waits on the fifo any more (the process died).
pub fn release(fifo: &Path) -> io::Result<()> {
    // The process may not have opened the fifo yet right after create: retry for a second.
    let mut tries = 0;
    let mut file = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(fifo)
        {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => break r?,
        }
    };
    file.write_all(b"\n")?;
    std::fs::remove_file(fifo)
}

/// Whether the container's init (the process group leader) is alive.
pub fn is_running(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Signal every process of the container (its process group).
pub fn signal(pid: i32, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::other("no container process"));
    }
    // SAFETY: a negative pid addresses the process group the container's init leads.
    if unsafe { libc::kill(-pid, sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Kill what is left and remove the per-container directories.
pub fn delete(pid: i32, fresh_dirs: &[String]) -> io::Result<()> {
    if is_running(pid) {
        signal(pid, libc::SIGKILL)?;
    }
    for dir in fresh_dirs {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
