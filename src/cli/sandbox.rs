//! `ward sandbox [--settings FILE] [...] [--] CMD [ARGS...]`: CMD on the host's own view, as
//! the calling user, behind ward's walls (`ward::container::sandbox`). This front end owns
//! what a terminal user sees: the terminal, signals, the exit status, the warnings and the
//! violations summary.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::PathBuf;

use ward::container::sandbox::{self, Caller, Weaker};
use ward::spec::sandbox::settings::{self, Settings};

#[derive(clap::Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Settings file: srt's (network.allowedDomains, filesystem.allowWrite, ...), or ward's own
    /// policy (the JSON of process.interception: network with http rules, credentials).
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
    /// Allow egress to this domain (`*.example.com` for its subdomains); repeatable.
    #[arg(long = "allow-domain", value_name = "DOMAIN")]
    pub allow_domain: Vec<String>,
    /// Allow writes beneath this path; repeatable (default: the current directory).
    #[arg(long = "allow-write", value_name = "PATH")]
    pub allow_write: Vec<PathBuf>,
    /// Make this path unreadable; repeatable.
    #[arg(long = "deny-read", value_name = "PATH")]
    pub deny_read: Vec<PathBuf>,
    /// Append the violations (one JSON object a line) to this file.
    #[arg(long = "log", value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// No warnings and no violations summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Go on without a wall this kernel lacks: landlock or seccomp; repeatable.
    #[arg(long = "allow-weaker", value_name = "WALL", value_parser = ["landlock", "seccomp"])]
    pub allow_weaker: Vec<String>,
    /// The command and its arguments.
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The state root: `--root`, else the default for this user; without XDG_RUNTIME_DIR (su,
/// cron, CI) a directory of the user's own in /tmp, `ward-<uid>`, which must be theirs and
/// private (a sandbox is often run where no login session made a runtime directory).
pub fn state_root(cli: &super::Cli) -> ward::Result<PathBuf> {
    if cli.root_flag.is_some() || std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return ward::container::rootless::default_root("/run/ward")
            .map(|d| cli.root_flag.clone().unwrap_or(d));
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from("/run/ward"));
    }
    let uid = nix::unistd::geteuid().as_raw();
    let dir = PathBuf::from(format!("/tmp/ward-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(ward::Error::io("mkdir", &dir, e)),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| ward::Error::io("stat", &dir, e))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(ward::Error::Host(format!(
            "{} is not a private directory of uid {uid}: set XDG_RUNTIME_DIR or pass --root DIR",
            dir.display()
        )));
    }
    Ok(dir)
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .or_else(|| {
            ward::sys::passwd::by_uid(nix::unistd::geteuid().as_raw())
                .map(|e| PathBuf::from(e.home))
        })
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// ward's own policy (the JSON of `process.interception`: network with http rules,
/// credentials) rather than srt's settings: it has no `filesystem` and reads as one.
fn ward_policy(text: &str, file: &std::path::Path) -> ward::Result<Option<serde_json::Value>> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Ok(None);
    };
    let Some(obj) = v.as_object() else {
        return Ok(None);
    };
    let ours = ["network", "observe", "credentials"];
    if obj.contains_key("filesystem") || !obj.keys().all(|k| ours.contains(&k.as_str())) {
        return Ok(None);
    }
    // srt's network block is told apart by its keys (ward's has `default`, `allow`, `http`...).
    let srt_only = [
        "allowUnixSockets",
        "allowAllUnixSockets",
        "allowLocalBinding",
        "httpProxyPort",
        "socksProxyPort",
    ];
    if v["network"]
        .as_object()
        .is_some_and(|n| n.keys().any(|k| srt_only.contains(&k.as_str())))
    {
        return Ok(None);
    }
    let config = serde_json::json!({"process": {"interception": v.clone()}});
    ward::spec::interception::from_config(&config).map_err(|e| {
        ward::Error::spec(
            format!("{}", file.display()),
            format!("neither srt's settings (no `filesystem`) nor ward's policy: {e}"),
        )
    })?;
    Ok(Some(v))
}

