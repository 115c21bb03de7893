//! srt's settings file (`srt --settings FILE`, default `~/.srt-settings.json`), read the way
//! srt 0.0.78 reads it on Linux, for `ward sandbox --settings FILE`:
//!
//! ```json
//! {
//!   "network": {"allowedDomains": ["github.com", "*.npmjs.org"], "deniedDomains": [],
//!               "allowUnixSockets": [], "allowAllUnixSockets": false, "allowLocalBinding": false},
//!   "filesystem": {"denyRead": ["~/.ssh"], "allowRead": [], "allowWrite": ["."],
//!                  "denyWrite": [".env"]},
//!   "credentials": {"envVars": [{"name": "GH_TOKEN", "mode": "mask"}]}
//! }
//! ```
//!
//! What srt requires, ward requires: `network` with `allowedDomains` and `deniedDomains`,
//! `filesystem` with `denyRead`, `allowWrite` and `denyWrite` (`allowRead` is optional). A
//! missing one is an error (srt refuses the file rather than run without its rules), as is an
//! empty file or a value of the wrong type; every error names the file and the field
//! (`settings.json: network.allowedDomains[2]`). srt ignores keys it does not know; ward does
//! too, with a warning. srt's options that configure its own machinery or macOS are accepted
//! and ignored with a warning when they would change something.
//!
//! Paths, as srt's Linux back end resolves them when the command starts:
//! - `~` and `~/…` are the home directory (`~user` is not expanded: it is a relative name);
//!   any other relative path is below the current directory (`.` and `..` folded); `//` and
//!   `/./` collapse; a trailing `/` goes; a trailing `/**` means the directory itself.
//! - An existing path is given where it really is (symbolic links resolved), which is where a
//!   mount must land. Exception, as in srt: an `allowWrite` path that is a link leading
//!   anywhere but below itself is skipped (a bind follows the link and would open its target).
//! - `denyRead`/`allowRead` globs (`*`, `**`, `?`, `[…]`) are expanded now against the
//!   filesystem (`glob`), so a file created later is not covered. A pattern whose first
//!   component has a wildcard (`/**/*.pem`) has nothing to start from and is skipped with a
//!   warning, as srt does. A `denyRead` pattern ending in `/**` yields the matching
//!   directories that hold something (one mask each) rather than every file in them.
//! - `allowWrite`/`denyWrite` take literal paths: any other glob is skipped with a warning.
//! - Paths that do not exist: `allowWrite` entries are skipped with a warning, `denyRead` and
//!   `allowRead` ones silently (nothing to hide or reopen), `denyWrite` ones are KEPT: srt
//!   stops them being created under an allowed tree, so the runtime must too.
//! - A `denyRead` entry that cannot be inspected (a parent is not searchable) denies the
//!   nearest directory above it that can be, with a warning; a directory a glob cannot list
//!   is denied whole. `denyRead: ["/"]` is carried as `/`: srt denies each child of `/`
//!   (except /proc, /dev, /sys) and so should the runtime.
//!
//! Not done here, but srt does it and the runtime should know: srt keeps `/tmp/claude`,
//! `~/.npm/_logs` and `~/.claude/debug` writable, and always write-protects `.bashrc`,
//! `.gitconfig`, `.git/hooks`, `.git/config` (unless `allowGitConfig`), `.vscode`, `.idea`,
//! `.mcp.json`, `.claude/commands`, `.claude/agents` (and a few more) under allowed trees.
//! srt ignores `allowUnixSockets` on Linux (its seccomp filter blocks every new unix socket
//! unless `allowAllUnixSockets`); ward carries the list for its own filter.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::glob;
use crate::error::{Error, Result};
use crate::spec::{credentials, domains};

/// The file srt reads when no `--settings` is given, under the home directory.
pub const DEFAULT_FILE: &str = ".srt-settings.json";

