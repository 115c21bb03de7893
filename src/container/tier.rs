//! Isolation tiers from one binary: `native` (namespaces, cgroups, seccomp, Landlock) and
//! `gvisor`, where the whole bundle is handed to gVisor's runsc, whose user-space kernel handles
//! every syscall. Chosen by the annotation `org.ward.isolation` or ward's `--default-isolation`;
//! an annotation may only raise the tier, never lower it. ward records the tier in its state and
//! routes every later command for that id to runsc, with a root of its own under ward's root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::container::state::{ContainerDir, Stored};
use crate::error::{Error, Result};

pub use crate::spec::isolation::{choose, Tier, ANNOTATION};

/// ward's own features gVisor cannot honour are refused rather than silently dropped.
pub fn refuse_unhonoured(bundle: &crate::spec::Bundle) -> Result<()> {
    if let Some(i) = &bundle.interception {
        crate::spec::interception::refuse_domains(
            i,
            &bundle.raw,
            "egress by domain name is not available in the gvisor tier (runsc has its own \
             network stack, outside ward's proxy and cgroup walls): use the native tier",
        )?;
        // runsc's --network=none is the one equivalent: a deny-all policy in a new netns.
        let deny_all = i.network.as_ref().is_some_and(|n| {
            n.default == crate::spec::interception::Verdict::Deny
                && n.allow.is_empty()
                && n.allow_unix.is_none()
        }) && Network::of(&bundle.spec) == Network::None;
        if !deny_all {
            return Err(Error::spec(
                "process.interception",
                "ward's egress policy is not available in the gvisor tier (only deny-all, as runsc --network=none): use the native tier",
            ));
        }
    }
    if bundle.landlock.is_some() {
        return Err(Error::spec(
            "process.landlock",
            "Landlock is not available in the gvisor isolation tier (runsc's kernel has no Landlock): remove it or use the native tier",
        ));
    }
    Ok(())
}

/// runsc's `--network` for a spec's network namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// A namespace given by path (e.g. a pod's, set up by CNI): runsc's default, its own
    /// network stack over the interfaces it finds there.
    #[default]
    Sandbox,
    /// A new namespace without a path holds only loopback under native isolation; runsc's
    /// sandbox networking needs a namespace prepared for it, so: `--network=none`.
    None,
    /// No network namespace: the host's network (a hostNetwork pod). runsc refuses its own
    /// stack in the host's namespace, so: `--network=host` (gVisor still handles every
    /// syscall; its sockets are the host's, as the spec asked).
    Host,
}

impl Network {
    pub fn of(spec: &oci_spec::runtime::Spec) -> Network {
        let netns = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .and_then(|ns| {
                ns.iter()
                    .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
            });
        match netns {
            None => Network::Host,
            Some(n) if n.path().is_none() => Network::None,
            Some(_) => Network::Sandbox,
        }
    }

    fn flag(self) -> Option<&'static str> {
        match self {
            Network::Sandbox => None,
            Network::None => Some("--network=none"),
            Network::Host => Some("--network=host"),
        }
    }
}

/// How to call runsc for one ward invocation.
pub struct Runsc {
    pub root: PathBuf,
    /// `--network` (see `Network`); the same for every command of a container, and for every
    /// container of a sandbox.
    pub network: Network,
    pub log: Option<PathBuf>,
    pub log_format: Option<String>,
    pub debug: bool,
}

impl Runsc {
    pub fn new(
        state_root: &Path,
        log: Option<&Path>,
        log_format: Option<&str>,
        debug: bool,
    ) -> Runsc {
        Runsc {
            root: state_root.join(crate::container::state::RUNSC_DIR),
            network: Network::Sandbox,
            log: log.map(Path::to_path_buf),
            log_format: log_format.map(str::to_string),
            debug,
        }
    }

