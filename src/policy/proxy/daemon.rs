//! The proxy process: forked twice from `ward create` (like the supervisor, so that it is
//! nobody's child and not in the container's cgroup), hardened, then serving (`serve`) until
//! the container's init exits. Nothing of tokio exists before the fork: the runtime is built
//! in the daemon only.
//!
//! Hardening, in order: every fd closed but the ones it serves with; the host's trust store
//! read (when the container has a CA: TLS to origins is verified against it); setns into the
//! upstream network namespace (if given); the upstream resolver's files read (resolv.conf,
//! hosts); RLIMIT_NOFILE 4096; every capability dropped (all five sets, bounding too);
//! no_new_privs; Landlock with every filesystem right handled and none granted (best effort:
//! an older kernel is noted in the log); a seccomp filter refusing what a proxy never does
//! (ward's compiler).

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder};

use super::record::Recorder;
use super::resolve::Upstream;
use super::serve;
use super::shared::{self, Config};
use crate::error::{Error, Result, SysContext};
use crate::policy::egress::slot::{Listeners, Slot};
use crate::spec::domains::Domains;
use crate::spec::interception::Network;

/// What `ward create` hands the proxy.
pub struct Plan {
    pub id: String,
    pub domains: Domains,
    /// For the user's IP rules (upstream refusals, SOCKS addresses).
    pub network: Network,
    pub slot: Slot,
    /// `--egress-resolver`; `None`: the host's resolv.conf and /etc/hosts.
    pub resolver: Option<SocketAddr>,
    /// `<state>/violations.jsonl`, opened O_APPEND by create.
    pub log: OwnedFd,
    /// setns here before dropping capabilities; `None`: stay.
    pub upstream_netns: Option<OwnedFd>,
    /// Exit when readable (the container's init died).
    pub init_pidfd: OwnedFd,
    /// Held for life (the sk_lookup link).
    pub keep: Vec<OwnedFd>,
    /// The container's CA, when some host has http rules or credentials (TLS terminated there).
    pub ca: Option<crate::policy::proxy::ca::Authority>,
    /// `--egress-ca FILE`: PEM certificates trusted upstream besides the host's store.
    pub extra_roots_pem: Vec<u8>,
    /// The container's credentials (placeholders and secrets).
    pub vault: crate::policy::credentials::Vault,
}

/// The open-file bound of the daemon: 1024 clients, as many upstreams, listeners and slack.
pub const NOFILE: u64 = 4096;

/// Syscalls the proxy never makes; refused with EPERM (a 32-bit or x32 call kills it).
pub const REFUSED: &[&str] = &[
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "pivot_root",
    "chroot",
    "bpf",
    "setns",
    "unshare",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "userfaultfd",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "quotactl_fd",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "fanotify_init",
    "personality",
    "syslog",
    "vhangup",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capset",
    "pidfd_getfd",
    "kcmp",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "mknod",
    "mknodat",
    "nfsservctl",
    "vm86",
    "vm86old",
    "uselib",
    "create_module",
    "get_kernel_syms",
    "query_module",
];

/// Starts the daemon and returns its pid. `create` must be single-threaded (it is): the
/// children call only ward's own code, and the runtime is built after the second fork.
pub fn spawn(plan: Plan, listeners: Listeners) -> Result<i32> {
    crate::sys::daemon::spawn("egress proxy", move || match run(plan, listeners) {
        Ok(()) => 0,
        Err(_) => 1,
    })
}

