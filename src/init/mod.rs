//! The container's init, from clone3 to execve — the OCI create lifecycle top to bottom.
//!
//! Runs in the child of `ward create`, single-threaded, non-dumpable, from ward's read-only
//! copy of itself (container/selfclone.rs: nothing in the container, even with CAP_SYS_PTRACE, can
//! write the ward binary through /proc/<pid>/exe, CVE-2019-5736), with only the fds it needs
//! (the caller's are closed first), and with PDEATHSIG set until it reports Ready (if
//! `ward create` dies mid-way, init dies with it and nothing is left behind). Any failure is sent to the parent as one message, then init exits.
//!
//! Its parts, also used by `container` (exec, delete): the namespaces, the rootfs and its
//! mounts, the process's own settings, and the hooks.

pub mod hooks;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod reaper;
pub mod rootfs;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxNamespaceType as Ns;

use crate::error::{Error, Result, SysContext};
use crate::init::hooks::{run_hooks, run_hooks_in, HookKind};
use crate::policy::{capabilities, rlimits, scheduling};
use crate::spec::Bundle;
use crate::sys::console;
use crate::sys::sync::{Channel, Msg};

pub struct InitArgs {
    pub bundle: Bundle,
    pub chan: Channel,
    /// O_PATH fd of `<state>/exec.fifo`: init blocks opening it for writing until `ward start`
    /// opens it for reading (runc's exec fifo).
    pub exec_fifo: OwnedFd,
    /// Connected socket the pty master is sent over (console socket, or ward run's own).
    pub console: Option<OwnedFd>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// Socket-activation fds (LISTEN_FDS) passed before the --preserve-fds ones.
    pub listen_fds: u32,
    /// The compiled `linux.seccomp` filter, if any.
    pub seccomp: Option<crate::policy::seccomp::Program>,
    /// The parent has no root and maps init's new user namespace itself (or through
    /// newuidmap): init stays dumpable until then, or /proc/<init> would be root's and
    /// closed to both. Nothing of the container runs yet, and who could ptrace init meanwhile
    /// is the caller's own uid, which owns the whole container anyway.
    pub mapped_by_user: bool,
}

/// Never returns: execs the container process or exits.
pub fn run(mut args: InitArgs) -> ! {
    if let Err(e) = keep_only_own_fds(&mut args) {
        let _ = args.chan.send(&Msg::Error { msg: e.to_string() });
        // SAFETY: _exit is async-signal-safe and skips atexit handlers inherited from the parent.
        unsafe { libc::_exit(1) }
    }
    match setup(&args) {
        // Errors after Ready go to `ward start` through the exec fifo, which prints them.
        Ok(ready) => {
            let _ = wait_for_start_and_exec(&args, ready);
        }
        Err(e) => {
            // `ward create` prints it; init logs it only if the parent cannot (printed once).
            // Clipped: the channel's packets are small, and echoed input may be huge.
            let msg = crate::error::clip(&e.to_string(), 4096);
            if args.chan.send(&Msg::Error { msg }).is_err() {
                tracing::error!("container init: {e}");
            }
        }
    }
    // SAFETY: _exit is async-signal-safe and skips atexit handlers inherited from the parent.
    unsafe { libc::_exit(1) }
}

/// First thing in init: every fd the caller of `ward create` had open is closed except stdio,
/// LISTEN_FDS and --preserve-fds, and so is every fd of ward's own that init does not use. A
/// container waiting for `start` then holds nothing a caller reads to EOF (CVE-2024-21626
/// hardening too: nothing of the host is open while the rootfs is set up).
fn keep_only_own_fds(a: &mut InitArgs) -> Result<()> {
    use std::os::fd::AsRawFd;
    let mut keep = vec![a.exec_fifo.as_raw_fd()];
    keep.extend(a.console.as_ref().map(|c| c.as_raw_fd()));
    a.preserve_fds += a.listen_fds;
    keep_only(&a.chan, &keep, a.preserve_fds)?;
    if a.listen_fds > 0 {
        // As runc: the process learns the count, and that the fds are its own (it is pid 1).
        let mut p = a.bundle.process()?.clone();
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={}", a.listen_fds));
        env.push("LISTEN_PID=1".to_string());
        p.set_env(Some(env));
        a.bundle.spec.set_process(Some(p));
    }
    Ok(())
}