/// A parsed settings file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    pub network: NetworkSettings,
    pub filesystem: FsSettings,
    /// srt's `credentials` block as written, except that each `files[].path` has its `~` or
    /// relative spelling expanded (credentials::compile wants absolute paths); checked with
    /// `credentials::Credentials` (shape) and, when there are allowedDomains,
    /// `credentials::compile`.
    pub credentials: Option<Value>,
    /// Human-readable warnings (unknown keys: "settings: unknown key network.fooBar ignored",
    /// unsupported-but-harmless srt options, skipped paths).
    pub warnings: Vec<String>,
    /// What `~` and relative paths were expanded against (`merge_cli` uses them too).
    pub home: PathBuf,
    pub cwd: PathBuf,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkSettings {
    /// As written (validated with crate::spec::domains: `example.com`, `*.example.com`,
    /// `host:port`, `[::1]`).
    pub allowed_domains: Vec<String>,
    pub denied_domains: Vec<String>,
    /// `~`/relative expanded. srt ignores this list on Linux.
    pub allow_unix_sockets: Vec<PathBuf>,
    pub allow_all_unix_sockets: bool,
    pub allow_local_binding: bool,
    /// `deniedDomainReasons`: keyed by a deniedDomains entry as written.
    pub denied_domain_reasons: BTreeMap<String, String>,
    /// `deniedResolvedAddresses`: IP addresses or CIDR ranges an allowed name must not resolve
    /// to (validated, as written).
    pub denied_resolved_addresses: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FsSettings {
    /// Absolute, existing, where they really are; globs expanded.
    pub deny_read: Vec<PathBuf>,
    /// Absolute, existing, where they really are; globs expanded.
    pub allow_read: Vec<PathBuf>,
    /// Absolute, existing, where they really are.
    pub allow_write: Vec<PathBuf>,
    /// Absolute; may not exist (the runtime keeps it from being created).
    pub deny_write: Vec<PathBuf>,
    /// `allowGitConfig`: `.git/config` stays writable (srt protects it by default).
    pub allow_git_config: bool,
}

impl Settings {
    /// srt's built-in defaults (no settings file): nothing allowed, nothing denied.
    pub fn defaults(home: &Path, cwd: &Path) -> Settings {
        Settings {
            home: home.to_path_buf(),
            cwd: cwd.to_path_buf(),
            ..Default::default()
        }
    }

    /// Adds the command line's `--allow-domain`, `--allow-write` and `--deny-read` (srt has
    /// no such flags, so they append, duplicates dropped). Paths are names, not patterns (the
    /// shell expands globs), resolved as the file's are; a missing one is skipped with a
    /// warning.
    pub fn merge_cli(
        &mut self,
        allow_domains: &[String],
        allow_write: &[PathBuf],
        deny_read: &[PathBuf],
    ) {
        for d in allow_domains {
            if !self.network.allowed_domains.contains(d) {
                self.network.allowed_domains.push(d.clone());
            }
        }
        let mut cx = Cx::new(Path::new("command line"), &self.home, &self.cwd);
        for p in allow_write {
            let field = format!("--allow-write {}", p.display());
            if let Some(p) = cx
                .cli_path(p)
                .and_then(|p| cx.allow_write_one(&p, &field, true))
            {
                push_unique(&mut self.filesystem.allow_write, p);
            }
        }
        for p in deny_read {
            let field = format!("--deny-read {}", p.display());
            let Some(text) = cx.cli_path(p) else { continue };
            match cx.deny_read_one(&text, &field) {
                Some(p) => push_unique(&mut self.filesystem.deny_read, p),
                None => cx.warn(format!(
                    "settings: {field}: does not exist; nothing to deny"
                )),
            }
        }
        self.warnings.append(&mut cx.warnings);
    }
}

/// Parses srt's settings `text`. `origin` names the file in errors; `home` expands `~`,
/// `cwd` anchors relative paths (as srt does with its own). Reads the filesystem (links,
/// existence, glob expansion) but never writes it.
pub fn parse(text: &str, origin: &Path, home: &Path, cwd: &Path) -> Result<Settings> {
    let mut cx = Cx::new(origin, home, cwd);
    if text.trim().is_empty() {
        return Err(Error::spec(
            &cx.at,
            "the settings file is empty (srt refuses it too: running with the defaults would \
             drop the rules it held)",
        ));
    }
    let root: Value = serde_json::from_str(text)
        .map_err(|e| Error::spec(&cx.at, format!("not valid JSON: {e}")))?;
    let root = cx.object(&root, "")?;
    cx.unknown_keys(root, "", ROOT_KEYS);
    cx.ignored(root);

    let net = cx.object(cx.required(root, "network", "")?, "network")?;
    cx.unknown_keys(net, "network", NETWORK_KEYS);
    let network = cx.network(net)?;

    let fs = cx.object(cx.required(root, "filesystem", "")?, "filesystem")?;
    cx.unknown_keys(fs, "filesystem", FS_KEYS);
    let filesystem = cx.filesystem(fs)?;

    let credentials = match root.get("credentials") {
        None | Some(Value::Null) => None,
        Some(v) => Some(cx.credentials(v, &network)?),
    };
    Ok(Settings {
        network,
        filesystem,
        credentials,
        warnings: cx.warnings,
        home: home.to_path_buf(),
        cwd: cwd.to_path_buf(),
    })
}

const ROOT_KEYS: &[&str] = &[
    "network",
    "filesystem",
    "credentials",
    "ignoreViolations",
    "enableWeakerNestedSandbox",
    "enableWeakerNetworkIsolation",
    "allowAppleEvents",
    "ripgrep",
    "mandatoryDenySearchDepth",
    "allowPty",
    "seccomp",
    "bwrapPath",
    "socatPath",
    "javaAgentJarPath",
    "windows",
    "git",
];

const NETWORK_KEYS: &[&str] = &[
    "allowedDomains",
    "deniedDomains",
    "deniedDomainReasons",
    "strictAllowlist",
    "deniedResolvedAddresses",
    "allowUnixSockets",
    "allowAllUnixSockets",
    "allowLocalBinding",
    "allowMachLookup",
    "httpProxyPort",
    "socksProxyPort",
    "mitmProxy",
    "filterRequest",
    "tlsTerminate",
    "parentProxy",
];

const FS_KEYS: &[&str] = &[
    "disabled",
    "denyRead",
    "allowRead",
    "allowWrite",
    "denyWrite",
    "allowGitConfig",
];

/// srt options ward accepts and does not apply, with why; warned about when set to anything
/// but their default (`false`, empty).
const IGNORED: &[(&str, &str)] = &[
    ("ignoreViolations", "ward logs every violation"),
    (
        "enableWeakerNestedSandbox",
        "ward keeps every wall (name one to give up with --allow-weaker)",
    ),
    ("enableWeakerNetworkIsolation", "macOS only in srt"),
    ("allowAppleEvents", "macOS only in srt"),
    (
        "allowPty",
        "macOS only in srt (ward passes the terminal through)",
    ),
    ("ripgrep", "configures srt's own helpers"),
    ("mandatoryDenySearchDepth", "configures srt's own helpers"),
    ("seccomp", "configures srt's own helpers"),
    ("bwrapPath", "configures srt's own helpers"),
    ("socatPath", "configures srt's own helpers"),
    ("javaAgentJarPath", "configures srt's own helpers"),
    ("windows", "Windows only in srt"),
    (
        "git",
        "ward runs the command as the calling user, so git needs no safe.directory",
    ),
    ("network.allowMachLookup", "macOS only in srt"),
    (
        "network.strictAllowlist",
        "ward never asks: what allowedDomains does not allow is denied",
    ),
    (
        "network.httpProxyPort",
        "ward's own proxy filters every connection",
    ),
    (
        "network.socksProxyPort",
        "ward's own proxy filters every connection",
    ),
    (
        "network.mitmProxy",
        "ward's own proxy filters every connection",
    ),
    (
        "network.filterRequest",
        "a JavaScript callback in srt's library API",
    ),
    (
        "network.tlsTerminate",
        "ward terminates TLS itself where http rules or credentials need it",
    ),
    (
        "network.parentProxy",
        "ward's proxy dials destinations directly",
    ),
    (
        "filesystem.disabled",
        "ward keeps the filesystem rules in force",
    ),
];

/// Which path list an entry is in (srt treats each differently on Linux).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    DenyRead,
    AllowRead,
    AllowWrite,
    DenyWrite,
}