    fn binary() -> Result<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join("runsc"))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::Init("isolation tier gvisor requested but runsc is not installed (not found in PATH): refusing to fall back to native".into()))
    }

    /// `runsc <globals> <args...>`. Cgroups are left to ward's host layout: runsc 2022 cannot
    /// drive a hybrid host's cgroups, so it is told not to.
    pub fn command(&self, args: &[String]) -> Result<Command> {
        let binary = Self::binary()?;
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io("create", &self.root, e))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--root").arg(&self.root);
        if let Some(l) = &self.log {
            cmd.arg("--log").arg(l);
        }
        if let Some(f) = &self.log_format {
            cmd.arg("--log-format").arg(f);
        }
        if self.debug {
            cmd.arg("--debug");
        }
        if let Some(f) = self.network.flag() {
            cmd.arg(f);
        }
        if crate::policy::cgroups::detect() != crate::policy::cgroups::Mode::Unified {
            cmd.arg("--ignore-cgroups");
        }
        cmd.args(args);
        Ok(cmd)
    }

    /// Runs runsc with our stdio; its exit status.
    pub fn run(&self, args: &[String]) -> Result<i32> {
        let status = self
            .command(args)?
            .status()
            .map_err(|e| Error::io("run", "runsc", e))?;
        Ok(status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
        }))
    }

    /// The gofer runsc started for `id` (`goferPid` in runsc's own record of it), with its
    /// start time: runsc's `state` does not name it.
    pub fn gofer(&self, id: &str) -> Option<(i32, u64)> {
        let prefix = format!("{id}_sandbox:");
        let file = std::fs::read_dir(&self.root).ok()?.flatten().find(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&prefix) && n.ends_with(".state")
        })?;
        let rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file.path()).ok()?).ok()?;
        let pid = rec["goferPid"].as_i64().filter(|p| *p > 0)? as i32;
        crate::container::state::proc_stat(pid).map(|(_, t)| (pid, t))
    }

    /// Removes runsc's own record of `id` (its `.state` and `.lock` files), for a forced
    /// delete whose processes are already gone.
    pub fn forget(&self, id: &str) {
        let prefix = format!("{id}_sandbox:");
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// `runsc state <id>` as ward's report fields.
    pub fn state(&self, id: &str) -> Result<serde_json::Value> {
        let out = self
            .command(&["state".into(), id.into()])?
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io("run", "runsc state", e))?;
        if !out.status.success() {
            return Err(Error::Init(format!(
                "runsc state {id}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| Error::Init(format!("runsc state {id}: {e}")))
    }
}

/// Records a gvisor container in ward's state, after runsc created it. `keeper` (pid, start
/// time): the process the caller was given as the container's init, for a container in a
/// pod's sandbox (see gvisor_pod); otherwise that is runsc's sandbox process.
pub fn record(
    dir: &ContainerDir,
    runsc: &Runsc,
    bundle: &crate::spec::Bundle,
    id: &str,
    keeper: Option<(i32, u64)>,
) -> Result<()> {
    let (pid, init_start_time) = match keeper {
        Some(k) => k,
        None => {
            let st = runsc.state(id)?;
            let pid = st["pid"].as_i64().unwrap_or(0) as i32;
            (
                pid,
                crate::container::state::proc_stat(pid)
                    .map(|(_, t)| t)
                    .unwrap_or(0),
            )
        }
    };
    let stored = Stored {
        oci_version: bundle.spec.version().clone(),
        id: id.into(),
        pid,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        owner: String::new(),
        init_start_time,
        init_exe: None,
        private_pid_ns: true,
        cgroup: None,
        tier: Tier::Gvisor,
        supervisor: None,
        proxy: None,
        proxy_netns: None,
    };
    dir.save_config(&bundle.raw)?;
    dir.save(&stored)
}

/// ward's state report for a gvisor container: ward's record, with runsc's view of the status
/// and pid (runsc owns the process). The pid of a container in a pod's sandbox is its keeper's,
/// the one its caller was given: runsc would name the sandbox, shared by the whole pod.
pub fn report(root: &Path, dir: &ContainerDir, stored: &Stored) -> crate::container::state::Report {
    let mut r = dir.report(stored);
    let sub = matches!(
        crate::container::gvisor_pod::role(Some(&stored.annotations)),
        Ok(crate::container::gvisor_pod::Role::Subcontainer { .. })
    );
    if let Ok(st) = Runsc::new(root, None, None, false).state(&stored.id) {
        if let Ok(status) = serde_json::from_value(st["status"].clone()) {
            r.status = status;
        }
        r.pid = match r.status {
            crate::container::state::Status::Stopped => 0,
            _ if sub => stored.pid,
            _ => st["pid"].as_i64().unwrap_or(0) as i32,
        };
    }
    r
}

/// runsc's `--network` for a container: all containers of one sandbox must run with the
/// sandbox's flags (runsc fixes them when it creates the sandbox), so a pod's app container
/// takes its pause container's.
pub fn network_of(root: &Path, spec: &oci_spec::runtime::Spec) -> Network {
    if let Ok(crate::container::gvisor_pod::Role::Subcontainer { sandbox }) =
        crate::container::gvisor_pod::role(spec.annotations().as_ref())
    {
        if let Ok(sb) = ContainerDir::open(root, &sandbox).and_then(|d| d.load_config()) {
            return Network::of(&sb);
        }
    }
    Network::of(spec)
}

/// The tier a stored container runs in (native when there is no such container: the
/// command then reports that itself).
pub fn of(root: &Path, id: &str) -> Tier {
    stored(root, id).unwrap_or_default()
}

/// The tier of a container under `root`, if there is one with that id.
pub fn stored(root: &Path, id: &str) -> Option<Tier> {
    ContainerDir::open(root, id)
        .and_then(|d| d.load())
        .map(|s| s.tier)
        .ok()
}

/// The tier for a container joining the pod sandbox `sandbox`: the pod's, whatever the
/// container asked (a pod's containers share one sandbox; joining a gVisor pod only raises
/// the tier), and a container asking for gvisor cannot join a native pod.
pub fn for_pod_member(root: &Path, sandbox: &str, asked: Tier) -> Result<Tier> {
    match (stored(root, sandbox), asked) {
        (Some(Tier::Gvisor), _) => Ok(Tier::Gvisor),
        (Some(Tier::Native), Tier::Gvisor) => Err(Error::spec(
            format!("annotations.{ANNOTATION}"),
            format!("gvisor, but the pod sandbox {sandbox} runs in the native tier: set the annotation on the pod (pod_annotations) so every container of it runs in gVisor"),
        )),
        (None, Tier::Gvisor) => Err(Error::spec(
            format!("annotations.{}", crate::container::gvisor_pod::SANDBOX_ID),
            format!("the pod sandbox {sandbox} is not a container under this root: a container in gVisor joins its pod's runsc sandbox"),
        )),
        (_, t) => Ok(t),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn ann(v: &str) -> HashMap<String, String> {
        HashMap::from([(ANNOTATION.to_string(), v.to_string())])
    }

    #[test]
    fn annotations_only_raise_the_tier() {
        assert_eq!(choose(Tier::Native, None).unwrap(), Tier::Native);
        assert_eq!(
            choose(Tier::Native, Some(&ann("gvisor"))).unwrap(),
            Tier::Gvisor
        );
        assert_eq!(choose(Tier::Gvisor, None).unwrap(), Tier::Gvisor);
        assert_eq!(
            choose(Tier::Gvisor, Some(&ann("gvisor"))).unwrap(),
            Tier::Gvisor
        );
        let e = choose(Tier::Gvisor, Some(&ann("native")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only raise"), "{e}");
        assert!(choose(Tier::Native, Some(&ann("kata"))).is_err());
    }

    fn spec_with_netns(netns: Option<Option<&str>>) -> oci_spec::runtime::Spec {
        let mut ns = vec![serde_json::json!({"type": "pid"})];
        if let Some(path) = netns {
            ns.push(match path {
                Some(p) => serde_json::json!({"type": "network", "path": p}),
                None => serde_json::json!({"type": "network"}),
            });
        }
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "linux": {"namespaces": ns},
        }))
        .unwrap()
    }

    #[test]
    fn runsc_network_follows_the_network_namespace() {
        assert_eq!(Network::of(&spec_with_netns(None)), Network::Host);
        assert_eq!(Network::of(&spec_with_netns(Some(None))), Network::None);
        assert_eq!(
            Network::of(&spec_with_netns(Some(Some("/var/run/netns/cni-1")))),
            Network::Sandbox
        );
        assert_eq!(Network::Host.flag(), Some("--network=host"));
        assert_eq!(Network::None.flag(), Some("--network=none"));
        assert_eq!(Network::Sandbox.flag(), None);
    }

    #[test]
    fn pod_members_take_the_pods_tier() {
        let root = std::env::temp_dir().join(format!("ward-tier-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        // No such sandbox: a native container goes its own way, a gvisor one is refused.
        assert_eq!(
            for_pod_member(&root, "p", Tier::Native).unwrap(),
            Tier::Native
        );
        assert!(for_pod_member(&root, "p", Tier::Gvisor).is_err());
        for (id, tier) in [("pg", Tier::Gvisor), ("pn", Tier::Native)] {
            let dir = ContainerDir::create(&root, id).unwrap();
            dir.save(&Stored {
                oci_version: "1.0.2".into(),
                id: id.into(),
                pid: 0,
                bundle: "/b".into(),
                rootfs: "/b/rootfs".into(),
                created: String::new(),
                annotations: HashMap::new(),
                owner: String::new(),
                init_start_time: 0,
                init_exe: None,
                private_pid_ns: true,
                cgroup: None,
                tier,
                supervisor: None,
                proxy: None,
                proxy_netns: None,
            })
            .unwrap();
        }
        assert_eq!(
            for_pod_member(&root, "pg", Tier::Native).unwrap(),
            Tier::Gvisor
        );
        assert_eq!(
            for_pod_member(&root, "pn", Tier::Native).unwrap(),
            Tier::Native
        );
        let e = for_pod_member(&root, "pn", Tier::Gvisor)
            .unwrap_err()
            .to_string();
        assert!(e.contains("native tier"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
