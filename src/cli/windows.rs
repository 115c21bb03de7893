//! The Windows front end: `run` in the foreground over `ward::platform::windows_exec` (HCS).
//!
//! The compute system ends when its last handle closes (`ShouldTerminateOnLastHandleClosed`),
//! so a container lives exactly as long as the `ward run` that holds it: create, start, state,
//! kill, delete and list would need a long-lived ward (a shim) that does not exist yet, and are
//! refused as not supported on Windows, as are `run --detach` and the other commands.

use std::path::Path;

use ward::platform::{self, hcs, windows_exec, Context};

use super::Command;

pub const OS: &str = "Windows";

pub fn run(root: &Path, cmd: &Command) -> ward::Result<i32> {
    match cmd {
        Command::Run(a) => run_foreground(root, a),
        other => Err(ward::Error::NotOnThisOs(
            format!("ward {}", other.name()),
            OS,
        )),
    }
}

fn run_foreground(root: &Path, a: &super::run::Args) -> ward::Result<i32> {
    let f = &a.flags;
    for (given, flag) in [
        (a.detach, "run --detach"),
        (f.console_socket.is_some(), "--console-socket"),
        (f.pid_file.is_some(), "--pid-file"),
        (f.preserve_fds > 0, "--preserve-fds"),
        (f.pidfd_socket.is_some(), "--pidfd-socket"),
    ] {
        if given {
            return Err(ward::Error::NotOnThisOs(flag.into(), OS));
        }
    }
    let bundle = platform::bundle_path(&f.bundle);
    let spec = platform::load_spec(&bundle, platform::Target::Hcs)?;
    let ctx = Context {
        id: f.id.clone(),
        bundle,
        state_dir: root.join(&f.id),
        loopback_ports: Vec::new(),
    };
    let docs = hcs::translate(&spec, &ctx)?;
    let hcs_err = |e: std::io::Error| ward::Error::Host(format!("container {}: {e}", f.id));
    let running = windows_exec::run(&f.id, &docs).map_err(hcs_err)?;
    let code = running.process.wait().map_err(hcs_err)?;
    running.terminate().map_err(hcs_err)?;
    // An exit code is a u32 on Windows; ward's own exit status is an i32 (same bits).
    Ok(code as i32)
}
