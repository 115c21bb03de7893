//! `ward hook egress`: ward's egress walls and proxy for containers another runtime runs (runc,
//! crun), as an OCI hook (hooks/README.md). The runtime passes the container's state on stdin.
//!
//! - createRuntime (`status` "creating"): the container's namespaces and cgroup exist and no
//!   process of the workload has run yet. The hook reads the policy from the bundle's
//!   config.json (`process.interception`, or the `org.ward.interception` annotation), makes the
//!   proxy's listeners in the container's network namespace, puts the DNS redirect and the
//!   wall on its cgroup v2 directory, and starts the supervisor and the proxy. Their record
//!   (and the violation log) is `<root>/@egress-hook/<id>/`.
//! - poststop (`status` "stopped"): ends what the record names and removes the directory.
//!
//! Any error in createRuntime undoes what the hook made and fails the hook, so the runtime
//! refuses to start the container rather than run it unwalled.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where the hook keeps its records, under ward's state root (not a container id: `@`).
pub const DIR: &str = "@egress-hook";
const RECORD: &str = "hook.json";

/// The runtime-spec state a hook reads on stdin (the fields the hook uses).
#[derive(Debug, Deserialize)]
pub struct HookState {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub pid: i32,
    pub bundle: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    supervisor: Option<(i32, u64)>,
    proxy: Option<(i32, u64)>,
    /// A network namespace joined by path whose `lo` got the proxy's range.
    #[serde(default)]
    netns: Option<PathBuf>,
}

/// Runs the hook for the stage the state's status names.
pub fn egress(
    root: &Path,
    resolver: Option<std::net::SocketAddr>,
    extra_roots_pem: Vec<u8>,
    state: &HookState,
) -> Result<()> {
    crate::container::state::validate_id(&state.id)?;
    let dir = root.join(DIR).join(&state.id);
    match state.status.as_str() {
        "creating" | "created" => setup(&dir, resolver, extra_roots_pem, state),
        "stopped" => {
            teardown(&dir);
            Ok(())
        }
        other => Err(Error::spec(
            "state.status",
            format!("{other:?}: ward hook egress runs at createRuntime (\"creating\") and poststop (\"stopped\")"),
        )),
    }
}