/// Hardens the calling process, then serves. Errors before serving are written to the log.
fn run(plan: Plan, listeners: Listeners) -> Result<()> {
    let mut keep: Vec<RawFd> = vec![
        listeners.dns_udp.as_raw_fd(),
        listeners.dns_tcp.as_raw_fd(),
        listeners.explicit.as_raw_fd(),
        plan.log.as_raw_fd(),
        plan.init_pidfd.as_raw_fd(),
    ];
    keep.extend(listeners.transparent.iter().map(|f| f.as_raw_fd()));
    keep.extend(plan.keep.iter().map(|f| f.as_raw_fd()));
    keep.extend(plan.upstream_netns.iter().map(|f| f.as_raw_fd()));
    crate::sys::daemon::keep_only(&keep);
    let rec = Recorder::new(
        plan.id.clone(),
        plan.log
            .try_clone()
            .map_err(|e| shared::io_err("dup log", e))?,
    );
    // The host's trust store for the TLS to origins, read while files can still be opened.
    if plan.ca.is_some() {
        let (n, errors) = super::tls::trust::load_host_roots();
        for e in errors {
            rec.note(&format!("warning: the host's trust store: {e}"));
        }
        if n == 0 {
            rec.note(
                "warning: no certificate in the host's trust store (only --egress-ca is \
                 trusted upstream)",
            );
        }
    }
    let started = plan
        .network
        .rules()
        .and_then(|rules| Ok((rules, harden(&plan, &rec)?)));
    let (rules, upstream) = match started {
        Ok(r) => r,
        Err(e) => {
            rec.note(&format!("failed to start: {e}"));
            return Err(e);
        }
    };
    drop(rec);
    let cfg = Config {
        id: plan.id,
        domains: plan.domains,
        rules,
        slot: plan.slot,
        upstream,
        log: plan.log,
        max_clients: shared::MAX_CLIENTS,
        ca: plan.ca,
        extra_roots_pem: plan.extra_roots_pem,
        vault: plan.vault,
        #[cfg(test)]
        allow_loopback: false,
        #[cfg(test)]
        table_limit: None,
    };
    let _keep = plan.keep;
    drop(plan.upstream_netns);
    serve::serve(cfg, listeners, plan.init_pidfd)
}

/// Everything between closing the fds and serving; returns the upstream resolver.
fn harden(plan: &Plan, rec: &Recorder) -> Result<Upstream> {
    // Signals as a new process has them: none blocked, SIGTERM ends it (SIGPIPE stays
    // ignored, as Rust set it: a write to a closed peer is an error, not a death).
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    for s in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        // SAFETY: restoring the default disposition installs no handler.
        let _ = unsafe { nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigDfl) };
    }
    if let Some(ns) = &plan.upstream_netns {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .sys("setns", "the upstream network namespace")?;
    }
    let upstream = match plan.resolver {
        Some(a) => Upstream::server(a),
        None => Upstream::host()?,
    };
    // Without privilege the hard limit can only be lowered: a user's own may be below NOFILE.
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .sys("getrlimit", "RLIMIT_NOFILE of the egress proxy")?;
    let nofile = if nix::unistd::Uid::effective().is_root() {
        NOFILE
    } else {
        NOFILE.min(hard)
    };
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, nofile, nofile)
        .sys("setrlimit", "RLIMIT_NOFILE of the egress proxy")?;
    drop_privileges(rec)?;
    Ok(upstream)
}

/// Capabilities, no_new_privs, Landlock, seccomp: what `harden` ends with (also used by the
/// test of the daemon's status).
pub fn drop_privileges(rec: &Recorder) -> Result<()> {
    let none = crate::policy::capabilities::from_spec(None);
    // Emptying the bounding set takes CAP_SETPCAP, which a proxy started without privilege
    // (rootless) does not have: it has no capability to lose, and no_new_privs plus the
    // seccomp filter's refused execve keep it from ever gaining one.
    let setpcap = caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SETPCAP)
        .unwrap_or(false);
    if setpcap {
        crate::policy::capabilities::drop_bounding(&none)?;
    }
    crate::policy::capabilities::apply(&none)?;
    nix::sys::prctl::set_no_new_privs().sys("prctl", "PR_SET_NO_NEW_PRIVS")?;
    if let Some(note) = landlock_nothing()? {
        rec.note(&note);
    }
    let program = crate::policy::seccomp::compile(&filter()?)?;
    crate::policy::seccomp::install(&program)?;
    Ok(())
}

/// Landlock handling every filesystem right the kernel knows and granting none: the proxy
/// opens no file after this. `Some(note)` when the kernel enforces less.
fn landlock_nothing() -> Result<Option<String>> {
    use landlock::{Access, AccessFs, Ruleset, RulesetAttr, RulesetStatus};
    let abi = crate::policy::landlock::kernel_abi();
    if abi == 0 {
        return Ok(Some(
            "warning: the kernel has no Landlock: the proxy's filesystem access is not \
             restricted by it (capabilities and seccomp still are)"
                .into(),
        ));
    }
    let err = |e: landlock::RulesetError| Error::Init(format!("egress proxy: landlock: {e}"));
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(landlock::ABI::from(abi)))
        .map_err(err)?
        .create()
        .map_err(err)?
        .restrict_self()
        .map_err(err)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => None,
        other => Some(format!("warning: landlock {other:?} (kernel ABI {abi})")),
    })
}

