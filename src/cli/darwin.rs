//! The macOS front end: create, start, run, state, list, kill, delete and spec over
//! `ward::platform::darwin` (sandbox-exec); anything else is refused as not supported on macOS.

use std::path::Path;

use ward::platform::darwin;

use super::{Command, CreateFlags};

pub const OS: &str = "macOS";

pub fn run(root: &Path, cmd: &Command) -> ward::Result<i32> {
    match cmd {
        Command::Spec(a) => super::spec::run(a),
        Command::Create(a) => create(root, &a.flags).map(|_| 0),
        Command::Start(a) => darwin::start(root, &a.id).map(|()| 0),
        Command::Run(a) => run_container(root, a),
        Command::State(a) => {
            let mut report = darwin::report(root, &darwin::load(root, &a.id)?);
            report.owner = super::list::owner_of(&root.join(&a.id));
            let text = serde_json::to_string_pretty(&report)
                .map_err(|e| ward::Error::Init(e.to_string()))?;
            println!("{text}");
            Ok(0)
        }
        Command::List(a) => {
            let mut reports = darwin::list(root)?;
            for r in &mut reports {
                r.owner = super::list::owner_of(&root.join(&r.id));
            }
            super::list::print(&reports, a)
        }
        // The container's processes are one process group: --all changes nothing.
        Command::Kill(a) => {
            darwin::kill(root, &a.id, ward::sys::signals::parse_signal(&a.signal)?).map(|()| 0)
        }
        Command::Delete(a) => match darwin::delete(root, &a.id, a.force) {
            // runc: deleting a container that is already gone with --force is not an error.
            Err(ward::Error::NotExist(_)) if a.force => Ok(0),
            r => r.map(|()| 0),
        },
        other => Err(ward::Error::NotOnThisOs(
            format!("ward {}", other.name()),
            OS,
        )),
    }
}

/// The flags of create and run that the macOS executor cannot honour are refused, not ignored.
fn create(root: &Path, f: &CreateFlags) -> ward::Result<i32> {
    for (given, flag) in [
        (f.console_socket.is_some(), "--console-socket"),
        (f.preserve_fds > 0, "--preserve-fds"),
        (f.pidfd_socket.is_some(), "--pidfd-socket"),
    ] {
        if given {
            return Err(ward::Error::NotOnThisOs(flag.into(), OS));
        }
    }
    let pid = darwin::create(root, &f.id, &f.bundle)?;
    if let Some(path) = &f.pid_file {
        std::fs::write(path, pid.to_string()).map_err(|e| ward::Error::io("write", path, e))?;
    }
    Ok(pid)
}

/// create + start; in the foreground, forward signals, wait, delete unless --keep, and exit
/// with the container's status (as on Linux).
fn run_container(root: &Path, a: &super::run::Args) -> ward::Result<i32> {
    let id = &a.flags.id;
    let pid = create(root, &a.flags)?;
    if let Err(e) = darwin::start(root, id) {
        let _ = darwin::delete(root, id, true);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    super::run::install_forwarding(pid);
    let status = super::run::wait_blocking(pid)?;
    if !a.keep {
        darwin::delete(root, id, true)?;
    }
    Ok(status)
}
