//! `ward exec`: a new process inside a running container — every namespace of the container
//! joined (its pid namespace too, so the process is a child inside it), born in its cgroup, and
//! set up by the same `init::prepare_process` as init: capabilities, rlimits, no_new_privs,
//! seccomp. Non-dumpable until execve, like init (CVE-2019-5736).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use oci_spec::runtime::{LinuxNamespaceType as Ns, Process};

use crate::container::state::{ContainerDir, Status, Stored};
use crate::error::{Error, Result, SysContext};
use crate::init::namespaces::clone_flag;
use crate::policy::seccomp;
use crate::sys::clone::{self, Forked};
use crate::sys::console;
use crate::sys::sync::{self, Channel, Msg};

pub struct ExecOpts {
    pub root: PathBuf,
    pub id: String,
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup`: sub-cgroups of the container's to run in.
    pub sub_cgroup: crate::policy::cgroups::exec::SubCgroups,
}

/// The exec'd process, still our child.
pub struct Execed {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub console_master: Option<OwnedFd>,
}

const NAMESPACES: [(Ns, &str); 8] = [
    (Ns::User, "user"),
    (Ns::Mount, "mnt"),
    (Ns::Pid, "pid"),
    (Ns::Network, "net"),
    (Ns::Ipc, "ipc"),
    (Ns::Uts, "uts"),
    (Ns::Cgroup, "cgroup"),
    (Ns::Time, "time"),
];

/// The namespaces of the container's init that differ from ours, opened now (init alive).
fn container_namespaces(stored: &Stored) -> Result<Vec<(Ns, OwnedFd)>> {
    let mut out = Vec::new();
    for (typ, name) in NAMESPACES {
        let theirs = format!("/proc/{}/ns/{name}", stored.pid);
        let ours = format!("/proc/self/ns/{name}");
        let (Ok(t), Ok(o)) = (std::fs::read_link(&theirs), std::fs::read_link(&ours)) else {
            continue;
        };
        if t != o {
            let fd = nix::fcntl::open(
                theirs.as_str(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .sys("open", theirs.clone())?;
            // SAFETY: open just returned this fd; we own it.
            out.push((typ, unsafe {
                <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
            }));
        }
    }
    Ok(out)
}

pub fn exec(o: &ExecOpts) -> Result<Execed> {
    let dir = ContainerDir::open(&o.root, &o.id)?;
    let stored = dir.load()?;
    match dir.status(&stored) {
        Status::Stopped => {
            return Err(Error::BadState("cannot exec in a stopped container".into()))
        }
        Status::Paused if !o.ignore_paused => {
            return Err(Error::BadState(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        _ => {}
    }
    // A credential's variable gets the container's placeholder even when the process carries
    // the real value (a process.json written from the host's env); withheld ones are dropped.
    let record = crate::container::credentials::Record::load(&dir.path)?;
    let mut process = o.process.clone();
    if !record.is_empty() {
        let env = record.apply(&process.env().clone().unwrap_or_default());
        process.set_env(Some(env));
    }
    let raw = dir.load_raw_config()?;
    let config: oci_spec::runtime::Spec = crate::spec::from_value(&raw, "config.json")?;
    let landlock = crate::spec::landlock::from_config(&raw)?;
    let interception = crate::spec::interception::from_config(&raw)?;
    let families = crate::init::families_filter(interception.as_ref())?;
    let observe = crate::init::observe_filter(interception.as_ref())?;
    let terminal = o.process.terminal().unwrap_or(false);
    if terminal && o.detach && o.console_socket.is_none() {
        return Err(Error::spec(
            "--tty",
            "cannot allocate a tty when detached without --console-socket",
        ));
    }
    let linux = config.linux().clone().unwrap_or_default();
    if interception.as_ref().is_some_and(|i| i.network.is_some()) {
        let ns = linux.namespaces().clone().unwrap_or_default();
        crate::container::egress::refuse_net_admin(
            ns.iter()
                .any(|n| n.typ() == Ns::Network && n.path().is_some()),
            ns.iter().any(|n| n.typ() == Ns::User),
            &o.process,
        )?;
    }
    let seccomp_spec = linux.seccomp().clone();
    let program = match &seccomp_spec {
        Some(s) => Some(seccomp::prepare(&o.root, s)?),
        None => None,
    };
    let namespaces = container_namespaces(&stored)?;
    // Without a mount namespace of its own the container is a chroot (as runc sets it up):
    // the process must enter init's root too, not stay in (or get) the mount table's root.
    let chroot = if config.linux().as_ref().is_some_and(|l| {
        l.namespaces()
            .iter()
            .flatten()
            .all(|n| n.typ() != Ns::Mount)
    }) {
        let root = format!("/proc/{}/root", stored.pid);
        let fd = nix::fcntl::open(
            root.as_str(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .sys("open", root)?;
        // SAFETY: open just returned this fd; we own it.
        Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    } else {
        None
    };
    if !crate::container::state::init_alive(&stored) {
        return Err(Error::BadState("cannot exec in a stopped container".into()));
    }
    // Every target (each v1 hierarchy and the unified one) must exist before the fork.
    let targets = match &stored.cgroup {
        Some(cg) => cg.exec_targets(&o.sub_cgroup)?,
        None if o.sub_cgroup == Default::default() => Default::default(),
        None => {
            return Err(Error::BadState(format!(
                "--cgroup: container {} has no cgroup recorded",
                o.id
            )))
        }
    };
    let cgroup_fd = targets
        .v2
        .as_deref()
        .map(crate::policy::cgroups::v2::open_dir)
        .transpose()?;
    let (console_parent, console_child) = match (terminal, &o.console_socket) {
        (false, _) => (None, None),
        (true, Some(p)) => (None, Some(console::connect_console_socket(p)?)),
        (true, None) => {
            let (a, b) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .sys("socketpair", "console")?;
            (Some(a), Some(b))
        }
    };
    let (chan_parent, chan_child) = sync::pair()?;
    let into = cgroup_fd.as_ref().map(|f| f.as_raw_fd());
    // The child joins every namespace, then forks the process into the pid namespace (see
    // `join`): it reports the process's pid, and the process is our child (CLONE_PARENT).
    let (joiner, joiner_fd) = match clone::fork(CloneFlags::empty(), into)? {
        Forked::Child => {
            drop(chan_parent);
            drop(console_parent);
            drop(cgroup_fd);
            let walls = crate::init::Walls {
                seccomp: program.as_ref(),
                families: families.as_ref(),
                observe: observe.as_ref(),
                landlock: landlock.as_ref(),
                spec: &config,
                also_writable: &[],
            };
            child(
                o,
                &process,
                &walls,
                &namespaces,
                chroot,
                &chan_child,
                console_child,
            )
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop((chan_child, cgroup_fd));
    let undo_joiner = |e: Error| {
        let _ = crate::container::pidfd_signal(joiner_fd.as_fd(), libc::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(joiner), None);
        e
    };
    // The process, forked by the joiner, inherits the joiner's v1 cgroups.
    crate::policy::cgroups::exec::add_v1(&targets, joiner).map_err(undo_joiner)?;
    chan_parent
        .send(&Msg::Go {
            state: String::new(),
        })
        .map_err(undo_joiner)?;
    // The joiner raises the walls before it forks the process: a notify listener comes before
    // the process's pid, and reaches its agent once the pid is known.
    let mut notify_fd: Option<OwnedFd> = None;
    let mut process: Option<(i32, OwnedFd)> = None;
    let undo = |e: Error, process: &Option<(i32, OwnedFd)>| {
        if let Some((pid, pidfd)) = process {
            let _ = crate::container::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(*pid), None);
        }
        undo_joiner(e)
    };
    loop {
        let msg = match chan_parent.recv() {
            Ok(m) => m,
            Err(e) => return Err(undo(e, &process)),
        };
        let step = || -> Result<bool> {
            match msg {
                Some(Msg::SeccompFd) => {
                    notify_fd = Some(console::recv_fd(chan_parent.0.as_fd())?);
                    chan_parent.send(&Msg::SeccompDone)?;
                }
                Some(Msg::ObserveFd) => {
                    let fd = console::recv_fd(chan_parent.0.as_fd())?;
                    crate::policy::supervisor::hand_over(&dir.path, fd.as_fd())?;
                    chan_parent.send(&Msg::SeccompDone)?;
                }
                Some(Msg::Pid { pid }) => {
                    process = Some((pid, process_of(pid, joiner)?));
                    if let (Some(s), Some(fd)) = (&seccomp_spec, notify_fd.take()) {
                        let state = serde_json::json!({"ociVersion": stored.oci_version,
                            "id": stored.id, "status": "running", "pid": stored.pid,
                            "bundle": stored.bundle});
                        seccomp::deliver(s, fd.as_fd(), pid, &state)?;
                    }
                }
                Some(Msg::Log { level, msg }) => crate::logging::emit(&level, &msg),
                // EOF: the joiner exited and the process's execve closed the channel (CLOEXEC).
                None if process.is_some() => return Ok(false),
                None => return Err(Error::Init("exec: the process exited during setup".into())),
                Some(Msg::Error { msg }) => return Err(Error::Init(msg)),
                Some(other) => {
                    return Err(Error::Init(format!(
                        "unexpected message from exec: {other:?}"
                    )))
                }
            }
            Ok(true)
        };
        match step() {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(undo(e, &process)),
        }
    }
    let Some((pid, pidfd)) = process else {
        return Err(Error::Init("exec: no process".into()));
    };
    let console_master = match console_parent.as_ref() {
        Some(sock) => Some(console::recv_fd(sock.as_fd())?),
        None => None,
    };
    if let Some(pf) = &o.pid_file {
        crate::container::state::write_atomic(&absolute(pf), pid.to_string().as_bytes())?;
    }
    Ok(Execed {
        pid,
        pidfd,
        console_master,
    })
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The forked process, "the joiner": joins the container and becomes the process — namespaces,
/// root, session, terminal, fds, rlimits, cwd, walls, user and capabilities — while it is still
/// invisible to the container (setns into a pid namespace affects only children), then forks
/// the process into the container's pid namespace, reports its pid and exits. The process only
/// takes its terminal (with one) and execs: it never appears in the container holding the
/// host's privileges, where a container with CAP_SYS_PTRACE could seize it. Never returns.
fn child(
    o: &ExecOpts,
    process: &Process,
    walls: &crate::init::Walls,
    namespaces: &[(Ns, OwnedFd)],
    chroot: Option<OwnedFd>,
    chan: &Channel,
    console: Option<OwnedFd>,
) -> ! {
    let run = || -> Result<std::convert::Infallible> {
        nix::sys::prctl::set_dumpable(false).sys("prctl", "PR_SET_DUMPABLE")?;
        crate::init::reset_signals()?;
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).sys("prctl", "PR_SET_PDEATHSIG")?;
        chan.recv()?;
        crate::init::proc_attributes(process)?;
        join(namespaces, chroot)?;
        // The session the process keeps without a terminal (with one it makes its own).
        nix::unistd::setsid().sys("setsid", "exec")?;
        let tty = match &console {
            Some(sock) => {
                let size = process
                    .console_size()
                    .map(|b| (b.height() as u16, b.width() as u16));
                let pty = console::open_pty(Path::new("/dev/ptmx"), size)?;
                console::send_master(sock.as_fd(), pty.master.as_fd(), "/dev/ptmx")?;
                console::attach_stdio(pty.slave.as_fd())?;
                true
            }
            None => false,
        };
        drop(console);
        // Only stdio, --preserve-fds and the channel stay; logs go to `ward exec`.
        crate::init::keep_only(chan, &[], o.preserve_fds)?;
        let personality = walls
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.personality().as_ref());
        let prepared =
            crate::init::prepare_process(process, personality, o.preserve_fds, walls, chan)?;
        // Under the container's walls from here: only clone, write, and the process's own
        // setsid/TIOCSCTTY (with a terminal) and execve follow.
        let pid = clone::fork_sibling()?;
        if pid > 0 {
            let _ = chan.send(&Msg::Pid { pid });
            // SAFETY: _exit skips atexit handlers inherited from the parent; async-signal-safe.
            unsafe { libc::_exit(0) }
        }
        if tty {
            console::take_terminal(std::io::stdin().as_fd())?;
        }
        Err(crate::init::process::exec(
            &prepared.path,
            &prepared.args,
            &prepared.env,
        ))
    };
    let err = match run() {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(&Msg::Error {
        msg: err.to_string(),
    });
    // SAFETY: _exit skips atexit handlers inherited from the parent; async-signal-safe.
    unsafe { libc::_exit(255) }
}

/// pidfd of the process the joiner forked (our child through CLONE_PARENT, not yet reaped, so
/// its pid cannot have been reused), once the joiner is reaped.
fn process_of(pid: i32, joiner: i32) -> Result<OwnedFd> {
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(joiner), None);
    // SAFETY: pidfd_open takes no pointers and returns a new fd that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    match nix::errno::Errno::result(fd) {
        // SAFETY: pidfd_open just returned this fd; nothing else owns it.
        Ok(fd) => Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) }),
        Err(e) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            Err(Error::sys("pidfd_open", format!("exec process {pid}"), e))
        }
    }
}

/// Joins the container's namespaces: pid and time (which apply to our children only) with the
/// host's credentials (create makes the time namespace in the host's user namespace), then the
/// user namespace, which owns the others, then the rest; without a mount namespace of its own
/// the container is a chroot, entered too.
fn join(namespaces: &[(Ns, OwnedFd)], chroot: Option<OwnedFd>) -> Result<()> {
    let (mut children, mut rest): (Vec<_>, Vec<_>) = namespaces
        .iter()
        .partition(|(t, _)| matches!(t, Ns::Pid | Ns::Time));
    if !nix::unistd::geteuid().is_root() {
        // Rootless: every namespace is owned by the container's user namespace, and only
        // inside it does this process have the CAP_SYS_ADMIN that setns asks for.
        let user: Vec<_> = rest
            .iter()
            .filter(|(t, _)| *t == Ns::User)
            .copied()
            .collect();
        rest.retain(|(t, _)| *t != Ns::User);
        children.splice(0..0, user);
    }
    for (typ, fd) in children.into_iter().chain(rest) {
        setns(fd.as_fd(), clone_flag(*typ)).sys("setns", format!("{typ} namespace"))?;
        if *typ == Ns::User {
            crate::init::become_root_if_mapped()?;
        }
    }
    if let Some(root) = chroot {
        nix::unistd::fchdir(root.as_raw_fd()).sys("fchdir", "the container's root")?;
        nix::unistd::chroot(".").sys("chroot", "the container's root")?;
        nix::unistd::chdir("/").sys("chdir", "/")?;
    }
    Ok(())
}
