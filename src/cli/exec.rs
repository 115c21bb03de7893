//! `ward exec`: runc's flags; the exit status is the process's, 255 when exec itself fails.

#[cfg(target_os = "linux")]
use std::os::fd::AsFd;
use std::path::PathBuf;

#[cfg(target_os = "linux")]
use oci_spec::runtime::Process;
#[cfg(target_os = "linux")]
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<String>,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub tty: bool,
    /// uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// A process.json (the whole process; other process flags are then not allowed).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(short, long = "cap")]
    pub cap: Vec<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run in a sub-cgroup of the container ([controller:]path; v2: path).
    #[arg(long)]
    pub cgroup: Vec<String>,
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The process to run: --process, or the container's own process with the flags applied.
#[cfg(target_os = "linux")]
fn process(a: &Args, base: &Process) -> ward::Result<Process> {
    if let Some(p) = &a.process {
        let text = std::fs::read_to_string(p).map_err(|e| ward::Error::io("read", p, e))?;
        let mut v: Value = ward::spec::parse_json(&text, "process.json")?;
        // Unknown capability names warn and are skipped, as in config.json (runc's rule).
        ward::spec::capabilities::skip_unknown(&mut v);
        return ward::spec::from_value(&v, "process.json");
    }
    if a.command.is_empty() {
        return Err(ward::Error::spec(
            "exec",
            "no command given (or use --process)",
        ));
    }
    let mut v: Value = serde_json::to_value(base).map_err(|e| ward::Error::Init(e.to_string()))?;
    v["args"] = json!(a.command);
    v["terminal"] = json!(a.tty);
    if let Some(c) = &a.cwd {
        v["cwd"] = json!(c);
    }
    let mut env: Vec<String> = serde_json::from_value(v["env"].clone()).unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    v["env"] = json!(env);
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| ward::Error::spec("--user", format!("{u:?} is not uid[:gid]")))
        };
        v["user"] = json!({"uid": parse(uid)?, "gid": parse(gid)?});
    }
    if !a.additional_gids.is_empty() {
        v["user"]["additionalGids"] = json!(a.additional_gids);
    }
    for cap in &a.cap {
        let name = if cap.starts_with("CAP_") {
            cap.clone()
        } else {
            format!("CAP_{cap}")
        };
        // runc (CVE-2022-29162): never the inheritable set; ambient only where the process
        // already has an inheritable set (the kernel raises it only if X is inheritable too).
        let mut sets = vec!["bounding", "effective", "permitted"];
        if v["capabilities"]["inheritable"].is_array() {
            sets.push("ambient");
        }
        for set in sets {
            if !v["capabilities"][set].is_array() {
                v["capabilities"][set] = json!([]);
            }
            if let Some(list) = v["capabilities"][set].as_array_mut() {
                list.push(json!(name));
            }
        }
    }
    if a.no_new_privs {
        v["noNewPrivileges"] = json!(true);
    }
    if let Some(l) = &a.apparmor {
        v["apparmorProfile"] = json!(l);
    }
    if let Some(l) = &a.process_label {
        v["selinuxLabel"] = json!(l);
    }
    ward::spec::from_value(&v, "exec process")
}

#[cfg(target_os = "linux")]
fn exec(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    if a.pidfd_socket.is_some() {
        return Err(ward::Error::Unsupported("--pidfd-socket".into()));
    }
    let dir = ward::container::state::ContainerDir::open(root, &a.id)?;
    let config = dir.load_config()?;
    let base = config.process().clone().unwrap_or_default();
    let sub_cgroup = ward::policy::cgroups::exec::parse(&a.cgroup)?;
    let opts = ward::container::exec::ExecOpts {
        root: root.to_path_buf(),
        id: a.id.clone(),
        process: process(a, &base)?,
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroup,
    };
    let execed = ward::container::exec::exec(&opts)?;
    if a.detach {
        return Ok(0);
    }
    super::run::install_forwarding(execed.pid);
    match &execed.console_master {
        Some(master) => super::run::proxy_until_exit(master.as_fd(), execed.pid),
        None => super::run::wait_blocking(execed.pid),
    }
}

#[cfg(target_os = "linux")]
pub fn run(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    match exec(root, a) {
        Ok(code) => Ok(code),
        Err(e) => {
            // runc: 255 when exec itself fails (the process's own status otherwise).
            tracing::error!("{e}");
            Ok(255)
        }
    }
}
