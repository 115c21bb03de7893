//! `ward create`: validate, claim the id, fork init into its namespaces, run the runtime-side
//! hooks while init sets itself up, record the state. On any failure everything is undone: init
//! is killed and reaped, `<root>/<id>` removed (mounts live only in init's mount namespace and
//! die with it).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use oci_spec::runtime::LinuxNamespaceType as Ns;

use crate::container::state::{ContainerDir, Leftovers, Status, Stored};
use crate::container::{hook_state, rootless};
use crate::error::{Error, Result, SysContext};
use crate::init::hooks::HookKind;
use crate::init::namespaces;
use crate::init::{self, run_spec_hooks, InitArgs};
use crate::policy::cgroups::Cgroup;
use crate::spec::Bundle;
use crate::sys::clone::{self, Forked};
use crate::sys::console;
use crate::sys::sync::{self, Msg};

pub struct CreateOpts {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    /// `ward run` in the foreground: a terminal without --console-socket is proxied by ward.
    pub foreground: bool,
    /// `--egress-resolver`: the DNS server the egress proxy asks (default: the host's).
    pub egress_resolver: Option<std::net::SocketAddr>,
    /// `--egress-ca FILE`: CA certificates the egress proxy trusts upstream besides the host's.
    pub egress_ca: Option<PathBuf>,
    /// `--interception FILE`: the policy for every container (one with its own is refused).
    pub interception: Option<PathBuf>,
    /// The config itself, instead of `bundle/config.json` (`ward sandbox`): the state dir
    /// then keeps it without the env's values (the caller's own env, never written down).
    pub config: Option<serde_json::Value>,
    /// `--rootless` (resolved): a cgroup the user may not make is skipped (`rootless`).
    pub rootless: bool,
    /// `--systemd-cgroup`: the cgroup is a transient scope systemd makes (`cgroups::systemd`).
    pub systemd_cgroup: bool,
}

/// A created container, still a child of this process.
pub struct Created {
    pub dir: ContainerDir,
    pub stored: Stored,
    pub pidfd: OwnedFd,
    /// The pty master, when ward itself holds the terminal (foreground `run`).
    pub console_master: Option<OwnedFd>,
}

pub fn create(opts: &CreateOpts) -> Result<Created> {
    crate::container::state::validate_id(&opts.id)?;
    let mut bundle = match &opts.config {
        Some(raw) => {
            let dir = std::fs::canonicalize(&opts.bundle)
                .map_err(|e| Error::io("open bundle", &opts.bundle, e))?;
            Bundle::from_raw(dir, raw.clone())?
        }
        None => Bundle::load(&opts.bundle)?,
    };
    if let Some(file) = &opts.interception {
        impose_interception(&mut bundle, file)?;
    }
    // `--egress-ca`: read now, so that a bad file fails create before anything is made.
    let egress_roots = match &opts.egress_ca {
        Some(path) => crate::policy::proxy::tls::trust::read_extra_roots(path)?,
        None => Vec::new(),
    };
    tracing::debug!(id = %opts.id, bundle = %bundle.dir.display(), "create: config loaded and validated");
    let terminal = bundle.process()?.terminal().unwrap_or(false);
    check_console(terminal, opts.console_socket.is_some(), opts.foreground)?;
    warn_ptrace_without_userns(&bundle, bundle.process()?);
    let dir = ContainerDir::create(&opts.root, &opts.id)?;
    tracing::debug!(path = %dir.path.display(), "create: state directory claimed");
    let mut guard = Cleanup {
        dir: Some(dir.clone()),
        child: None,
        cgroup: None,
        supervisor: None,
        proxy: None,
        proxy_netns: None,
        proxy_killed: None,
    };
    let created = create_in(opts, bundle, terminal, egress_roots, &dir, &mut guard)?;
    guard.disarm();
    Ok(created)
}

