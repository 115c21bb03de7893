//! `ward sandbox`: a command on the host's own filesystem view, as the calling user, behind
//! every wall ward has, with no bundle and no root (issue 18). The command line and the
//! settings (srt's file, `spec::sandbox::settings`) become an OCI config in memory
//! (`config`), which goes through the same create/start/delete as any container: one path to
//! audit, the same init order (fds, seccomp last, masked paths).
//!
//! `prepare` checks the walls the kernel offers (`walls`) and builds the config; the front end
//! creates, starts and waits (it owns the terminal and signals); `finish` reads the violations
//! (copied to `--log`, summarised on stderr) and removes everything: container, state, the
//! empty rootfs directory.

pub mod config;
pub mod walls;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::container::create::CreateOpts;
use crate::error::{Error, Result};
use crate::spec::sandbox::settings::Settings;

pub use config::{Caller, Weaker};

/// What the front end gathered.
pub struct Options {
    /// The state root (`$XDG_RUNTIME_DIR/ward` rootless).
    pub root: PathBuf,
    pub settings: Settings,
    /// ward's own policy (`process.interception`'s JSON) given instead of srt's settings.
    pub policy: Option<Value>,
    pub caller: Caller,
    pub weaker: Weaker,
    pub egress_resolver: Option<std::net::SocketAddr>,
    pub egress_ca: Option<PathBuf>,
    /// `--rootless`, resolved: a cgroup the user may not make is skipped.
    pub rootless: bool,
}

/// A sandbox ready to be created.
pub struct Prepared {
    pub opts: CreateOpts,
    /// Removed by `finish` (and on drop, should the front end fail first).
    pub work: WorkDir,
    /// For the user: paths ignored, settings keys unknown, walls given up.
    pub warnings: Vec<String>,
}

/// The sandbox's own directory under the state root: the (empty) rootfs the host's view is
/// bound onto. Removed when dropped.
pub struct WorkDir(pub PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0.join(HOSTS));
        remove_mount_points(&self.0.join("rootfs"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Removes the rootfs and the mount points create made in it (`/etc/resolv.conf` of the
/// netns wall: an empty file in an otherwise empty tree; left, every sandbox with a domain
/// leaves a directory behind, and a later one whose pid is the same fails to start). Only
/// directories and empty regular files go, symlinks are not followed: whatever else is there
/// is not ward's and stays (the rootfs directory with it).
fn remove_mount_points(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                remove_mount_points(&e.path());
            } else if meta.is_file() && meta.len() == 0 {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Sandboxes whose ward was killed (SIGKILL leaves its container and work directory): the
/// ones whose pid no longer runs ward are deleted and their directories removed, so they
/// neither pile up nor block a later sandbox that gets the same pid.
fn sweep(root: &Path, base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("sandbox-")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() as i32 || runs_ward(pid) {
            continue;
        }
        tracing::debug!(id = %name, "sandbox: sweeping what a killed ward left");
        let _ = crate::container::delete::delete(root, &name, true);
        drop(WorkDir(e.path()));
    }
}

/// Whether `pid` is a ward process (a sandbox's, alive).
fn runs_ward(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.trim_end() == "ward" || c.starts_with("memfd:ward"))
        || std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|e| e.to_string_lossy().contains("ward"))
}

/// The subdirectory of the state root that holds the sandboxes' work directories.
pub const WORK: &str = ".sandbox";

pub fn prepare(o: Options) -> Result<Prepared> {
    let mut warnings = o.settings.warnings.clone();
    warnings.extend(walls::check(o.weaker)?);
    if !o.settings.network.allow_unix_sockets.is_empty()
        && !o.settings.network.allow_all_unix_sockets
    {
        warnings.push(
            "network.allowUnixSockets: single sockets cannot be allowed on Linux without a kernel \
             hook a sandbox cannot attach; unix sockets stay refused (allowAllUnixSockets: true \
             allows every one), as srt does on Linux"
                .into(),
        );
    }
    let id = format!("sandbox-{}", std::process::id());
    let base = o.root.join(WORK);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&base)
        .map_err(|e| Error::io("mkdir", &base, e))?;
    sweep(&o.root, &base);
    let dir = base.join(&id);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io("mkdir", &dir, e))?;
    let work = WorkDir(dir.clone());
    let rootfs = dir.join("rootfs");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&rootfs)
        .map_err(|e| Error::io("mkdir", &rootfs, e))?;
    // ward's own state (every container's, this one's too) is not the command's to read.
    let hidden: Vec<PathBuf> = vec![o.root.clone()];
    let mut paths = config::paths(&o.settings, &o.caller.cwd, &hidden, &mut warnings);
    if !o.settings.network.allowed_domains.is_empty() {
        let hosts = dir.join(HOSTS);
        let text = loopback_hosts(&std::fs::read_to_string("/etc/hosts").unwrap_or_default());
        std::fs::write(&hosts, text).map_err(|e| Error::io("write", &hosts, e))?;
        paths.hosts = Some(hosts);
    }
    let interception = match &o.policy {
        Some(p) => with_cli_domains(p.clone(), &o.settings.network.allowed_domains),
        None => interception(&o.settings),
    };
    let raw = config::config(
        &o.caller,
        &paths,
        &o.settings,
        &rootfs,
        interception,
        o.weaker,
    );
    let opts = CreateOpts {
        root: o.root,
        id,
        bundle: dir,
        console_socket: None,
        pid_file: None,
        preserve_fds: 0,
        no_pivot: false,
        foreground: true,
        egress_resolver: o.egress_resolver,
        egress_ca: o.egress_ca,
        interception: None,
        config: Some(raw),
        rootless: o.rootless,
        systemd_cgroup: false,
    };
    Ok(Prepared {
        opts,
        work,
        warnings,
    })
}