fn setup(
    dir: &Path,
    resolver: Option<std::net::SocketAddr>,
    extra_roots_pem: Vec<u8>,
    state: &HookState,
) -> Result<()> {
    let config = state.bundle.join("config.json");
    let text = std::fs::read(&config).map_err(|e| Error::io("read", &config, e))?;
    let raw: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::spec(config.display().to_string(), e.to_string()))?;
    let policy = crate::spec::interception::from_config(&raw)?;
    if let Some(i) = &policy {
        refuse_credentials(i, &raw)?;
    }
    let Some(network) = policy.and_then(|i| i.network) else {
        tracing::info!(
            "ward hook egress: no network policy in {}",
            config.display()
        );
        return Ok(());
    };
    if state.pid <= 0 {
        return Err(Error::spec("state.pid", "the container has no process yet"));
    }
    refuse_caps_that_lift_the_wall(&raw)?;
    std::fs::create_dir_all(dir.parent().unwrap_or(dir)).map_err(|e| Error::io("mkdir", dir, e))?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("mkdir", dir, e))?;
    let mut record = Record::default();
    let made = setup_in(
        dir,
        resolver,
        extra_roots_pem,
        state,
        &raw,
        network,
        &mut record,
    );
    if made.is_err() {
        for (pid, start) in record.supervisor.into_iter().chain(record.proxy) {
            crate::container::delete::kill_if_same(pid, start);
        }
        if let Some(ns) = &record.netns {
            crate::container::egress::release(ns);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
    made
}

/// Credentials need the process's env rewritten (and files masked by mounts) before the
/// workload starts; by createRuntime the runtime has fixed both, so a hook cannot keep the
/// secret out: refused before anything is made, so the runtime does not start the container.
fn refuse_credentials(
    i: &crate::spec::interception::Interception,
    raw: &serde_json::Value,
) -> Result<()> {
    if i.compiled_credentials(raw)?.is_some() {
        return Err(Error::spec(
            crate::spec::interception::field(raw, "credentials"),
            "credentials are ward-only: `ward hook egress` runs after the runtime has fixed the              process's env and mounts, so the secret would already be inside the container;              run the container with ward as the runtime (http rules work under the hook)",
        ));
    }
    Ok(())
}

/// Under another runtime ward's families filter is not there to close bpf(2): a process with
/// CAP_SYS_ADMIN or CAP_BPF could find the wall's programs on its cgroup and detach them (or
/// attach one after them that rewrites what they allowed). Refused, like CAP_NET_ADMIN in a
/// joined network namespace (`egress::refuse_net_admin`).
fn refuse_caps_that_lift_the_wall(raw: &serde_json::Value) -> Result<()> {
    use oci_spec::runtime::{Capability, LinuxNamespaceType as Ns};
    let spec: oci_spec::runtime::Spec = crate::spec::from_value(raw, "config.json")?;
    let Some(process) = spec.process() else {
        return Ok(());
    };
    let ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let userns = ns.iter().any(|n| n.typ() == Ns::User);
    let bounding = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default();
    for cap in [Capability::SysAdmin, Capability::Bpf] {
        if bounding.contains(&cap) && !userns {
            return Err(Error::spec(
                "process.capabilities.bounding",
                format!(
                    "CAP_{cap} beside an egress policy under `ward hook egress`: the container could \
                     detach the walls with bpf(2), which only ward itself closes"
                ),
            ));
        }
    }
    // Raw and packet sockets send past the cgroup wall's connect/sendmsg hooks; ward's own
    // runtime refuses them with its families filter (seccomp), which a hook cannot install.
    if bounding.contains(&Capability::NetRaw) && !userns {
        return Err(Error::spec(
            "process.capabilities.bounding",
            "CAP_NET_RAW beside an egress policy under `ward hook egress`: raw and packet \
             sockets would send past the wall (ward as the runtime refuses them itself); drop \
             it (docker run --cap-drop NET_RAW) or run the container with ward",
        ));
    }
    crate::container::egress::refuse_net_admin(
        ns.iter()
            .any(|n| n.typ() == Ns::Network && n.path().is_some()),
        userns,
        process,
    )
}

fn setup_in(
    dir: &Path,
    resolver: Option<std::net::SocketAddr>,
    extra_roots_pem: Vec<u8>,
    state: &HookState,
    raw: &serde_json::Value,
    network: crate::spec::interception::Network,
    record: &mut Record,
) -> Result<()> {
    let cgroup_dir = cgroup_v2_dir(state.pid)?;
    let cgroup = crate::policy::cgroups::v2::open_dir(&cgroup_dir)?;
    let ring = crate::policy::egress::programs::create_ringbuf()?;
    if let Some(allowed) = &network.allow_unix {
        crate::policy::egress::unix::install(cgroup.as_fd(), allowed, ring.as_fd())?;
    }
    let at = crate::spec::interception::network_field(raw);
    let prepared = match network.domains(&at)? {
        Some(domains) if domains.proxy_env => {
            return Err(Error::spec(
                format!("{at}.proxyEnv"),
                "a hook cannot change the environment of a process its runtime has already \
                 set up: put HTTP_PROXY/HTTPS_PROXY=http://198.18.0.1:3128 and \
                 ALL_PROXY=socks5h://198.18.0.1:3128 in process.env instead (the first \
                 container of a network namespace gets 198.18.0.1)",
            ))
        }
        Some(domains) => {
            record.netns = raw
                .pointer("/linux/namespaces")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .find(|n| n["type"] == "network")
                .and_then(|n| n["path"].as_str())
                .map(PathBuf::from);
            let netns = crate::container::egress::open_netns(Path::new(&format!(
                "/proc/{}/ns/net",
                state.pid
            )))?;
            Some(crate::container::egress::joined(
                domains,
                network.clone(),
                netns,
            )?)
        }
        None => None,
    };
    let wall = match &prepared {
        Some(p) => crate::container::egress::install_walls(cgroup.as_fd(), p, ring.as_fd())?,
        None => {
            crate::policy::egress::programs::install(cgroup.as_fd(), &network, ring.as_fd())?;
            network.clone()
        }
    };
    let plan = crate::policy::supervisor::Plan {
        id: state.id.clone(),
        state_dir: dir.to_path_buf(),
        cgroup_dir,
        rules: crate::policy::supervisor::rule_texts(&wall)?,
    };
    let spid = crate::policy::supervisor::spawn(plan, Some(ring))?;
    record.supervisor = crate::container::state::proc_stat(spid).map(|(_, t)| (spid, t));
    if let Some(p) = prepared {
        let pidfd = pidfd_open(state.pid)?;
        let ppid = crate::container::egress::start(
            p,
            &state.id,
            dir,
            state.pid,
            pidfd.as_fd(),
            resolver,
            extra_roots_pem,
        )?;
        record.proxy = crate::container::state::proc_stat(ppid).map(|(_, t)| (ppid, t));
    }
    let bytes = serde_json::to_vec(record).map_err(|e| Error::Init(e.to_string()))?;
    crate::sys::stateroot::write_atomic(&dir.join(RECORD), &bytes)?;
    Ok(())
}

fn teardown(dir: &Path) {
    let record: Record = std::fs::read(dir.join(RECORD))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for (pid, start) in record.proxy.into_iter().chain(record.supervisor) {
        crate::container::delete::kill_if_same(pid, start);
    }
    if let Some(ns) = &record.netns {
        crate::container::egress::release(ns);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The container's cgroup v2 directory, from its process's /proc/<pid>/cgroup ("0::/path"):
/// under /sys/fs/cgroup on a pure v2 host, under /sys/fs/cgroup/unified on a hybrid one.
fn cgroup_v2_dir(pid: i32) -> Result<PathBuf> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "{path} names no cgroup v2 directory: the egress walls need cgroup v2"
            ))
        })?;
    let root = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        PathBuf::from("/sys/fs/cgroup/unified")
    };
    let rel = rel.trim().trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return Err(Error::spec(path, format!("{rel:?} is not a cgroup path")));
    }
    Ok(root.join(rel))
}

fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; a non-negative result is a new fd we own.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if ret < 0 {
        return Err(Error::sys(
            "pidfd_open",
            format!("container process {pid}"),
            nix::errno::Errno::last(),
        ));
    }
    // SAFETY: ret is a freshly opened fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}