/// `--interception FILE`: the runtime's policy becomes the container's, validated as if the
/// config had it (errors name the file). A config with its own policy is refused: which of two
/// policies applies must never be a guess.
fn impose_interception(bundle: &mut Bundle, file: &Path) -> Result<()> {
    let flag = format!("--interception {}", file.display());
    if bundle.interception.is_some() {
        return Err(Error::spec(
            flag,
            "this runtime applies its own interception policy; the config's \
             process.interception (or the org.ward.interception annotation) would replace it: \
             remove it, or use a runtime without --interception",
        ));
    }
    let text = std::fs::read_to_string(file).map_err(|e| Error::io("read", file, e))?;
    let policy: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::spec(flag.clone(), format!("not JSON: {e}")))?;
    let mut raw = bundle.raw.clone();
    match raw.get_mut("process").and_then(|p| p.as_object_mut()) {
        Some(p) => {
            p.insert("interception".into(), policy);
        }
        None => return Err(Error::spec("process", "missing")),
    }
    bundle.interception = crate::spec::interception::from_config(&raw)
        .map_err(|e| Error::spec(flag, e.to_string()))?;
    bundle.raw = raw;
    Ok(())
}

/// CAP_SYS_PTRACE without a user namespace is a host capability: non-dumpable no longer keeps
/// the container away from processes ward sets up where it can see them. `exec` does every
/// privileged step before its process appears in the container's pid namespace; an init
/// that joins a shared pid namespace (a pod's) is still visible there while it is set up, as
/// under runc, so ward says so rather than run such a container silently.
pub fn warn_ptrace_without_userns(bundle: &Bundle, p: &oci_spec::runtime::Process) {
    let ptrace = p
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.contains(&oci_spec::runtime::Capability::SysPtrace));
    if ptrace && !bundle.has_namespace(Ns::User) {
        tracing::warn!(
            "CAP_SYS_PTRACE without a user namespace: this container can ptrace the init of \
             any container that joins its pid namespace while ward sets it up, as under runc; \
             use a user namespace or drop CAP_SYS_PTRACE"
        );
    }
}

/// runc's rule for the terminal: a detached process with a terminal needs a console socket to
/// send the pty master to, and a console socket without a terminal is a mistake.
pub fn check_console(terminal: bool, console_socket: bool, foreground: bool) -> Result<()> {
    match (terminal, console_socket) {
        (true, false) if !foreground => Err(Error::spec(
            "process.terminal",
            "cannot allocate a tty when detached without --console-socket",
        )),
        (false, true) => Err(Error::spec(
            "process.terminal",
            "--console-socket given but the process does not use a terminal",
        )),
        _ => Ok(()),
    }
}

/// Undoes a half-made container when dropped armed.
struct Cleanup {
    dir: Option<ContainerDir>,
    child: Option<(i32, OwnedFd)>,
    cgroup: Option<Cgroup>,
    supervisor: Option<i32>,
    proxy: Option<i32>,
    /// A joined network namespace that got the proxy's range.
    proxy_netns: Option<PathBuf>,
    proxy_killed: Option<i32>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.dir = None;
        self.child = None;
        self.cgroup = None;
        self.supervisor = None;
        self.proxy = None;
        self.proxy_netns = None;
    }
}