/// The settings, and ward's own policy when the file is one.
fn load_settings(
    a: &Args,
    cwd: &std::path::Path,
) -> ward::Result<(Settings, Option<serde_json::Value>)> {
    let mut policy = None;
    let mut s = match &a.settings {
        Some(file) => {
            let text =
                std::fs::read_to_string(file).map_err(|e| ward::Error::io("read", file, e))?;
            policy = ward_policy(&text, file)?;
            match policy {
                Some(_) => Settings::defaults(&home(), cwd),
                None => settings::parse(&text, file, &home(), cwd)?,
            }
        }
        None => Settings::defaults(&home(), cwd),
    };
    // Without srt's settings (whose file always names allowWrite), the current directory is
    // the writable place unless the command line names others.
    let srt = a.settings.is_some() && policy.is_none();
    let mut allow_write = a.allow_write.clone();
    if !srt && allow_write.is_empty() {
        allow_write.push(cwd.to_path_buf());
    }
    s.merge_cli(&a.allow_domain, &allow_write, &a.deny_read);
    Ok((s, policy))
}

pub fn run(root: &std::path::Path, a: &Args, global: &super::Cli) -> ward::Result<i32> {
    let cwd = std::env::current_dir().map_err(|e| ward::Error::io("getcwd", ".", e))?;
    let (settings, policy) = load_settings(a, &cwd)?;
    let weaker = Weaker {
        landlock: a.allow_weaker.iter().any(|w| w == "landlock"),
        seccomp: a.allow_weaker.iter().any(|w| w == "seccomp"),
    };
    let caller = Caller {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        cwd,
        env: std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect(),
        args: a.command.clone(),
        terminal: std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
    };
    let prepared = sandbox::prepare(sandbox::Options {
        root: root.to_path_buf(),
        settings,
        policy,
        caller,
        weaker,
        egress_resolver: global.egress_resolver,
        egress_ca: global.egress_ca.clone(),
        rootless: ward::container::rootless::decide(global.rootless.as_deref())?,
    })?;
    if !a.quiet {
        for w in &prepared.warnings {
            eprintln!("ward sandbox: {w}");
        }
    }
    let id = prepared.opts.id.clone();
    let created = ward::container::create::create(&prepared.opts)?;
    if let Err(e) = ward::container::start::start(root, &id) {
        let _ = ward::container::delete::delete(root, &id, true);
        return Err(e);
    }
    let pid = created.stored.pid;
    super::run::install_forwarding_sent_only(pid);
    let waited = match &created.console_master {
        Some(master) => {
            use std::os::fd::AsFd;
            super::run::proxy_until_exit(master.as_fd(), pid)
        }
        None => super::run::wait_blocking(pid),
    };
    let summary = sandbox::violations(root, &id);
    let deleted = ward::container::delete::delete(root, &id, true);
    drop(prepared.work);
    let status = waited?;
    deleted?;
    report(a, &summary)?;
    Ok(status)
}

fn report(a: &Args, s: &sandbox::Summary) -> ward::Result<()> {
    if let Some(path) = &a.log {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| ward::Error::io("open", path, e))?;
        for line in &s.lines {
            writeln!(f, "{line}").map_err(|e| ward::Error::io("write", path, e))?;
        }
    }
    if a.quiet || s.denied.is_empty() {
        return Ok(());
    }
    let total: usize = s.denied.iter().map(|(_, n)| n).sum();
    let list: Vec<String> = s
        .denied
        .iter()
        .take(8)
        .map(|(name, n)| {
            if *n > 1 {
                format!("{name} ({n}x)")
            } else {
                name.clone()
            }
        })
        .collect();
    let more = if s.denied.len() > 8 { ", ..." } else { "" };
    let hint = match &a.log {
        Some(p) => format!("; details in {}", p.display()),
        None => "; --log FILE keeps the details".into(),
    };
    eprintln!(
        "ward sandbox: {total} refused: {}{more}{hint}",
        list.join(", ")
    );
    Ok(())
}
