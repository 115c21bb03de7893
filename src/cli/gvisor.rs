//! Routing of the gvisor isolation tier: create/run of a bundle whose tier is gvisor, and every
//! later command for such an id, go to runsc with the caller's own arguments (ward keeps its
//! state record beside runsc's, so `list` shows both tiers).

use ward::container::gvisor_pod::Role;
use ward::container::state::{ContainerDir, Stored};
use ward::container::tier::{self, Runsc, Tier};
use ward::spec::Bundle;

use super::{gvisor_pod, Cli, Command};

/// Global flags of ward that take a value (to find where the subcommand starts in argv).
const VALUE_FLAGS: &[&str] = &[
    "--root",
    "--log",
    "--log-format",
    "--rootless",
    "--default-isolation",
    "--egress-resolver",
    "--egress-ca",
    "--interception",
];

/// The arguments after the subcommand, as the caller wrote them.
fn sub_args() -> (String, Vec<String>) {
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        if VALUE_FLAGS.contains(&a.as_str()) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return (a.clone(), argv[i + 1..].to_vec());
        }
    }
    (String::new(), Vec::new())
}

fn runsc(cli: &Cli) -> Runsc {
    let format = match cli.log_format {
        ward::logging::LogFormat::Json => "json",
        ward::logging::LogFormat::Text => "text",
    };
    Runsc::new(&cli.root, cli.log.as_deref(), Some(format), cli.debug)
}

/// ward's own flags runsc does not know and that mean nothing under gVisor.
fn for_runsc(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .filter(|a| a != "--no-pivot" && a != "--no-new-keyring")
        .collect()
}

/// `Some(exit code)` when the command was handled in the gvisor tier.
pub fn route(cli: &Cli, cmd: &Command) -> ward::Result<Option<i32>> {
    let root = cli.root.as_path();
    let (id, bundle, create_like) = match cmd {
        Command::Create(a) => (&a.flags.id, Some(&a.flags.bundle), true),
        Command::Run(a) => (&a.flags.id, Some(&a.flags.bundle), true),
        Command::Start(a) => (&a.id, None, false),
        // state keeps ward's shape for both tiers (cli/state.rs asks runsc itself).
        Command::State(_) => return Ok(None),
        Command::Kill(a) => (&a.id, None, false),
        Command::Delete(a) => (&a.id, None, false),
        Command::Exec(a) => (&a.id, None, false),
        Command::Pause(a) | Command::Resume(a) => (&a.id, None, false),
        Command::Ps(a) => (&a.id, None, false),
        Command::Events(a) => (&a.id, None, false),
        Command::Update(a) => (&a.id, None, false),
        _ => return Ok(None),
    };
    if create_like {
        let mut b = Bundle::load(
            bundle
                .map(|p| p.as_path())
                .unwrap_or(std::path::Path::new(".")),
        )?;
        let mut t = tier::choose(cli.default_isolation, b.spec.annotations().as_ref())?;
        let role = ward::container::gvisor_pod::role(b.spec.annotations().as_ref())?;
        if let Role::Subcontainer { sandbox } = &role {
            t = tier::for_pod_member(root, sandbox, t)?;
        }
        if t != Tier::Gvisor {
            // The native tier loads the bundle again: this copy's env (credentials' values
            // among it) is wiped, not left in freed memory that init's fork would carry.
            ward::container::credentials::wipe_env(&mut b);
            return Ok(None);
        }
        tier::refuse_unhonoured(&b)?;
        return create(cli, cmd, &b, id, &role).map(Some);
    }
    if tier::of(root, id) != Tier::Gvisor {
        return Ok(None);
    }
    let dir = ContainerDir::open(root, id)?;
    let stored = dir.load()?;
    let mut r = runsc(cli);
    r.network = dir
        .load_config()
        .map(|spec| tier::network_of(root, &spec))
        .unwrap_or_default();
    let sub = matches!(
        ward::container::gvisor_pod::role(Some(&stored.annotations)),
        Ok(Role::Subcontainer { .. })
    );
    if sub && matches!(cmd, Command::Start(_)) {
        return gvisor_pod::start(&r, &dir, &stored).map(Some);
    }
    if let Command::Delete(a) = cmd {
        return delete(&r, &dir, &stored, a.force, sub).map(Some);
    }
    let (name, args) = sub_args();
    let mut full = vec![name.clone()];
    full.extend(for_runsc(args));
    let code = r.run(&full)?;
    if name == "kill" && code != 0 && !alive(&r, id) {
        // runsc says "sandbox is not running" or the like; the shim recognizes runc's words
        // (the last error line of the log) and then takes the kill as done: a sandbox whose
        // container exited must not stay stuck in StopPodSandbox.
        return Err(ward::Error::BadState("container not running".into()));
    }
    Ok(Some(code))
}