impl Cleanup {
    fn proxy_pid_alive(&self) -> bool {
        self.proxy_killed.is_some_and(|pid| {
            !matches!(
                crate::container::state::proc_stat(pid),
                None | Some(('Z', _))
            )
        })
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some((pid, pidfd)) = self.child.take() {
            let _ = crate::container::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        self.proxy_killed = self.proxy;
        for pid in self.supervisor.take().into_iter().chain(self.proxy.take()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(ns) = self.proxy_netns.take() {
            // After the proxy (and the listeners create held) are gone: SIGKILL is not
            // instant, and the range stays while a socket of the proxy holds its slot.
            for _ in 0..200 {
                let gone = !self.proxy_pid_alive();
                if gone {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            crate::container::egress::release(&ns);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.kill_all();
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

fn create_in(
    opts: &CreateOpts,
    mut bundle: Bundle,
    terminal: bool,
    mut egress_roots: Vec<u8>,
    dir: &ContainerDir,
    guard: &mut Cleanup,
) -> Result<Created> {
    let exec_fifo = make_exec_fifo(&dir.exec_fifo())?;
    tracing::debug!(path = %dir.exec_fifo().display(), "create: exec fifo made");
    let (console_parent, console_child) = console_sockets(opts, terminal)?;
    let (chan_parent, chan_child) = sync::pair()?;
    // Compiled here, with the host's view of the state root (the filter cache lives there).
    let seccomp_spec = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone());
    if let Some(s) = &seccomp_spec {
        let notify = oci_spec::runtime::LinuxSeccompAction::ScmpActNotify;
        let wants_listener = s.default_action() == notify
            || s.syscalls().iter().flatten().any(|e| e.action() == notify);
        if wants_listener && s.listener_path().is_none() {
            return Err(Error::spec(
                "linux.seccomp.listenerPath",
                "SCMP_ACT_NOTIFY needs a listenerPath",
            ));
        }
    }
    let seccomp = match &seccomp_spec {
        Some(s) => Some(crate::policy::seccomp::prepare(&opts.root, s)?),
        None => None,
    };
    tracing::debug!(
        seccomp = seccomp.is_some(),
        "create: seccomp filter prepared"
    );
    // The cgroup exists, with its limits, before init exists: init is born inside it.
    let linux = bundle.spec.linux().clone().unwrap_or_default();
    let cgroup = match opts.systemd_cgroup {
        true => Cgroup::systemd(linux.cgroups_path().as_deref(), &opts.id, opts.rootless)?,
        false => Cgroup::new(linux.cgroups_path().as_deref(), &opts.id)?,
    };
    let interception = bundle.interception.clone().unwrap_or_default();
    if opts.systemd_cgroup && (interception.network.is_some() || !interception.observe.is_empty()) {
        // The walls go on the cgroup before init exists; a systemd scope exists only after.
        return Err(Error::Unsupported(
            "process.interception with --systemd-cgroup".into(),
        ));
    }
    // Before it is recorded: a refused cgroup is someone else's and is left as it is.
    cgroup.check_unused()?;
    // Recorded before it exists: a create killed from here on leaves a record that
    // `delete --force` follows (state.json is written only at the end).
    let mut made = Leftovers {
        cgroup: Some(cgroup.clone()),
        ..Leftovers::default()
    };
    dir.save_leftovers(&made)?;
    guard.cgroup = Some(cgroup.clone());
    let explicit = linux.cgroups_path().is_some();
    let res = linux.resources().as_ref();
    // systemd makes a scope only with a process in it: init, forked below.
    let scope_rules = match cgroup.systemd.is_some() && !opts.rootless {
        true => crate::policy::cgroups::device_rules(&bundle.spec)?,
        false => Vec::new(),
    };
    let cgroup = if cgroup.systemd.is_some() {
        Some(cgroup)
    } else if rootless::create_cgroup(&cgroup, res, explicit, opts.rootless)? {
        tracing::debug!(path = %cgroup.path, mode = ?cgroup.mode, "create: cgroup made");
        // Rootless, device rules are not applied (runc ignores them): no node can be made in
        // a user namespace, and the host's nodes bound in keep the host's permissions.
        let rules = match opts.rootless {
            false => crate::policy::cgroups::device_rules(&bundle.spec)?,
            true => Vec::new(),
        };
        cgroup.apply(&res.cloned().unwrap_or_default(), &rules, false)?;
        tracing::debug!("create: resource limits and device rules applied");
        Some(cgroup)
    } else {
        (guard.cgroup, made.cgroup) = (None, None);
        dir.save_leftovers(&made)?;
        None
    };
    let cgroup_fd = cgroup
        .as_ref()
        .filter(|c| c.systemd.is_none())
        .and_then(Cgroup::v2_dir)
        .map(|d| crate::policy::cgroups::v2::open_dir(&d))
        .transpose()?;
    // Egress walls on the cgroup before init exists: nothing in it ever runs unwalled.
    if interception.network.is_some() {
        crate::container::egress::refuse_net_admin_in_joined_netns(&bundle)?;
        crate::container::egress::own_cgroup_namespace(&mut bundle);
    }
    // Egress by domain name: the proxy's slot, the DNS redirect before the wall, the wall
    // around the slot (`container::egress`).
    let mut egress = crate::container::egress::prepare(&bundle, cgroup_fd.is_some())?;
    if let Some(p) = egress.as_mut() {
        guard.proxy_netns = crate::container::egress::joined_path(&bundle);
        // Credentials first: proxyEnv then copies an env that holds only placeholders.
        crate::container::egress::intercept(&mut bundle, p, &opts.id, &dir.path)?;
        crate::container::egress::proxy_env(&mut bundle, p)?;
        crate::container::egress::resolv_conf(&mut bundle, p, &dir.path)?;
    }
    // The netns wall (issue 18) needs no cgroup: no BPF on it, no supervisor for it.
    let netns_wall = egress
        .as_ref()
        .is_some_and(|p| p.wall == crate::container::egress::Wall::Netns);
    let wants_supervisor =
        (interception.network.is_some() && !netns_wall) || !interception.observe.is_empty();
    if wants_supervisor && cgroup_fd.is_none() {
        return Err(Error::Unsupported(
            "process.interception on a host without cgroup v2".into(),
        ));
    }
    let mut ring = None;
    let mut rule_texts = Vec::new();
    let cgroup_walls = cgroup_fd.as_ref().filter(|_| !netns_wall);
    if let (Some(n), Some(fd)) = (&interception.network, cgroup_walls) {
        let r = crate::policy::egress::programs::create_ringbuf()?;
        // Unix rules first: on a kernel without their hooks, nothing is attached at all.
        if let Some(allowed) = &n.allow_unix {
            crate::policy::egress::unix::install(fd.as_fd(), allowed, r.as_fd())?;
        }
        let wall = match &egress {
            Some(p) => crate::container::egress::install_walls(fd.as_fd(), p, r.as_fd())?,
            None => {
                crate::policy::egress::programs::install(fd.as_fd(), n, r.as_fd())?;
                n.clone()
            }
        };
        rule_texts = crate::policy::supervisor::rule_texts(&wall)?;
        ring = Some(r);
    }

    let parent_ns = namespaces::prepare_parent(&bundle)?;
    let listen_fds = crate::init::process::listen_fds();
    let flags = namespaces::clone_flags(&bundle);
    tracing::debug!(
        flags = format!("{flags:#x}"),
        "create: forking init into its namespaces"
    );
    let into = cgroup_fd.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let mapped_by_user = !nix::unistd::geteuid().is_root() && bundle.has_new_namespace(Ns::User);
    let (pid, pidfd) = match clone::fork(flags, into)? {
        Forked::Child => {
            drop(chan_parent);
            drop(console_parent);
            drop(parent_ns);
            init::run(InitArgs {
                bundle,
                chan: chan_child,
                exec_fifo,
                console: console_child,
                no_pivot: opts.no_pivot,
                preserve_fds: opts.preserve_fds,
                listen_fds,
                seccomp,
                mapped_by_user,
            })
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    // Only init belongs in a joined pid or time namespace; ward's later children (proxy,
    // supervisor) and threads (the systemd driver's D-Bus client) do not.
    if let Err(e) = parent_ns.restore() {
        match cgroup.as_ref().is_some_and(|c| c.systemd.is_some())
            || egress.is_some()
            || wants_supervisor
        {
            true => return Err(e),
            false => tracing::debug!(error = %e, "create: parent namespaces not restored"),
        }
    }
    guard.child = Some((
        pid,
        pidfd
            .try_clone()
            .map_err(|e| Error::io("dup", "pidfd", e))?,
    ));
    drop((chan_child, console_child, exec_fifo));
    tracing::debug!(pid, "create: init forked");
    // init is in the v2 cgroup already (CLONE_INTO_CGROUP); its pid is for the rest.
    made.init = crate::container::state::proc_stat(pid).map(|(_, t)| (pid, t));
    dir.save_leftovers(&made)?;

    drop(cgroup_fd);
    // --systemd-cgroup: systemd moves init into the scope it makes for it, while init still
    // waits for its go (nothing of the container has run yet). Only now is D-Bus spoken:
    // zbus's runtime starts threads, and init had to be forked before any existed.
    if let Some(cg) = &cgroup {
        cg.start_scope(pid, res, &scope_rules)?;
    }
    // v1 hierarchies have no CLONE_INTO_CGROUP: init joins them before it is told to go.
    if let Some(cg) = &cgroup {
        cg.add_v1(pid)?;
    }
    tracing::debug!(pid, "create: init placed in its cgroups");
    // The supervisor reads the denial records into <state>/violations.jsonl; it watches the
    // cgroup that init now populates and leaves when it is empty.
    let mut supervisor = None;
    if let (true, Some(cg_dir)) = (wants_supervisor, cgroup.as_ref().and_then(Cgroup::v2_dir)) {
        let plan = crate::policy::supervisor::Plan {
            id: opts.id.clone(),
            state_dir: dir.path.clone(),
            cgroup_dir: cg_dir,
            rules: rule_texts,
        };
        let spid = crate::policy::supervisor::spawn(plan, ring)?;
        let start = crate::container::state::proc_stat(spid)
            .map(|(_, t)| t)
            .unwrap_or(0);
        guard.supervisor = Some(spid);
        supervisor = Some((spid, start));
        made.supervisor = supervisor;
        dir.save_leftovers(&made)?;
    }
    // The proxy starts after the prestart and createRuntime hooks (below): an engine that
    // wires the network namespace in one (Docker's libnetwork) has done so by then, so the
    // proxy sees whether the namespace has a way out for its upstream sockets.
    let proxy_netns = egress
        .as_ref()
        .and_then(|_| crate::container::egress::joined_path(&bundle));
    if proxy_netns.is_some() {
        made.proxy_netns.clone_from(&proxy_netns);
        dir.save_leftovers(&made)?;
    }
    if bundle.has_new_namespace(Ns::User) {
        namespaces::write_id_maps(pid, &bundle)?;
        tracing::debug!(pid, "create: uid/gid maps written");
    }
    if let Some(p) = egress.as_mut() {
        crate::container::egress::capture_namespaces(p, pid)?;
    }
    // Rootless, init opens them itself: it has the caller's own access to the host's files,
    // and the caller could not enter init's mount namespace and come back.
    let root = nix::unistd::geteuid().is_root();
    if bundle.has_namespace(Ns::User) && bundle.has_new_namespace(Ns::Mount) && root {
        let sources = crate::init::mounts::open_bind_sources(pid, &bundle)?;
        if !sources.is_empty() {
            let indices = sources.iter().map(|(i, _)| *i).collect();
            chan_parent.send(&Msg::MountSources { indices })?;
            for (_, fd) in &sources {
                console::send_master(chan_parent.0.as_fd(), fd.as_fd(), "mount source")?;
            }
        }
    }
    let mut stored = Stored {
        oci_version: bundle.spec.version().clone(),
        id: opts.id.clone(),
        pid,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        owner: String::new(),
        init_start_time: 0,
        init_exe: None,
        private_pid_ns: bundle.has_new_namespace(Ns::Pid),
        cgroup,
        tier: crate::container::tier::Tier::Native,
        supervisor,
        proxy: None,
        proxy_netns,
    };
    let creating = String::from_utf8_lossy(&hook_state(&stored, Status::Creating)).into_owned();
    chan_parent.send(&Msg::Go {
        state: creating.clone(),
    })?;
    tracing::debug!("create: init told to set up");
    loop {
        match chan_parent.recv()? {
            Some(Msg::RunHooks) => {
                tracing::debug!("create: running prestart and createRuntime hooks");
                run_spec_hooks(&bundle, HookKind::Prestart, creating.as_bytes())?;
                run_spec_hooks(&bundle, HookKind::CreateRuntime, creating.as_bytes())?;
                if let Some(p) = egress.take() {
                    let ppid = crate::container::egress::start(
                        p,
                        &opts.id,
                        &dir.path,
                        pid,
                        pidfd.as_fd(),
                        opts.egress_resolver,
                        std::mem::take(&mut egress_roots),
                    )?;
                    guard.proxy = Some(ppid);
                    stored.proxy = crate::container::state::proc_stat(ppid).map(|(_, t)| (ppid, t));
                    made.proxy = stored.proxy;
                    dir.save_leftovers(&made)?;
                    tracing::debug!(pid = ppid, "create: egress proxy started");
                }
                chan_parent.send(&Msg::HooksDone)?;
            }
            Some(Msg::SeccompFd) => {
                tracing::debug!("create: seccomp listener fd received from init");
                let fd = console::recv_fd(chan_parent.0.as_fd())?;
                if let Some(s) = &seccomp_spec {
                    let state: serde_json::Value =
                        serde_json::from_str(&creating).unwrap_or_default();
                    crate::policy::seccomp::deliver(s, fd.as_fd(), pid, &state)?;
                }
                chan_parent.send(&Msg::SeccompDone)?;
            }
            Some(Msg::ObserveFd) => {
                let fd = console::recv_fd(chan_parent.0.as_fd())?;
                crate::policy::supervisor::hand_over(&dir.path, fd.as_fd())?;
                chan_parent.send(&Msg::SeccompDone)?;
            }
            Some(Msg::Ready) => {
                tracing::debug!("create: init ready, waiting on the exec fifo");
                break;
            }
            Some(Msg::Log { level, msg }) => crate::logging::emit(&level, &msg),
            Some(Msg::Error { msg }) => return Err(Error::Init(msg)),
            Some(other) => {
                return Err(Error::Init(format!(
                    "unexpected message from init: {other:?}"
                )))
            }
            None => return Err(Error::Init("container init exited during setup".into())),
        }
    }
    // When ward holds the terminal itself, init sent the master before Ready.
    let console_master = match console_parent.as_ref() {
        Some(sock) => Some(console::recv_fd(sock.as_fd())?),
        None => None,
    };
    stored.init_start_time = crate::container::state::proc_stat(pid)
        .map(|(_, t)| t)
        .ok_or_else(|| Error::Init("container init exited during setup".into()))?;
    stored.init_exe = crate::container::state::exe_of(pid);
    if opts.config.is_some() {
        dir.save_config(&without_env_values(&bundle.raw))?;
    } else {
        dir.save_config(&bundle.raw)?;
    }
    dir.save(&stored)?;
    tracing::debug!(pid, "create: state saved");
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
        tracing::debug!(path = %pf.display(), "create: pid file written");
    }
    Ok(Created {
        dir: dir.clone(),
        stored,
        pidfd,
        console_master,
    })
}

/// The fifo `ward start` opens to release init; init gets an O_PATH fd of it.
/// The config with `process.env` reduced to its names.
fn without_env_values(raw: &serde_json::Value) -> serde_json::Value {
    let mut raw = raw.clone();
    if let Some(env) = raw
        .pointer_mut("/process/env")
        .and_then(|e| e.as_array_mut())
    {
        for e in env.iter_mut() {
            if let Some(name) = e.as_str().and_then(|s| s.split('=').next()) {
                *e = serde_json::Value::String(format!("{name}="));
            }
        }
    }
    raw
}

fn make_exec_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .sys("mkfifo", path.display().to_string())?;
    // Writable by the container's user (whoever that is on the host) through init's fd only:
    // the state dir itself is 0700, so no path reaches the fifo from outside (runc: 0622).
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(|e| Error::io("chmod", path, e))?;
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys("open", path.display().to_string())?;
    // SAFETY: open just returned this fd; nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// (our end, init's end) of the socket the pty master travels over.
fn console_sockets(
    opts: &CreateOpts,
    terminal: bool,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    if !terminal {
        return Ok((None, None));
    }
    if let Some(path) = &opts.console_socket {
        return Ok((None, Some(console::connect_console_socket(path)?)));
    }
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .sys("socketpair", "console")?;
    Ok((Some(a), Some(b)))
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    crate::container::state::write_atomic(&path, pid.to_string().as_bytes())
}