/// The seccomp profile: allow by default, EPERM for `REFUSED` (native x86-64 only: any other
/// ABI is killed by ward's compiler).
fn filter() -> Result<oci_spec::runtime::LinuxSeccomp> {
    let err = |e: oci_spec::OciSpecError| Error::Init(format!("egress proxy: seccomp: {e}"));
    let known = crate::policy::seccomp::syscalls::X86_64;
    let names: Vec<String> = REFUSED
        .iter()
        .filter(|n| known.iter().any(|(k, _)| k == *n))
        .map(|n| n.to_string())
        .collect();
    let rule = LinuxSyscallBuilder::default()
        .names(names)
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .build()
        .map_err(err)?;
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![Arch::ScmpArchNative])
        .syscalls(vec![rule])
        .build()
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, UdpSocket};
    use std::time::{Duration, Instant};

    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RData, RecordType};

    use super::*;

    fn status(pid: i32) -> String {
        std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
    }

    fn field<'a>(status: &'a str, name: &str) -> &'a str {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or("")
    }

    /// The real daemon, as root or not: forked, hardened (no capabilities in any set, no_new_privs,
    /// seccomp filter, few fds), answering DNS, and gone once its "init" (a pidfd) has exited.
    #[test]
    fn the_daemon_is_hardened_serves_and_exits_with_init() {
        // Without root too (the netns wall's rootless proxy): nothing to drop then, and the
        // bounding set stays (no CAP_SETPCAP), held harmless by no_new_privs and seccomp.
        let root = nix::unistd::Uid::effective().is_root();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dns_at = udp.local_addr().unwrap();
        let tcp = || OwnedFd::from(TcpListener::bind("127.0.0.1:0").unwrap());
        let slot = Slot { index: 0 };
        let listeners = Listeners {
            slot,
            dns_udp: udp.into(),
            dns_tcp: tcp(),
            explicit: tcp(),
            transparent: vec![tcp()],
        };
        let log_path =
            std::env::temp_dir().join(format!("ward-proxy-daemon-{}.jsonl", std::process::id()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        // The daemon writes through its fd: the name goes now, whatever way the test ends.
        let _ = std::fs::remove_file(&log_path);
        let domains = crate::spec::domains::for_tests(&["example.test"], &[]);
        // A stand-in for the container's init, and its pidfd.
        let mut init = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, init.id() as libc::pid_t, 0) };
        assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
        // SAFETY: the kernel just returned this fd; nothing else owns it.
        let init_pidfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        let plan = Plan {
            id: "daemon-test".into(),
            domains,
            network: Network::default(),
            slot,
            resolver: None,
            log: log.into(),
            upstream_netns: None,
            init_pidfd,
            keep: Vec::new(),
            // With a CA: the host's trust store is read before hardening, and the TLS
            // machinery is built after it.
            ca: Some(crate::policy::proxy::ca::Authority::generate("daemon-test").unwrap()),
            extra_roots_pem: Vec::new(),
            vault: Default::default(),
        };
        let pid = spawn(plan, listeners).unwrap();
        // DNS answers (the runtime runs under every restriction).
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("example.test.").unwrap(),
            RecordType::A,
        ));
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock.send_to(&q.to_vec().unwrap(), dns_at).unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        let m = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(matches!(&m.answers[0].data, RData::A(a) if a.0 == slot.names().next().unwrap()));
        let st = status(pid);
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            if set == "CapBnd" && !root {
                continue;
            }
            assert_eq!(field(&st, set), "0000000000000000", "{set}\n{st}");
        }
        assert_eq!(field(&st, "NoNewPrivs"), "1");
        assert_eq!(field(&st, "Seccomp"), "2");
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count();
        assert!(fds <= 16, "{fds} fds open");
        // VmRSS of a fork of the test harness counts the pages it shares with the harness;
        // the private ones are what the daemon itself made (the number to watch).
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
        eprintln!(
            "egress proxy daemon idle: VmRSS {}, Private_Dirty {}, Private_Clean {}, {fds} fds",
            field(&st, "VmRSS"),
            field(&rollup, "Private_Dirty"),
            field(&rollup, "Private_Clean"),
        );
        // The "init" ends: the daemon exits.
        init.kill().unwrap();
        init.wait().unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            let st = status(pid);
            if st.is_empty() || field(&st, "State").starts_with('Z') {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        panic!("the daemon did not exit after its init did");
    }
}
