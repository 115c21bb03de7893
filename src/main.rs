//! The `ward` binary: parse the command line, set up logging, dispatch, and turn errors into
//! runc's exit codes and log lines.

mod cli;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod seal_entry;

use cli::{Cli, Command};

fn main() {
    // Commands whose processes enter a container run from an unwritable copy of ward
    // (CVE-2019-5736 with CAP_SYS_PTRACE): re-executed once, before any work. Any argument
    // spelling such a command triggers it (a spare re-exec costs only time, a missed one the
    // host's binary); a failure is reported once logging is set up. On x86_64 the entry point
    // (seal_entry.rs) applies the same three words first: its list must match this one
    // (conformance/reexec.rs runs each of them).
    #[cfg(target_os = "linux")]
    let unsealed = {
        let enters = std::env::args_os()
            .skip(1)
            .any(|a| a == "create" || a == "run" || a == "exec");
        // `ward sandbox` by a user who cannot write ward's file: see `writable_by_caller`.
        let sandbox = std::env::args_os().skip(1).any(|a| a == "sandbox")
            && (nix::unistd::geteuid().is_root()
                || ward::container::selfclone::writable_by_caller());
        (enters || sandbox)
            .then(ward::container::selfclone::ensure)
            .and_then(|r| r.err())
    };
    #[cfg(not(target_os = "linux"))]
    let unsealed: Option<ward::Error> = None;
    let mut cli = cli::help::parse();
    // Commands that only report on stdout end as runc's (Go's) do when their reader has gone
    // (`ward list | head -1`): killed by SIGPIPE, not a panic of a failed print. The others
    // keep Rust's ignored SIGPIPE: a write to an internal pipe must fail, not kill ward midway.
    #[cfg(unix)]
    if cli.version
        || matches!(
            cli.command,
            None | Some(
                Command::Version
                    | Command::List(_)
                    | Command::State(_)
                    | Command::Features(_)
                    | Command::Ps(_)
                    | Command::Events(_)
                    | Command::Completion(_)
                    | Command::Man(_)
                    | Command::Help(_)
            )
        )
    {
        // SAFETY: signal(2) with a valid signal number and SIG_DFL; no handler is involved.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    if cli.version || matches!(cli.command, Some(Command::Version)) {
        print!("{}", cli::version_text());
        return;
    }
    if let Some(Command::Help(h)) = &cli.command {
        std::process::exit(cli::help::help(h.topic.as_deref()));
    }
    // Generated from the command line itself: no logging, no state root.
    let generated = match &cli.command {
        Some(Command::Completion(a)) => Some(cli::completion::completion(a)),
        Some(Command::Man(a)) => Some(cli::completion::man(a)),
        _ => None,
    };
    if let Some(r) = generated {
        std::process::exit(r.unwrap_or_else(|e| {
            eprintln!("ward: {e}");
            1
        }));
    }
    let sandbox = is_sandbox(&cli);
    let max = match (cli.debug, sandbox) {
        (true, _) => tracing::Level::DEBUG,
        (false, true) => tracing::Level::ERROR,
        (false, false) => tracing::Level::INFO,
    };
    if let Err(e) = ward::logging::init_at(cli.log.as_deref(), cli.log_format, max) {
        eprintln!("ward: {e}");
        std::process::exit(1);
    }
    // Without a state root only the commands that need none can run (`spec`, `features`).
    let no_root = cli.resolve_root().err();
    let result = match (unsealed, no_root) {
        (Some(e), _) => Err(e),
        (None, Some(e))
            if !matches!(cli.command, Some(Command::Spec(_) | Command::Features(_)))
                && !sandbox =>
        {
            Err(e)
        }
        (None, _) => dispatch(&cli),
    };
    let code = match result {
        Ok(code) => code,
        // `ward sandbox` speaks to a person at a terminal: one plain line.
        Err(e) if sandbox && cli.log.is_none() && !cli.debug => {
            eprintln!("ward sandbox: {e}");
            1
        }
        Err(e) => {
            tracing::error!("{e}");
            if cli.log.is_some() {
                eprintln!("ward: {e}");
            }
            1
        }
    };
    std::process::exit(code);
}

/// `ward sandbox` (Linux only): it speaks to a person, and makes its own state root.
fn is_sandbox(cli: &Cli) -> bool {
    #[cfg(target_os = "linux")]
    return matches!(cli.command, Some(Command::Sandbox(_)));
    #[cfg(not(target_os = "linux"))]
    return {
        let _ = cli;
        false
    };
}

#[cfg(target_os = "linux")]
fn dispatch(cli: &Cli) -> ward::Result<i32> {
    ward::container::rootless::decide(cli.rootless.as_deref())?;
    let root = cli.root.as_path();
    let Some(cmd) = &cli.command else {
        return Err(ward::Error::spec("command", "missing; see ward --help"));
    };
    if let Some(code) = cli::gvisor::route(cli, cmd)? {
        return Ok(code);
    }
    match cmd {
        Command::Create(a) => cli::create::run(root, a, cli),
        Command::Start(a) => cli::start::run(root, a),
        Command::Run(a) => cli::run::run(root, a, cli),
        Command::State(a) => cli::state::run(root, a),
        Command::List(a) => cli::list::run(root, a),
        Command::Kill(a) => cli::kill::run(root, a),
        Command::Delete(a) => cli::delete::run(root, a),
        Command::Spec(a) => cli::spec::run(a),
        Command::Features(a) => cli::features::run(a),
        Command::Exec(a) => cli::exec::run(root, a),
        Command::Pause(a) => cli::pause::pause(root, a),
        Command::Resume(a) => cli::pause::resume(root, a),
        Command::Update(a) => cli::update::run(root, a),
        Command::Ps(a) => cli::ps::run(root, a),
        Command::Events(a) => cli::events::run(root, a),
        Command::Translate(a) => cli::translate::run(root, a),
        Command::GvisorKeeper(a) => cli::gvisor::keeper(cli, a),
        Command::Sandbox(a) => cli::sandbox::run(&cli::sandbox::state_root(cli)?, a, cli),
        Command::Hook(h) => cli::hook::run(root, cli.egress_resolver, cli.egress_ca.as_deref(), h),
        Command::Version | Command::Help(_) | Command::Completion(_) | Command::Man(_) => Ok(0),
    }
}

/// macOS and Windows: translate and features here (every OS has them), the executor's
/// commands in `cli::host`, which refuses the others as not supported on this OS.
#[cfg(not(target_os = "linux"))]
fn dispatch(cli: &Cli) -> ward::Result<i32> {
    let os = cli::host::OS;
    if cli.systemd_cgroup {
        return Err(ward::Error::NotOnThisOs("--systemd-cgroup".into(), os));
    }
    if cli
        .rootless
        .as_deref()
        .is_some_and(|r| r != "false" && r != "auto")
    {
        return Err(ward::Error::NotOnThisOs("--rootless".into(), os));
    }
    let Some(cmd) = &cli.command else {
        return Err(ward::Error::spec("command", "missing; see ward --help"));
    };
    match cmd {
        Command::Features(a) => cli::features::run(a),
        Command::Translate(a) => cli::translate::run(&cli.root, a),
        Command::Version | Command::Help(_) | Command::Completion(_) | Command::Man(_) => Ok(0),
        other => cli::host::run(&cli.root, other),
    }
}