const HOSTS: &str = "hosts";

/// The host's /etc/hosts without the lines naming addresses past loopback: with egress by
/// name, every name the command resolves must come from the proxy's DNS (a name the host
/// pins to an address would be dialled by address, and an address is refused). The proxy
/// itself still reads the host's file.
fn loopback_hosts(text: &str) -> String {
    let mut out = String::from("# ward sandbox: the host's loopback names; every other name resolves through the egress proxy\n");
    for line in text.lines() {
        let addr = line.split_whitespace().next().unwrap_or_default();
        if addr.starts_with('#') || addr.is_empty() {
            continue;
        }
        if addr
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
        {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `process.interception`: egress by name when some domain is allowed (with no domain there
/// is no proxy at all: the network namespace has only `lo`), and the credentials.
fn interception(s: &Settings) -> Value {
    let mut i = json!({});
    if !s.network.allowed_domains.is_empty() {
        i["network"] = json!({
            "default": "deny",
            "allowedDomains": s.network.allowed_domains,
            "deniedDomains": s.network.denied_domains,
            "proxyEnv": true,
        });
    }
    if let Some(c) = &s.credentials {
        i["credentials"] = c.clone();
    }
    i
}

/// ward's own policy, with the domains of `--allow-domain` added and the proxy variables set.
fn with_cli_domains(mut policy: Value, domains: &[String]) -> Value {
    if !domains.is_empty() {
        let network = &mut policy["network"];
        if network.is_null() {
            *network = json!({"default": "deny"});
        }
        let list = &mut network["allowedDomains"];
        if !list.is_array() {
            *list = json!([]);
        }
        if let Some(l) = list.as_array_mut() {
            l.extend(domains.iter().map(|d| json!(d)));
        }
    }
    if policy["network"]["allowedDomains"].is_array() {
        policy["network"]["proxyEnv"] = json!(true);
    }
    policy
}

/// What the proxy refused while the command ran.
#[derive(Debug, Default)]
pub struct Summary {
    /// The log's lines, as written.
    pub lines: Vec<String>,
    /// `(name, count)` of denied lines, most frequent first.
    pub denied: Vec<(String, usize)>,
}

/// Reads the container's violation log (before delete removes it).
pub fn violations(root: &Path, id: &str) -> Summary {
    let path = root.join(id).join(crate::policy::supervisor::LOG);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut s = Summary::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        s.lines.push(line.to_string());
        let v: Value = serde_json::from_str(line).unwrap_or_default();
        let decision = v["decision"].as_str().unwrap_or_default();
        if !decision.starts_with("denied") {
            continue;
        }
        let what = match v["name"].as_str() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => v["destination"].as_str().unwrap_or("?").to_string(),
        };
        match s.denied.iter_mut().find(|(n, _)| *n == what) {
            Some((_, c)) => *c += 1,
            None => s.denied.push((what, 1)),
        }
    }
    s.denied.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_keeps_loopback_names_only() {
        let h = loopback_hosts("127.0.0.1 localhost\n::1 ip6-localhost\n10.0.0.5 db.corp\n# c\n\n203.0.113.9 api.example\n");
        assert!(h.contains("127.0.0.1 localhost") && h.contains("::1 ip6-localhost"));
        assert!(!h.contains("db.corp") && !h.contains("api.example"));
    }

    #[test]
    fn cli_domains_join_wards_policy() {
        let p = with_cli_domains(
            json!({"network": {"allowedDomains": ["a.test"]}}),
            &["b.test".into()],
        );
        assert_eq!(p["network"]["allowedDomains"], json!(["a.test", "b.test"]));
        assert_eq!(p["network"]["proxyEnv"], true);
        let p = with_cli_domains(json!({"credentials": {}}), &[]);
        assert!(p["network"].is_null());
    }

    #[test]
    fn work_dir_goes_with_its_mount_points_and_keeps_what_is_not_ward_s() {
        let base = std::env::temp_dir().join(format!("ward-workdir-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        // What create leaves for a sandbox with a domain: an empty resolv.conf mount point.
        let dir = base.join("a");
        std::fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
        std::fs::write(dir.join("rootfs/etc/resolv.conf"), "").unwrap();
        std::fs::write(dir.join(HOSTS), "127.0.0.1 localhost\n").unwrap();
        drop(WorkDir(dir.clone()));
        assert!(!dir.exists());
        // A file with content is not a mount point: it stays, and so do its directories.
        let dir = base.join("b");
        std::fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
        std::fs::write(dir.join("rootfs/etc/passwd"), "x").unwrap();
        drop(WorkDir(dir.clone()));
        assert!(dir.join("rootfs/etc/passwd").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