/// Where a symbolic link leads, judged as srt does.
enum Link {
    /// Not a link, or not there: the spelling stands.
    Same,
    /// A link to somewhere else; the real path.
    Elsewhere(String),
}

struct Cx {
    at: String,
    home: String,
    cwd: String,
    warnings: Vec<String>,
}

impl Cx {
    fn new(origin: &Path, home: &Path, cwd: &Path) -> Cx {
        Cx {
            at: origin.display().to_string(),
            home: home.to_string_lossy().into_owned(),
            cwd: cwd.to_string_lossy().into_owned(),
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    /// The field's name in errors: `file: network.allowedDomains[2]`.
    fn field(&self, path: &str) -> String {
        if path.is_empty() {
            self.at.clone()
        } else {
            format!("{}: {path}", self.at)
        }
    }

    fn err(&self, path: &str, msg: impl Into<String>) -> Error {
        Error::spec(self.field(path), msg)
    }

    fn object<'v>(&self, v: &'v Value, path: &str) -> Result<&'v Map<String, Value>> {
        v.as_object()
            .ok_or_else(|| self.err(path, format!("expected an object, found {}", kind(v))))
    }

    fn required<'v>(
        &self,
        m: &'v Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Result<&'v Value> {
        m.get(key).ok_or_else(|| {
            self.err(
                &join(parent, key),
                "required (srt refuses a settings file without it; write [] or {} for none)",
            )
        })
    }

