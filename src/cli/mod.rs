//! The command line: runc's global flags and subcommands, one file per subcommand, each a thin
//! layer over the library.
//!
//! Every OS parses the same command line. On macOS and Windows, `main` runs the commands every
//! OS shares (translate, spec, features), hands the rest to the executor's front end
//! ([`host`]: `darwin` or `windows`), which refuses what it does not implement.

pub mod completion;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
#[cfg(target_os = "linux")]
pub mod gvisor;
#[cfg(target_os = "linux")]
pub mod gvisor_pod;
pub mod help;
#[cfg(target_os = "linux")]
pub mod hook;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
#[cfg(target_os = "linux")]
pub mod sandbox;
pub mod spec;
pub mod start;
pub mod state;
pub mod translate;
pub mod update;

#[cfg(target_os = "macos")]
pub mod darwin;
#[cfg(target_os = "macos")]
pub use darwin as host;
#[cfg(windows)]
pub mod windows;
#[cfg(windows)]
pub use windows as host;

/// The state root's default: where runc keeps its own on Linux (`/run` is `/var/run` on macOS).
const DEFAULT_ROOT: &str = if cfg!(target_os = "macos") {
    "/var/run/ward"
} else {
    "/run/ward"
};

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ward::logging::LogFormat;

#[derive(Parser, Debug)]
#[command(
    name = "ward",
    about = "Open Container Initiative runtime (runc-compatible)",
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Globals,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The global flags, before the subcommand (runc's `GLOBAL OPTIONS`). `Cli` derefs to them.
#[derive(clap::Args, Debug)]
pub struct Globals {
    /// Root directory for the containers' state (default: /run/ward; for a user other than
    /// root, $XDG_RUNTIME_DIR/ward).
    #[arg(long = "root", value_name = "ROOT")]
    pub root_flag: Option<PathBuf>,
    /// The state root in use: `--root`, else the default for this user (`resolve_root`).
    #[arg(skip)]
    pub root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Enable debug logging.
    #[arg(long)]
    pub debug: bool,
    /// Manage cgroups through systemd: a transient scope per container (pure cgroup v2; the
    /// caller's user instance when not root).
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (the default: rootless when not run as root; a
    /// cgroup the user may not make is then skipped).
    #[arg(long, value_name = "true|false|auto")]
    pub rootless: Option<String>,
    /// Isolation tier for containers that do not ask for one (org.ward.isolation may only
    /// raise it): native or gvisor.
    #[cfg(target_os = "linux")]
    #[arg(long = "default-isolation", value_enum, default_value = "native")]
    pub default_isolation: ward::container::tier::Tier,
    /// DNS server (IP[:PORT], default port 53) the egress proxy resolves allowed names with,
    /// instead of the host's resolv.conf and /etc/hosts. Only this flag can set it, never a
    /// bundle or an annotation.
    #[arg(long = "egress-resolver", value_name = "ADDR", value_parser = parse_resolver)]
    pub egress_resolver: Option<std::net::SocketAddr>,
    /// PEM file of CA certificates the egress proxy trusts, besides the host's store, for the
    /// TLS it makes to origins of hosts it terminates (http rules, credentials). Only this
    /// flag can add them, never a bundle or an annotation.
    #[arg(long = "egress-ca", value_name = "FILE")]
    pub egress_ca: Option<PathBuf>,
    /// A file with ward's interception policy (the JSON of process.interception) for every
    /// container this runtime creates: for engines that cannot pass the annotation (Docker
    /// before 24). A config that has its own policy is refused.
    #[arg(long = "interception", value_name = "FILE")]
    pub interception: Option<PathBuf>,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

impl std::ops::Deref for Cli {
    type Target = Globals;
    fn deref(&self) -> &Globals {
        &self.global
    }
}

impl std::ops::DerefMut for Cli {
    fn deref_mut(&mut self) -> &mut Globals {
        &mut self.global
    }
}

impl Globals {
    /// Fills `root`: `--root`, else /run/ward, or $XDG_RUNTIME_DIR/ward for a user other than
    /// root. The error (no XDG_RUNTIME_DIR) matters only to commands that use the state root.
    pub fn resolve_root(&mut self) -> ward::Result<()> {
        self.root = match &self.root_flag {
            Some(r) => r.clone(),
            #[cfg(target_os = "linux")]
            None => ward::container::rootless::default_root(DEFAULT_ROOT)?,
            #[cfg(not(target_os = "linux"))]
            None => PathBuf::from(DEFAULT_ROOT),
        };
        Ok(())
    }
}

/// `--egress-resolver`: an IP address with an optional port (`[v6]:port` for IPv6 with one).
fn parse_resolver(text: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = text.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    text.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| format!("{text:?} is not an IP address with an optional :port"))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (its init waits for `start`).
    Create(create::Args),
    /// Start a created container.
    Start(start::Args),
    /// Create and start a container.
    Run(run::Args),
    /// Output the state of a container.
    State(state::Args),
    /// List containers.
    #[command(alias = "ls")]
    List(list::Args),
    /// Send a signal to the container's init.
    Kill(kill::Args),
    /// Delete a container.
    Delete(delete::Args),
    /// Write a default config.json.
    Spec(spec::Args),
    /// Show what this runtime and kernel support (runtime-spec Features).
    Features(features::Args),
    /// Run a new process inside a container.
    Exec(exec::Args),
    /// Freeze every process of the container.
    Pause(pause::Args),
    /// Thaw a paused container.
    Resume(pause::Args),
    /// Change a running container's resource limits.
    Update(update::Args),
    /// List the container's processes.
    Ps(ps::Args),
    /// Stream stats and OOM events of a container.
    Events(events::Args),
    /// Print the macOS (seatbelt) profile or Windows (hcs) documents for a bundle.
    Translate(translate::Args),
    /// Print the version.
    Version,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(completion::CompletionArgs),
    /// Write the man pages (ward.8, ward-<command>.8) into a directory.
    #[command(hide = true)]
    Man(completion::ManArgs),
    /// Show a list of commands or help for one command.
    #[command(visible_alias = "h")]
    Help(help::HelpArgs),
    /// Run a command on this host's files, as you, behind ward's walls (no bundle, no root).
    #[cfg(target_os = "linux")]
    Sandbox(sandbox::Args),
    /// OCI hooks that give runc and crun containers ward's walls (see hooks/README.md).
    #[cfg(target_os = "linux")]
    #[command(subcommand)]
    Hook(hook::Hook),
    /// Internal: the stand-in init of a container in a gVisor pod (started by create).
    #[cfg(target_os = "linux")]
    #[command(name = "gvisor-keeper", hide = true)]
    GvisorKeeper(gvisor_pod::KeeperArgs),
}

/// Flags shared by `create` and `run`.
#[derive(clap::Args, Debug)]
pub struct CreateFlags {
    /// Path to the bundle (default: current directory).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// AF_UNIX socket to send the pty master to.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the init's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Pass N extra fds (3 .. 3+N-1) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Socket to send a pidfd of init to (not supported yet).
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Container id.
    pub id: String,
}

impl CreateFlags {
    #[cfg(target_os = "linux")]
    pub fn opts(
        &self,
        root: &std::path::Path,
        foreground: bool,
        global: &Cli,
    ) -> ward::Result<ward::container::create::CreateOpts> {
        if self.pidfd_socket.is_some() {
            return Err(ward::Error::Unsupported("--pidfd-socket".into()));
        }
        Ok(ward::container::create::CreateOpts {
            root: root.to_path_buf(),
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            preserve_fds: self.preserve_fds,
            no_pivot: self.no_pivot,
            foreground,
            egress_resolver: global.egress_resolver,
            egress_ca: global.egress_ca.clone(),
            interception: global.interception.clone(),
            config: None,
            rootless: ward::container::rootless::decide(global.rootless.as_deref())?,
            systemd_cgroup: global.systemd_cgroup,
        })
    }
}

#[cfg(not(target_os = "linux"))]
impl Command {
    /// The subcommand's name, for "not supported on <os>".
    pub fn name(&self) -> &'static str {
        match self {
            Command::Create(_) => "create",
            Command::Start(_) => "start",
            Command::Run(_) => "run",
            Command::State(_) => "state",
            Command::List(_) => "list",
            Command::Kill(_) => "kill",
            Command::Delete(_) => "delete",
            Command::Spec(_) => "spec",
            Command::Features(_) => "features",
            Command::Exec(_) => "exec",
            Command::Pause(_) => "pause",
            Command::Resume(_) => "resume",
            Command::Update(_) => "update",
            Command::Ps(_) => "ps",
            Command::Events(_) => "events",
            Command::Translate(_) => "translate",
            Command::Version => "version",
            Command::Completion(_) => "completion",
            Command::Man(_) => "man",
            Command::Help(_) => "help",
        }
    }
}

/// `ward --version`, in runc's shape (`docker info` parses `<name> version X` and `commit: Y`).
pub fn version_text() -> String {
    format!(
        "ward version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("WARD_COMMIT").unwrap_or("unknown"),
        ward::OCI_VERSION
    )
}