/// For a process about to become the container's (init, or exec's process): its log records
/// go to the ward on the other end of `chan` (which logs them), and every fd but stdio, the
/// `preserve` ones after it, `chan` and `keep` is closed: nothing of the caller's or the
/// host's (ward's log file, its stderr copy) stays open where the container could reach it.
pub(crate) fn keep_only(chan: &Channel, keep: &[std::os::fd::RawFd], preserve: u32) -> Result<()> {
    use std::os::fd::AsRawFd;
    let copy = chan
        .0
        .try_clone()
        .map_err(|e| Error::io("dup", "sync channel", e))?;
    let mut keep = keep.to_vec();
    keep.extend([chan.0.as_raw_fd(), copy.as_raw_fd()]);
    crate::logging::for_container_process(Box::new(move |level, msg| {
        let msg = Msg::Log {
            level: level.to_string(),
            msg: msg.chars().take(4096).collect(),
        };
        let _ = crate::sys::sync::send_on(copy.as_fd(), &msg);
    }));
    process::close_fds_except(preserve, &keep)
}

fn hooks_of(bundle: &Bundle, kind: HookKind) -> Vec<oci_spec::runtime::Hook> {
    let Some(h) = bundle.spec.hooks().as_ref() else {
        return Vec::new();
    };
    #[allow(deprecated)]
    let list = match kind {
        HookKind::Prestart => h.prestart(),
        HookKind::CreateRuntime => h.create_runtime(),
        HookKind::CreateContainer => h.create_container(),
        HookKind::StartContainer => h.start_container(),
        HookKind::Poststart => h.poststart(),
        HookKind::Poststop => h.poststop(),
    };
    list.clone().unwrap_or_default()
}

pub fn run_spec_hooks(bundle: &Bundle, kind: HookKind, state: &[u8]) -> Result<()> {
    Ok(run_hooks(kind, &hooks_of(bundle, kind), state)?)
}

/// In a new (or just joined) user namespace: become its root when 0 is mapped. A namespace
/// that maps no 0 (the caller mapped to itself, e.g. a sandbox keeping the user's uid) leaves
/// the ids as they are: the full capabilities a process has in a user namespace it created or
/// entered do not depend on its uid, and the process user is set later as usual.
pub fn become_root_if_mapped() -> Result<()> {
    let mapped = |file: &str| {
        std::fs::read_to_string(file).is_ok_and(|m| {
            m.lines().any(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                matches!(f[..], [inside, _, size] if inside == 0 && size > 0)
            })
        })
    };
    if mapped("/proc/self/gid_map") {
        let root = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(root, root, root).sys("setresgid", "0 in user namespace")?;
    }
    if mapped("/proc/self/uid_map") {
        let root = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresuid(root, root, root).sys("setresuid", "0 in user namespace")?;
    }
    Ok(())
}

/// What init takes from setup into the wait for `start`: nothing after Ready may need more
/// syscalls than a profile written for runc allows (open, write, execve).
struct Ready {
    state: Vec<u8>,
    path: std::path::PathBuf,
    args: Vec<String>,
    env: Vec<String>,
    fifo: std::path::PathBuf,
}