    fn unknown_keys(&mut self, m: &Map<String, Value>, parent: &str, known: &[&str]) {
        for k in m.keys().filter(|k| !known.contains(&k.as_str())) {
            let w = format!("settings: unknown key {} ignored", join(parent, k));
            self.warn(w);
        }
    }

    /// Warns about each srt option ward does not apply that is set to something that would
    /// matter (not `false`, `null`, `[]`, `{}`).
    fn ignored(&mut self, root: &Map<String, Value>) {
        for (key, why) in IGNORED {
            let v = match key.split_once('.') {
                None => root.get(*key),
                Some((a, b)) => root.get(a).and_then(|s| s.get(b)),
            };
            let set = match v {
                None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                Some(Value::Array(a)) => !a.is_empty(),
                Some(Value::Object(o)) => !o.is_empty(),
                Some(_) => true,
            };
            // strictAllowlist: true is what ward does anyway.
            if set && !(*key == "network.strictAllowlist" && v == Some(&Value::Bool(true))) {
                self.warn(format!("settings: {key} ignored: {why}"));
            }
        }
    }

    fn bool(&self, m: &Map<String, Value>, key: &str, parent: &str) -> Result<bool> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(
                &join(parent, key),
                format!("expected true or false, found {}", kind(v)),
            )),
        }
    }

    /// A list of strings (`None` when absent or null and not `required`).
    fn strings(
        &self,
        m: &Map<String, Value>,
        key: &str,
        parent: &str,
        required: bool,
    ) -> Result<Vec<String>> {
        let path = join(parent, key);
        let v = match m.get(key) {
            None | Some(Value::Null) if required => {
                return Err(self.err(
                    &path,
                    "required (srt refuses a settings file without it; write [] for none)",
                ))
            }
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(v) => v,
        };
        let a = v.as_array().ok_or_else(|| {
            self.err(
                &path,
                format!("expected an array of strings, found {}", kind(v)),
            )
        })?;
        a.iter()
            .enumerate()
            .map(|(i, e)| {
                e.as_str().map(str::to_owned).ok_or_else(|| {
                    self.err(
                        &format!("{path}[{i}]"),
                        format!("expected a string, found {}", kind(e)),
                    )
                })
            })
            .collect()
    }

    fn network(&mut self, m: &Map<String, Value>) -> Result<NetworkSettings> {
        let p = "network";
        let allowed_domains = self.strings(m, "allowedDomains", p, true)?;
        let denied_domains = self.strings(m, "deniedDomains", p, true)?;
        let mut denied_domain_reasons = BTreeMap::new();
        match m.get("deniedDomainReasons") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => {
                for (k, v) in o {
                    let s = v.as_str().ok_or_else(|| {
                        self.err(
                            &format!("network.deniedDomainReasons[{k:?}]"),
                            format!("expected a string, found {}", kind(v)),
                        )
                    })?;
                    denied_domain_reasons.insert(k.clone(), s.to_owned());
                }
            }
            Some(v) => {
                return Err(self.err(
                    "network.deniedDomainReasons",
                    format!("expected an object, found {}", kind(v)),
                ))
            }
        }
        // The patterns (and reasons) as the proxy will read them: a bad one fails now, named.
        domains::compile(
            domains::Fields {
                allowed: Some(&allowed_domains),
                denied: Some(&denied_domains),
                reasons: &denied_domain_reasons,
                proxy_env: false,
            },
            &self.field("network"),
        )?;
        let denied_resolved_addresses = self.strings(m, "deniedResolvedAddresses", p, false)?;
        for (i, a) in denied_resolved_addresses.iter().enumerate() {
            check_range(a).map_err(|why| {
                self.err(
                    &format!("network.deniedResolvedAddresses[{i}]"),
                    format!("{a:?}: {why}"),
                )
            })?;
        }
        let mut allow_unix_sockets = Vec::new();
        for (i, s) in self
            .strings(m, "allowUnixSockets", p, false)?
            .iter()
            .enumerate()
        {
            let field = format!("network.allowUnixSockets[{i}]");
            if s.is_empty() {
                return Err(self.err(&field, "Path cannot be empty"));
            }
            match self.literal(s) {
                Some(l) => allow_unix_sockets.push(PathBuf::from(l)),
                None => self.warn(format!(
                    "settings: {field}: {s:?} names an empty home directory; skipped"
                )),
            }
        }
        Ok(NetworkSettings {
            allowed_domains,
            denied_domains,
            allow_unix_sockets,
            allow_all_unix_sockets: self.bool(m, "allowAllUnixSockets", p)?,
            allow_local_binding: self.bool(m, "allowLocalBinding", p)?,
            denied_domain_reasons,
            denied_resolved_addresses,
        })
    }

    fn filesystem(&mut self, m: &Map<String, Value>) -> Result<FsSettings> {
        let p = "filesystem";
        self.bool(m, "disabled", p)?;
        let raw = |cx: &Cx, key: &str, required: bool| -> Result<Vec<String>> {
            let v = cx.strings(m, key, p, required)?;
            for (i, s) in v.iter().enumerate() {
                if s.is_empty() {
                    return Err(cx.err(&format!("filesystem.{key}[{i}]"), "Path cannot be empty"));
                }
                if s.contains('\0') {
                    return Err(cx.err(&format!("filesystem.{key}[{i}]"), "contains a NUL byte"));
                }
            }
            Ok(v)
        };
        let deny_read_raw = raw(self, "denyRead", true)?;
        let allow_read_raw = raw(self, "allowRead", false)?;
        let allow_write_raw = raw(self, "allowWrite", true)?;
        let deny_write_raw = raw(self, "denyWrite", true)?;
        for (key, list) in [("denyRead", &deny_read_raw), ("denyWrite", &deny_write_raw)] {
            for (i, s) in list.iter().enumerate() {
                if let Some(fixed) = inert_deny_glob(s) {
                    return Err(self.err(
                        &format!("filesystem.{key}[{i}]"),
                        format!(
                            "the deny glob {s:?} ends in a separator, so it matches no path: \
                             write {fixed:?}, or add a \"**\" segment to match at any depth"
                        ),
                    ));
                }
            }
        }
        // allowRead and allowWrite first: a denyRead glob's expansion collapses against them.
        let allow_read = self.paths(&allow_read_raw, Kind::AllowRead, &[])?;
        let allow_write = self.paths(&allow_write_raw, Kind::AllowWrite, &[])?;
        let reopened: Vec<PathBuf> = allow_read.iter().chain(&allow_write).cloned().collect();
        let deny_read = self.paths(&deny_read_raw, Kind::DenyRead, &reopened)?;
        let deny_write = self.paths(&deny_write_raw, Kind::DenyWrite, &[])?;
        Ok(FsSettings {
            deny_read,
            allow_read,
            allow_write,
            deny_write,
            allow_git_config: self.bool(m, "allowGitConfig", p)?,
        })
    }

    fn paths(&mut self, raw: &[String], k: Kind, reopened: &[PathBuf]) -> Result<Vec<PathBuf>> {
        let key = match k {
            Kind::DenyRead => "denyRead",
            Kind::AllowRead => "allowRead",
            Kind::AllowWrite => "allowWrite",
            Kind::DenyWrite => "denyWrite",
        };
        let mut out = Vec::new();
        for (i, entry) in raw.iter().enumerate() {
            let field = format!("filesystem.{key}[{i}]");
            let stripped = strip_globstar(entry);
            if glob::has_glob(stripped) {
                match k {
                    Kind::AllowWrite | Kind::DenyWrite => self.warn(format!(
                        "settings: {field}: {entry:?} is a glob; srt skips glob write paths on \
                         Linux, and so does ward"
                    )),
                    Kind::DenyRead | Kind::AllowRead => {
                        for p in self.expand_glob(entry, &field, k, reopened)? {
                            push_unique(&mut out, p);
                        }
                    }
                }
                continue;
            }
            let Some(path) = self.literal(stripped) else {
                self.warn(format!(
                    "settings: {field}: {entry:?} names an empty home directory; skipped"
                ));
                continue;
            };
            let found = match k {
                Kind::AllowWrite => self.allow_write_one(&path, &field, false),
                Kind::DenyRead => self.deny_read_one(&path, &field),
                Kind::AllowRead => std::fs::canonicalize(&path).ok(),
                Kind::DenyWrite => {
                    Some(std::fs::canonicalize(&path).unwrap_or_else(|_| PathBuf::from(&path)))
                }
            };
            if let Some(p) = found {
                push_unique(&mut out, p);
            }
        }
        Ok(out)
    }

    /// One allowWrite path: where it really is; `None` (with a warning) when it is missing or
    /// a link leading anywhere but below itself (srt skips both), or under /dev (the sandbox's
    /// own /dev serves those).
    fn allow_write_one(&mut self, path: &str, field: &str, cli: bool) -> Option<PathBuf> {
        if path.starts_with("/dev/") {
            return None;
        }
        let real = match std::fs::canonicalize(path) {
            Ok(r) => r,
            Err(_) => {
                let src = if cli { "" } else { " (srt skips it too)" };
                self.warn(format!(
                    "settings: {field}: {path} does not exist; not writable{src}"
                ));
                return None;
            }
        };
        if let Link::Elsewhere(to) = link_of(path, &real) {
            if !to.starts_with(&format!("{path}/")) {
                self.warn(format!(
                    "settings: {field}: {path} is a symbolic link to {to}; skipped (a write \
                     grant does not follow links out of the tree it names, as in srt)"
                ));
                return None;
            }
        }
        Some(real)
    }

    /// One denyRead path: where it really is; `None` when there is nothing there. A path that
    /// cannot be inspected denies the nearest directory above it that can be.
    fn deny_read_one(&mut self, path: &str, field: &str) -> Option<PathBuf> {
        let mut candidate = Path::new(path);
        loop {
            match std::fs::metadata(candidate) {
                Ok(_) => break,
                Err(e) if glob::is_absence(&e) && candidate == Path::new(path) => return None,
                Err(_) => match candidate.parent() {
                    Some(up) if up != Path::new("/") => candidate = up,
                    _ => {
                        self.warn(format!(
                            "settings: {field}: {path} cannot be inspected and nothing above it \
                             but / can; not denied"
                        ));
                        return None;
                    }
                },
            }
        }
        if candidate != Path::new(path) {
            self.warn(format!(
                "settings: {field}: {path} cannot be inspected; denying {} instead (as srt does)",
                candidate.display()
            ));
        }
        let real = std::fs::canonicalize(candidate).unwrap_or_else(|_| candidate.to_path_buf());
        if real == Path::new("/") && path != "/" {
            // A link to the root: the directory holding the link stands in (srt).
            let holder = candidate
                .parent()
                .map(|h| std::fs::canonicalize(h).unwrap_or_else(|_| h.to_path_buf()));
            return match holder {
                Some(h) if h != Path::new("/") => Some(h),
                _ => {
                    self.warn(format!("settings: {field}: {path} leads to /; not denied"));
                    None
                }
            };
        }
        Some(real)
    }

    /// A denyRead or allowRead glob, expanded against the filesystem now.
    fn expand_glob(
        &mut self,
        entry: &str,
        field: &str,
        k: Kind,
        reopened: &[PathBuf],
    ) -> Result<Vec<PathBuf>> {
        let mut pattern = self.expand(entry);
        let Some(base) = glob::base_dir(&pattern).map(str::to_owned) else {
            self.warn(format!(
                "settings: {field}: the glob {entry:?} has no literal directory to start from; \
                 skipped (srt skips it on Linux too): name a directory before the first wildcard"
            ));
            return Ok(Vec::new());
        };
        let mut base = base;
        if let Ok(real) = std::fs::canonicalize(&base) {
            if let Link::Elsewhere(to) = link_of(&base, &real) {
                if to.starts_with(&format!("{base}/")) {
                    pattern = format!("{to}{}", &pattern[base.len()..]);
                    base = to;
                }
            }
        }
        let dir_form = (k == Kind::DenyRead)
            .then(|| pattern.strip_suffix("/**"))
            .flatten()
            .map(str::to_owned);
        let walk = glob::walk(&base, &pattern, dir_form.as_deref())
            .map_err(|why| self.err(field, format!("{entry:?}: {why}")))?;
        if k == Kind::AllowRead {
            return Ok(walk.matches);
        }
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let mut found: Vec<PathBuf> = walk.matches.iter().map(|p| real(p)).collect();
        for (dir, holds) in &walk.dir_matches {
            let is_link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
            if *holds || is_link {
                found.push(real(dir));
            }
        }
        found.extend(walk.unlisted.iter().map(|p| real(p)));
        found.retain(|p| p != Path::new("/"));
        Ok(collapse(found, reopened))
    }

    /// A literal spelling: `~`, relative, `//`, `/./`, trailing `/` and `/.` resolved as srt
    /// does (links are left to the caller). `None` when `~` meets an empty home.
    fn literal(&self, p: &str) -> Option<String> {
        let t = p.trim_end_matches('/');
        let t = if t.is_empty() { "/" } else { t };
        let e = self.expand(t);
        (!e.is_empty()).then_some(e)
    }

    /// `~`, relative and `//`, `/./` spellings expanded (a trailing `/` kept: it is part of a
    /// glob).
    fn expand(&self, p: &str) -> String {
        let s = if p == "~" {
            self.home.clone()
        } else if let Some(rest) = p.strip_prefix("~/") {
            if self.home.is_empty() {
                return String::new();
            }
            format!("{}/{rest}", self.home)
        } else if p.starts_with('/') {
            p.to_owned()
        } else {
            resolve(&self.cwd, p)
        };
        squeeze(&s)
    }

    /// A command-line path as text, resolved against the cwd and home; non-UTF-8 paths are
    /// taken as they are (made absolute).
    fn cli_path(&self, p: &Path) -> Option<String> {
        match p.to_str() {
            Some("") => None,
            Some(s) => self.literal(s),
            None => Some(Path::new(&self.cwd).join(p).to_string_lossy().into_owned()),
        }
    }

    fn credentials(&mut self, v: &Value, network: &NetworkSettings) -> Result<Value> {
        self.object(v, "credentials")?;
        let mut v = v.clone();
        if let Some(files) = v.get_mut("files").and_then(Value::as_array_mut) {
            for f in files {
                if let Some(Value::String(p)) = f.get_mut("path") {
                    if !p.starts_with('/') && !p.is_empty() {
                        if let Some(l) = self.literal(p) {
                            *p = l;
                        }
                    }
                }
            }
        }
        let c: credentials::Credentials = serde_path_to_error::deserialize(&v).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "credentials".into()
            } else {
                format!("credentials.{path}")
            };
            self.err(&field, e.into_inner().to_string())
        })?;
        if !network.allowed_domains.is_empty() {
            let d = domains::compile(
                domains::Fields {
                    allowed: Some(&network.allowed_domains),
                    denied: Some(&network.denied_domains),
                    reasons: &network.denied_domain_reasons,
                    proxy_env: false,
                },
                &self.field("network"),
            )?;
            credentials::compile(&c, d.as_ref(), &self.field("credentials"))?;
        }
        Ok(v)
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn push_unique(v: &mut Vec<PathBuf>, p: PathBuf) {
    if !v.contains(&p) {
        v.push(p);
    }
}