/// `delete [-f]` in the gvisor tier: runsc's own delete (ward's flags spelled as runsc knows
/// them: it has no `-f`), then, with --force, whatever of the sandbox and the gofer survived
/// it is killed (the sandbox with its process group): nothing of the container outlives a
/// forced delete. A container in a pod's sandbox never takes the shared sandbox down.
fn delete(
    r: &Runsc,
    dir: &ContainerDir,
    stored: &Stored,
    force: bool,
    sub: bool,
) -> ward::Result<i32> {
    let id = stored.id.as_str();
    let gofer = r.gofer(id);
    let mut args = vec!["delete".to_string()];
    if force {
        args.push("--force".into());
    }
    args.push(id.into());
    let mut code = r.run(&args)?;
    if force && !sub {
        let mut survivors = 0;
        if stored.init_start_time > 0 {
            survivors += end(stored.pid, stored.init_start_time, true);
        }
        if let Some((pid, start)) = gofer {
            survivors += end(pid, start, false);
        }
        if survivors > 0 {
            tracing::warn!("runsc delete left {survivors} process(es) of {id}: killed");
        }
        if code != 0 && r.run(&args)? != 0 {
            // The processes are gone now; a record runsc still refuses to drop would block
            // the id's reuse.
            r.forget(id);
        }
        code = 0;
    }
    if code == 0 {
        if sub {
            gvisor_pod::end_keeper(stored)?;
        }
        dir.remove()?;
    }
    Ok(code)
}

/// SIGKILLs `pid` if it is still the process started at `start` (and its process group when
/// `group`: runsc's sandbox leads one), then waits for it; 1 if it had to be killed.
fn end(pid: i32, start: u64, group: bool) -> usize {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let same = || matches!(ward::container::state::proc_stat(pid), Some((s, t)) if t == start && s != 'Z' && s != 'X');
    if !same() {
        return 0;
    }
    if group && nix::unistd::getpgid(Some(Pid::from_raw(pid))) == Ok(Pid::from_raw(pid)) {
        let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    for _ in 0..400 {
        if !same() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    1
}

/// runsc knows the container and its process has not ended.
fn alive(r: &Runsc, id: &str) -> bool {
    r.state(id).is_ok_and(|st| {
        matches!(
            st["status"].as_str(),
            Some("created" | "running" | "paused")
        )
    })
}

/// `ward gvisor-keeper` (started by create for a container in a gVisor pod).
pub fn keeper(cli: &Cli, a: &gvisor_pod::KeeperArgs) -> ward::Result<i32> {
    let mut r = runsc(cli);
    r.network = ContainerDir::open(&cli.root, &a.id)
        .and_then(|d| d.load_config())
        .map(|spec| tier::network_of(&cli.root, &spec))
        .unwrap_or_default();
    gvisor_pod::keeper(&r, a)
}

fn create(cli: &Cli, cmd: &Command, b: &Bundle, id: &str, role: &Role) -> ward::Result<i32> {
    let dir = ContainerDir::create(&cli.root, id)?;
    let mut r = runsc(cli);
    r.network = tier::network_of(&cli.root, &b.spec);
    if let (Role::Subcontainer { .. }, Command::Create(a)) = (role, cmd) {
        return match gvisor_pod::create(cli, &r, b, &a.flags, &dir) {
            Ok(()) => Ok(0),
            Err(e) => {
                let _ = r.run(&["delete".into(), "--force".into(), id.into()]);
                dir.remove()?;
                Err(e)
            }
        };
    }
    let (sub, args) = sub_args();
    let mut full = vec![sub];
    full.extend(for_runsc(args));
    let foreground = matches!(cmd, Command::Run(a) if !a.detach);
    let keep = matches!(cmd, Command::Run(a) if a.keep);
    if foreground {
        // Recorded first, so `list` shows it while it runs.
        let placeholder = ward::container::state::Stored {
            oci_version: b.spec.version().clone(),
            id: id.into(),
            pid: 0,
            bundle: b.dir.clone(),
            rootfs: b.rootfs.clone(),
            created: String::new(),
            annotations: b.spec.annotations().clone().unwrap_or_default(),
            owner: String::new(),
            init_start_time: 0,
            init_exe: None,
            private_pid_ns: true,
            cgroup: None,
            tier: Tier::Gvisor,
            supervisor: None,
            proxy: None,
            proxy_netns: None,
        };
        dir.save_config(&b.raw)?;
        dir.save(&placeholder)?;
        let code = r.run(&full);
        if !keep {
            let _ = r.run(&["delete".into(), "--force".into(), id.into()]);
            dir.remove()?;
        }
        return code;
    }
    match r.run(&full) {
        Ok(0) => {
            tier::record(&dir, &r, b, id, None)?;
            Ok(0)
        }
        other => {
            let _ = r.run(&["delete".into(), "--force".into(), id.into()]);
            dir.remove()?;
            other
        }
    }
}