fn setup(a: &InitArgs) -> Result<Ready> {
    let b = &a.bundle;
    if !a.mapped_by_user {
        nix::sys::prctl::set_dumpable(false).sys("prctl", "PR_SET_DUMPABLE")?;
    }
    reset_signals()?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).sys("prctl", "PR_SET_PDEATHSIG")?;
    // Its own session and process group, as under runc (pid 1 leads both in a new pid ns).
    nix::unistd::setsid().sys("setsid", "container init")?;
    // Modes of the nodes and dirs we create are exact; the process umask is set later.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());

    // 1. Wait until the parent has written our id maps (and placed us in our cgroup); under a
    // user namespace it first hands over the bind sources it opened for us.
    let mut sources = Vec::new();
    let mut msg = a.chan.recv()?;
    if let Some(Msg::MountSources { indices }) = &msg {
        for &i in indices {
            sources.push((i, console::recv_fd(a.chan.0.as_fd())?));
        }
        msg = a.chan.recv()?;
    }
    let state = match msg {
        Some(Msg::Go { state }) => state,
        other => return Err(Error::Init(format!("sync: expected go, got {other:?}"))),
    };
    if a.mapped_by_user {
        nix::sys::prctl::set_dumpable(false).sys("prctl", "PR_SET_DUMPABLE")?;
    }
    let userns = b.has_new_namespace(Ns::User);
    if userns {
        become_root_if_mapped()?;
    }

    // 2. Namespaces joined by path (user first), then the cgroup namespace.
    let joins = namespaces::open_joins(b)?;
    namespaces::join(&joins)?;
    drop(joins);
    if b.has_new_namespace(Ns::Cgroup) {
        unshare(CloneFlags::CLONE_NEWCGROUP).sys("unshare", "cgroup namespace")?;
    }
    if let Some(h) = b.spec.hostname().as_deref() {
        nix::unistd::sethostname(h).sys("sethostname", crate::error::excerpt(h))?;
    }
    if let Some(d) = b.spec.domainname().as_deref() {
        set_domainname(d)?;
    }

    // 3. The filesystem, up to pivot_root, with the hooks the spec puts before it. Without a
    // mount namespace the caller's mount table is shared: nothing is mounted (validation
    // refused what would need it) and init chroots into the rootfs, as runc.
    let mntns = b.has_namespace(Ns::Mount);
    let root = if mntns {
        rootfs::prepare(b, userns, b.has_new_namespace(Ns::Cgroup), &sources)?
    } else {
        crate::sys::safepath::open_root(&b.rootfs)?
    };
    drop(sources);
    // process.cwd is created now, while the root may still be written (runc does the same).
    crate::sys::safepath::mkdir_all(root.as_fd(), b.process()?.cwd())?;
    drop(root);
    a.chan.send(&Msg::RunHooks)?;
    a.chan.expect(Msg::HooksDone)?;
    // Hooks run by init get the container's environment when they have none (runc's rule).
    let process_env = b.process()?.env().clone().unwrap_or_default();
    run_hooks_in(
        HookKind::CreateContainer,
        &hooks_of(b, HookKind::CreateContainer),
        state.as_bytes(),
        Some(&process_env),
    )?;
    if mntns {
        rootfs::pivot(&b.rootfs, a.no_pivot)?;
        rootfs::apply_root_propagation(b)?;
    } else {
        rootfs::chroot(&b.rootfs)?;
    }

    let p = b.process()?;
    // 4. The console, before the paths that would hide /dev/console become read-only.
    if p.terminal().unwrap_or(false) {
        setup_console(a, p)?;
    }
    let linux = b.spec.linux().as_ref();
    for (key, value) in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        write_sysctl(key, value)?;
    }
    if let Some(paths) = linux.and_then(|l| l.readonly_paths().as_ref()) {
        rootfs::readonly_paths(paths)?;
    }
    if let Some(paths) = linux.and_then(|l| l.masked_paths().as_ref()) {
        rootfs::mask_paths(paths)?;
    }
    if b.spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        rootfs::make_root_readonly()?;
    }

    // The exec fifo is reopened through /proc after pivot_root: check now that it can be.
    let fifo = crate::sys::safepath::fd_path(a.exec_fifo.as_fd());
    match nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Err(nix::errno::Errno::ENXIO) => {} // no reader yet: the path works
        Ok(fd) => drop(unsafe_owned(fd)),
        Err(e) => {
            return Err(Error::Init(format!(
                "the container needs /proc mounted to wait for start: open {}: {e}",
                fifo.display()
            )))
        }
    }

    let personality = linux.and_then(|l| l.personality().as_ref());
    let families = families_filter(b.interception.as_ref())?;
    let observe = observe_filter(b.interception.as_ref())?;
    let walls = Walls {
        seccomp: a.seccomp.as_ref(),
        families: families.as_ref(),
        observe: observe.as_ref(),
        landlock: b.landlock.as_ref(),
        spec: &b.spec,
        also_writable: &[a.exec_fifo.as_fd()],
    };
    proc_attributes(p)?;
    let Prepared { path, args, env } =
        prepare_process(p, personality, a.preserve_fds, &walls, &a.chan)?;
    crate::logging::stop_forwarding();
    a.chan.send(&Msg::Ready)?;
    Ok(Ready {
        state: created_state(&state),
        path,
        args,
        env,
        fifo,
    })
}