/// A trailing `/**` means the directory itself (`/**` alone: `/`).
fn strip_globstar(p: &str) -> &str {
    match p.strip_suffix("/**") {
        Some("") => "/",
        Some(s) => s,
        None => p,
    }
}

/// srt refuses a deny glob that is rooted (or `~`-rooted) and ends in a separator: it can
/// match nothing, and an inert deny fails open. The spelling to write instead.
fn inert_deny_glob(s: &str) -> Option<String> {
    let rooted = s.starts_with('/') || s.starts_with('~');
    (rooted && s.ends_with('/') && glob::has_glob(s)).then(|| s.trim_end_matches('/').to_owned())
}

/// `rel` below `cwd`, `.` and `..` folded lexically (as path.resolve does).
fn resolve(cwd: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in cwd.split('/').chain(rel.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let trailing = rel.ends_with('/');
    let mut out = format!("/{}", parts.join("/"));
    if trailing && out != "/" {
        out.push('/');
    }
    out
}

/// `//` runs to one `/`, `/./` components dropped, a trailing `/.` dropped (a trailing `/`
/// kept).
fn squeeze(s: &str) -> String {
    let trailing = s.len() > 1 && s.ends_with('/');
    let segs: Vec<&str> = s
        .split('/')
        .filter(|x| !x.is_empty() && *x != ".")
        .collect();
    let mut out = if s.starts_with('/') {
        format!("/{}", segs.join("/"))
    } else {
        segs.join("/")
    };
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn link_of(spelled: &str, real: &Path) -> Link {
    match real.to_str() {
        Some(r) if r != spelled => Link::Elsewhere(r.to_owned()),
        _ => Link::Same,
    }
}

/// A denyRead glob's locations minus those a kept ancestor already hides, unless something
/// reopened (allowRead, allowWrite) sits at that ancestor or between (srt collapses them the
/// same way; the runtime would otherwise mount inside a tmpfs that no longer shows them).
fn collapse(mut found: Vec<PathBuf>, reopened: &[PathBuf]) -> Vec<PathBuf> {
    found.sort();
    found.dedup();
    let mut kept: Vec<PathBuf> = Vec::new();
    for loc in found {
        let mut reopened_between = reopened.contains(&loc);
        let mut hidden = false;
        for up in loc.ancestors().skip(1) {
            if reopened.iter().any(|r| r == up) {
                reopened_between = true;
            }
            if kept.iter().any(|k| k == up) {
                hidden = true;
                break;
            }
        }
        if !hidden || reopened_between {
            kept.push(loc);
        }
    }
    kept
}

/// An IP address or CIDR range, unbracketed (srt's deniedResolvedAddresses).
fn check_range(s: &str) -> std::result::Result<(), String> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| {
        "not an IP address or CIDR range (IPv6 unbracketed, e.g. \"fc00::/7\")".to_string()
    })?;
    if let Some(p) = prefix {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match p.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => return Err(format!("the prefix length must be 0-{max}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
