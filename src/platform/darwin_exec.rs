//! The macOS executor: run a [`Plan`] under `/usr/bin/sandbox-exec -p <profile>`.
//!
//! The container is a plain process tree: its init leads a new process group, so `state` is
//! "is the leader alive", `kill` signals the group, and `delete` kills what is left and removes
//! the per-container directories. Never compiled on Linux; the three libc calls are declared by
//! hand (libSystem provides them) to keep platform code free of the Linux-only crates.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use super::seatbelt::Plan;

#[repr(C)]
struct Rlimit {
    cur: u64,
    max: u64,
}

extern "C" {
    fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
    fn umask(mask: u16) -> u16;
    fn kill(pid: i32, sig: i32) -> i32;
}

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

/// Start the container's process, sandboxed; it leads its own process group.
pub fn spawn(plan: &Plan) -> io::Result<Child> {
    for dir in &plan.fresh_dirs {
        std::fs::create_dir_all(dir)?;
    }
    let mut cmd = Command::new("/usr/bin/sandbox-exec");
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
                let lim = Rlimit {
                    cur: *soft,
                    max: *hard,
                };
                // SAFETY: `lim` is a valid, live rlimit struct for the duration of the call.
                if setrlimit(*resource, &lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(m) = mask {
                // SAFETY: umask cannot fail; mode_t is u16 on macOS and the mask is 0o777-bounded.
                umask((m & 0o777) as u16);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Whether the container's init (the process group leader) is alive.
pub fn is_running(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pid > 0 && unsafe { kill(pid, 0) } == 0
}

/// Signal every process of the container (its process group).
pub fn signal(pid: i32, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::other("no container process"));
    }
    // SAFETY: a negative pid addresses the process group the container's init leads.
    if unsafe { kill(-pid, sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Kill what is left (SIGKILL is 9 on macOS) and remove the per-container directories.
pub fn delete(pid: i32, plan: &Plan) -> io::Result<()> {
    if is_running(pid) {
        signal(pid, 9)?;
    }
    for dir in &plan.fresh_dirs {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