/// The state JSON startContainer hooks get: as create's, with status "created" (as runc).
fn created_state(creating: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_str(creating).unwrap_or_default();
    v["status"] = "created".into();
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    out
}

fn unsafe_owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: called only on an fd just returned by open(2), owned by nobody else.
    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// The kernel-enforced walls a process gets on top of its credentials.
pub struct Walls<'a> {
    pub seccomp: Option<&'a crate::policy::seccomp::Program>,
    /// ward's own filter of socket families (the egress policy), beside the spec's profile.
    pub families: Option<&'a crate::policy::seccomp::Program>,
    /// ward's observe filter; its listener goes to the supervisor, never into the container.
    pub observe: Option<&'a crate::policy::seccomp::Program>,
    pub landlock: Option<&'a crate::spec::landlock::Landlock>,
    pub spec: &'a oci_spec::runtime::Spec,
    /// fds ward must still open for writing after Landlock applies (init's exec fifo).
    pub also_writable: &'a [std::os::fd::BorrowedFd<'a>],
}

/// Landlock, then seccomp: landlock_restrict_self must not be needed after the filter loads.
fn raise_walls(walls: &Walls, nnp: bool, chan: &Channel) -> Result<()> {
    if let Some(l) = walls.landlock {
        crate::policy::landlock::apply(l, walls.spec, walls.also_writable, nnp)?;
    }
    if let Some(f) = walls.families {
        crate::policy::seccomp::install(f)?;
    }
    if let Some(o) = walls.observe {
        if let Some(fd) = crate::policy::seccomp::install(o)? {
            chan.send(&Msg::ObserveFd)?;
            console::send_master(chan.0.as_fd(), fd.as_fd(), "observe")?;
            drop(fd);
            chan.expect(Msg::SeccompDone)?;
        }
    }
    load_seccomp(walls.seccomp, chan)
}

/// The socket-family filter of an egress policy, if there is one.
pub fn families_filter(
    i: Option<&crate::spec::interception::Interception>,
) -> Result<Option<crate::policy::seccomp::Program>> {
    match i.and_then(|i| i.network.as_ref()) {
        Some(n) => Ok(Some(crate::policy::egress::families::filter(n)?)),
        None => Ok(None),
    }
}

/// The observe filter of an interception policy, if it names syscalls.
pub fn observe_filter(
    i: Option<&crate::spec::interception::Interception>,
) -> Result<Option<crate::policy::seccomp::Program>> {
    match i.filter(|i| !i.observe.is_empty()) {
        Some(i) => Ok(Some(crate::policy::observe::filter(&i.observe)?)),
        None => Ok(None),
    }
}

/// The process attributes written through /proc/self (LSM exec labels, oomScoreAdj): both
/// survive fork, so `exec` writes them before it joins the container, where /proc is the
/// container's and has no entry for a process outside its pid namespace.
pub fn proc_attributes(p: &oci_spec::runtime::Process) -> Result<()> {
    process::apply_lsm(p)?;
    if let Some(adj) = p.oom_score_adj() {
        process::set_oom_score_adj(adj)?;
    }
    Ok(())
}

/// What execve needs, resolved while the process could still look it up.
pub struct Prepared {
    pub path: std::path::PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
}

/// From a process inside the container's namespaces (and root) to one ready to execve the
/// user's program (after `proc_attributes`): scheduling attributes, rlimits, then privileges dropped (bounding
/// set, user, capability sets, no_new_privs), cwd, the executable resolved, every fd but stdio
/// and the preserved ones close-on-exec, and the seccomp filter loaded as late as the
/// kernel's rules allow, Landlock just before it. Shared by init and `ward exec`, so both get
/// exactly the same walls.
pub fn prepare_process(
    p: &oci_spec::runtime::Process,
    personality: Option<&oci_spec::runtime::LinuxPersonality>,
    preserve_fds: u32,
    walls: &Walls,
    chan: &Channel,
) -> Result<Prepared> {
    if let Some(s) = p.scheduler() {
        scheduling::set_scheduler(s)?;
    }
    if let Some(io) = p.io_priority() {
        scheduling::set_io_priority(io)?;
    }
    if let Some(pers) = personality {
        scheduling::set_personality(pers)?;
    }
    rlimits::apply(p.rlimits().as_deref().unwrap_or_default())?;
    if let Some(cpus) = p
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().as_deref())
    {
        scheduling::set_affinity(cpus)?;
    }
    // Everything that resolves a path, reads a file or touches fds happens now, before any
    // filter is loaded: after it only the privilege drop (prctl, setgroups, setres[ug]id,
    // capset) and the exec remain, as in runc, so a profile written for runc need not allow
    // openat2 or close_range.
    let sets = capabilities::from_spec(p.capabilities().as_ref());
    // cwd as the runtime's user first (runc's order): a directory only the runtime can enter
    // (mode 700 for another uid) still works; one only the process user can enter (root
    // squashed) is retried after the switch.
    let cwd_later = match process::enter_cwd(p.cwd()) {
        Ok(()) => false,
        Err(Error::Sys {
            source: nix::errno::Errno::EACCES | nix::errno::Errno::EPERM,
            ..
        }) => true,
        Err(e) => return Err(e),
    };
    // The executable must exist now: a missing binary fails create/exec, not later.
    let env = process::environment(p);
    let args = p.args().clone().unwrap_or_default();
    let first = args
        .first()
        .ok_or_else(|| Error::spec("process.args", "empty"))?;
    let path = process::find_executable(first, &env)?;
    // No fd of the host survives execve except stdio and --preserve-fds.
    process::close_fds_on_exec(preserve_fds)?;
    process::give_stdio_to(p.user().uid())?;
    // Without no_new_privs, Landlock and a filter need CAP_SYS_ADMIN: raise them while we have it.
    let nnp = p.no_new_privileges().unwrap_or(false);
    if !nnp {
        raise_walls(walls, false, chan)?;
    }
    capabilities::drop_bounding(&sets)?;
    process::switch_user(p.user())?;
    capabilities::apply(&sets)?;
    if cwd_later {
        process::chdir_as_user(p.cwd())?;
    }
    if nnp {
        nix::sys::prctl::set_no_new_privs().sys("prctl", "PR_SET_NO_NEW_PRIVS")?;
    }
    nix::sys::prctl::set_pdeathsig(None).sys("prctl", "PR_SET_PDEATHSIG")?;
    // With no_new_privs the walls go up last, so the policy need not allow ward's own setup.
    if nnp {
        raise_walls(walls, true, chan)?;
    }
    Ok(Prepared { path, args, env })
}

/// Ignored signals stay ignored across execve: undo what ward's own runtime set (Rust ignores
/// SIGPIPE) so the container starts with default dispositions and an empty mask, as under runc.
pub(crate) fn reset_signals() -> Result<()> {
    use nix::sys::signal::{SigSet, SigmaskHow};
    /// The kernel's `struct sigaction` (x86_64 layout; the C library's wrapper refuses the
    /// signals it reserves, 32 and 33, which can still arrive ignored from our caller).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is a valid kernel sigaction installing SIG_DFL (no code of ours runs in
        // signal context); the old-action pointer may be null; 8 is the kernel's sigset size.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
        nix::errno::Errno::result(rc).sys("rt_sigaction", format!("signal {sig} to default"))?;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .sys("sigprocmask", "empty mask")
}

/// Loads the seccomp filter; a notify fd goes to `ward create` and is closed here, so the
/// container never holds it.
fn load_seccomp(program: Option<&crate::policy::seccomp::Program>, chan: &Channel) -> Result<()> {
    let Some(program) = program else {
        return Ok(());
    };
    if let Some(fd) = crate::policy::seccomp::install(program)? {
        chan.send(&Msg::SeccompFd)?;
        console::send_master(chan.0.as_fd(), fd.as_fd(), "seccompFd")?;
        drop(fd);
        chan.expect(Msg::SeccompDone)?;
    }
    Ok(())
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: the pointer and length describe `d`'s bytes, which outlive the call.
    let rc = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
    nix::errno::Errno::result(rc)
        .map(drop)
        .sys("setdomainname", crate::error::excerpt(d))
}

fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let Some(path) = crate::spec::sysctl::proc_path(key) else {
        return Err(Error::spec(format!("linux.sysctl.{key}"), "invalid key"));
    };
    crate::sys::procfs::write(&path, value)
        .map_err(|e| Error::spec(format!("linux.sysctl.{key}"), e.to_string()))
}

fn setup_console(a: &InitArgs, p: &oci_spec::runtime::Process) -> Result<()> {
    let sock = a
        .console
        .as_ref()
        .ok_or_else(|| Error::Init("terminal requested but no console socket".into()))?;
    let size = p
        .console_size()
        .map(|b| (b.height() as u16, b.width() as u16));
    let pty = console::open_pty(Path::new("/dev/ptmx"), size)?;
    console::send_master(sock.as_fd(), pty.master.as_fd(), "/dev/ptmx")?;
    drop(pty.master);
    // /dev/console is the pty: bind it onto a file we create, never through an existing link
    // (not without a mount namespace: the bind would land in the caller's mount table), from
    // the slave we hold rather than its /dev/pts path, which a mount could have replaced
    // (runc's fix for CVE-2025-52565).
    if !a.bundle.has_namespace(Ns::Mount) {
        return console::make_controlling_terminal(pty.slave.as_fd()).map_err(Into::into);
    }
    let root = crate::sys::safepath::open_root(Path::new("/"))?;
    let target = crate::sys::safepath::ensure_plain_file(root.as_fd(), Path::new("/dev/console"))?;
    nix::mount::mount(
        Some(&crate::sys::safepath::fd_path(pty.slave.as_fd())),
        &crate::sys::safepath::fd_path(target.as_fd()),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .sys("mount", "console on /dev/console")?;
    console::make_controlling_terminal(pty.slave.as_fd())?;
    Ok(())
}

fn wait_for_start_and_exec(a: &InitArgs, r: Ready) -> Result<std::convert::Infallible> {
    // Blocks until `ward start` opens the fifo for reading.
    let fifo = loop {
        match nix::fcntl::open(
            &r.fifo,
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) {
            Ok(fd) => break unsafe_owned(fd),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                // Nobody is listening yet: the log is the only place this can go.
                let e = Error::sys("open", "exec fifo", e);
                tracing::error!("container init: {e}");
                return Err(e);
            }
        }
    };
    // "0" tells `start` we are here; anything after it is an error message; EOF (the CLOEXEC
    // fd closed by execve) is success.
    nix::unistd::write(&fifo, b"0").sys("write", "exec fifo")?;
    let report = |e: Error| {
        let _ = nix::unistd::write(&fifo, e.to_string().as_bytes());
        e
    };
    let b = &a.bundle;
    run_hooks_in(
        HookKind::StartContainer,
        &hooks_of(b, HookKind::StartContainer),
        &r.state,
        Some(&r.env),
    )
    .map_err(|e| report(e.into()))?;
    let p = b.process().map_err(report)?;
    if let Some(cpus) = p
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().as_deref())
    {
        scheduling::set_affinity(cpus).map_err(report)?;
    }
    if reaper::wanted(&b.spec) {
        let terminal = p.terminal().unwrap_or(false);
        // init keeps no end of the fifo: `start` waits for its EOF (the command's exec).
        let raw = fifo.as_raw_fd();
        reaper::split(terminal, || {
            // SAFETY: closes init's own copy of the fifo; `fifo` is not used in init again
            // (split never returns there).
            unsafe { libc::close(raw) };
        })
        .map_err(report)?;
    }
    Err(report(process::exec(&r.path, &r.args, &r.env)))
}
