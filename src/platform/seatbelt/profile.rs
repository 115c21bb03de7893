//! Writing the SBPL profile.
//!
//! SBPL is a Scheme dialect evaluated by libsandbox. The rules below follow what public
//! profiles grant a plain command-line process (Chromium's common.sb, the Codex CLI and Claude
//! Code seatbelt policies, Bazel's darwin sandbox): `(deny default)`, then dyld, libSystem and
//! the frameworks, a few devices, a short list of sysctls and mach services. Later rules take
//! precedence over earlier ones, so the denials for readonlyPaths and maskedPaths come last.
//! This has not been run on a Mac from this repository; it is written to be read and checked.

use super::{ancestors, PlatformError, Result};

/// Every operation this module emits; the unit tests check each profile against it.
pub const KNOWN_OPERATIONS: &[&str] = &[
    "default",
    "file-read*",
    "file-read-metadata",
    "file-write*",
    "file-write-data",
    "file-ioctl",
    "file-map-executable",
    "process-exec",
    "process-fork",
    "process-info*",
    "signal",
    "sysctl-read",
    "mach-lookup",
    "ipc-posix-shm-read-data",
    "network*",
    "network-outbound",
    "network-inbound",
    "network-bind",
];

/// Every filter (and modifier) this module emits.
pub const KNOWN_FILTERS: &[&str] = &[
    "literal",
    "subpath",
    "regex",
    "remote",
    "local",
    "target",
    "sysctl-name",
    "sysctl-name-prefix",
    "global-name",
    "ipc-posix-name",
    "require-all",
    "require-any",
    "with",
];

/// Read-only system locations a dynamically linked macOS program needs to start.
const SYSTEM_READ: &[&str] = &[
    "/usr/lib",                       // dyld, libSystem and friends
    "/System",                        // frameworks; the dyld shared cache (Cryptexes on 13+)
    "/Library/Apple/usr/libexec/oah", // Rosetta 2, for x86_64 programs on arm64
    "/private/var/db/dyld",           // the shared cache before macOS 11
    "/private/var/db/timezone",       // /etc/localtime points here
    "/usr/share/zoneinfo",
    "/usr/share/locale",
];

const SYSCTLS: &[&str] = &[
    "hw.activecpu",
    "hw.byteorder",
    "hw.cachelinesize",
    "hw.cpufamily",
    "hw.cputype",
    "hw.logicalcpu",
    "hw.logicalcpu_max",
    "hw.machine",
    "hw.memsize",
    "hw.ncpu",
    "hw.pagesize",
    "hw.physicalcpu",
    "hw.physicalcpu_max",
    "kern.argmax",
    "kern.hostname",
    "kern.maxfiles",
    "kern.maxfilesperproc",
    "kern.ngroups",
    "kern.osproductversion",
    "kern.osrelease",
    "kern.ostype",
    "kern.osversion",
    "kern.usrstack64",
    "kern.version",
    "sysctl.proc_cputype",
    "vm.loadavg",
];
const SYSCTL_PREFIXES: &[&str] = &["hw.optional.", "hw.perflevel", "machdep.cpu."];

/// libSystem's own services: user and group lookups, logging, notify(3), confstr's temp dirs.
const MACH_SERVICES: &[&str] = &[
    "com.apple.system.opendirectoryd.libinfo",
    "com.apple.system.logger",
    "com.apple.logd",
    "com.apple.system.notification_center",
    "com.apple.bsd.dirhelper",
];
/// DNS resolution goes through mDNSResponder and configd.
const MACH_SERVICES_NETWORK: &[&str] = &[
    "com.apple.dnssd.service",
    "com.apple.SystemConfiguration.DNSConfiguration",
    "com.apple.SystemConfiguration.configd",
];

pub(super) enum Network {
    /// No new network namespace: the host's network.
    Host,
    /// A new network namespace: nothing but these loopback TCP ports.
    Loopback(Vec<u16>),
}

pub(super) struct Profile {
    id: String,
    root: String,
    pub root_writable: bool,
    pub terminal: bool,
    /// Mount sources and fresh directories, by right.
    pub read: Vec<String>,
    pub write: Vec<String>,
    pub exec: Vec<String>,
    pub deny_write: Vec<String>,
    pub deny_read: Vec<String>,
    pub network: Network,
    pub approximated: Vec<String>,
    pub unenforced: Vec<String>,
}

/// An SBPL string literal: `"` and `\` are escaped, so a path cannot end its literal early.
/// Control characters are rejected before paths get here (see `host_path`).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A comment line: newlines cannot start a new rule.
fn comment(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(";; {clean}\n")
}

/// `(allow|deny OPS FILTERS... [modifier])`, one filter per line.
fn rule(action: &str, ops: &str, filters: &[String], modifier: Option<&str>) -> String {
    let mut s = format!("({action} {ops}");
    for f in filters {
        s.push_str("\n  ");
        s.push_str(f);
    }
    if let Some(m) = modifier {
        s.push_str("\n  ");
        s.push_str(m);
    }
    s.push_str(")\n");
    s
}

fn paths(kind: &str, list: &[String]) -> Vec<String> {
    list.iter()
        .map(|p| format!("({kind} {})", quote(p)))
        .collect()
}

impl Profile {
    pub fn new(id: &str, root: &str) -> Profile {
        Profile {
            id: id.to_string(),
            root: root.to_string(),
            root_writable: false,
            terminal: false,
            read: Vec::new(),
            write: Vec::new(),
            exec: Vec::new(),
            deny_write: Vec::new(),
            deny_read: Vec::new(),
            network: Network::Host,
            approximated: Vec::new(),
            unenforced: Vec::new(),
        }
    }

    pub fn render(&self) -> Result<String> {
        if self.id.chars().any(char::is_control) {
            return Err(PlatformError::spec("id", "contains a control character"));
        }
        let tag = |what: &str| {
            format!(
                "(with message {})",
                quote(&format!("ward:{}{what}", self.id))
            )
        };
        let mut out = String::from("(version 1)\n");
        out += &comment(&format!("ward seatbelt profile for container {}", self.id));
        out += &comment(&format!("root: {}", self.root));
        for a in &self.approximated {
            out += &comment(&format!("approximated: {a}"));
        }
        for u in &self.unenforced {
            out += &comment(&format!(
                "NOT ENFORCED (org.ward.darwin.allow-unenforced): {u}"
            ));
        }
        out += &rule("deny", "default", &[], Some(&tag("")));

        out += "\n;; processes: fork, and exec only from the root and exec-able mounts\n";
        out += "(allow process-fork)\n";
        let mut exec = vec![self.root.clone()];
        exec.extend(self.exec.iter().cloned());
        out += &rule("allow", "process-exec", &paths("subpath", &exec), None);
        out += "(allow signal (target same-sandbox))\n";
        out += "(allow process-info* (target same-sandbox))\n";

        out += "\n;; what a macOS process needs to start\n";
        let system: Vec<String> = SYSTEM_READ.iter().map(|s| s.to_string()).collect();
        out += &rule("allow", "file-read*", &paths("subpath", &system), None);
        out += &rule(
            "allow",
            "file-read*",
            &paths("literal", &["/private/etc/localtime".into()]),
            None,
        );
        let mut mappable = vec![
            "/usr/lib".to_string(),
            "/System".into(),
            SYSTEM_READ[2].into(),
        ];
        mappable.extend(exec.iter().cloned());
        out += &rule(
            "allow",
            "file-map-executable",
            &paths("subpath", &mappable),
            None,
        );
        let rw_devices: Vec<String> = ["/dev/null", "/dev/zero", "/dev/dtracehelper"]
            .map(String::from)
            .into();
        out += &rule(
            "allow",
            "file-read* file-write-data",
            &paths("literal", &rw_devices),
            None,
        );
        let ro_devices: Vec<String> = ["/dev/random", "/dev/urandom"].map(String::from).into();
        out += &rule("allow", "file-read*", &paths("literal", &ro_devices), None);
        if self.terminal {
            out += &rule(
                "allow",
                "file-read* file-write-data file-ioctl",
                &paths("literal", &["/dev/tty".into()]),
                None,
            );
        }
        let sysctls: Vec<String> = SYSCTLS
            .iter()
            .map(|s| format!("(sysctl-name {})", quote(s)))
            .collect();
        let prefixes = SYSCTL_PREFIXES
            .iter()
            .map(|s| format!("(sysctl-name-prefix {})", quote(s)));
        out += &rule(
            "allow",
            "sysctl-read",
            &sysctls.into_iter().chain(prefixes).collect::<Vec<_>>(),
            None,
        );
        let services: Vec<String> = MACH_SERVICES
            .iter()
            .map(|s| format!("(global-name {})", quote(s)))
            .collect();
        out += &rule("allow", "mach-lookup", &services, None);
        out +=
            "(allow ipc-posix-shm-read-data (ipc-posix-name \"apple.shm.notification_center\"))\n";

        out += "\n;; the container's files\n";
        let mut read = vec![self.root.clone()];
        read.extend(self.read.iter().cloned());
        out += &rule("allow", "file-read*", &paths("subpath", &read), None);
        let mut write = Vec::new();
        if self.root_writable {
            write.push(self.root.clone());
        }
        write.extend(self.write.iter().cloned());
        if !write.is_empty() {
            out += &rule("allow", "file-write*", &paths("subpath", &write), None);
        }
        // stat() of the directories leading to them, for getcwd/realpath; not their listings.
        let mut dirs: Vec<String> = read
            .iter()
            .chain(&write)
            .flat_map(|p| ancestors(p))
            .collect();
        dirs.extend(SYSTEM_READ.iter().flat_map(|p| ancestors(p)));
        dirs.sort();
        dirs.dedup();
        out += &rule(
            "allow",
            "file-read-metadata",
            &paths("literal", &dirs),
            None,
        );

        match &self.network {
            Network::Host => {
                out += "\n;; network: the host's (the spec asks for no network namespace)\n";
                out += "(allow network*)\n";
                let dns: Vec<String> = MACH_SERVICES_NETWORK
                    .iter()
                    .map(|s| format!("(global-name {})", quote(s)))
                    .collect();
                out += &rule("allow", "mach-lookup", &dns, None);
            }
            Network::Loopback(ports) => {
                out += "\n;; network: none (new network namespace), but loopback ports of ward's egress settings\n";
                for port in ports {
                    out += &format!(
                        "(allow network-outbound (remote ip {}))\n",
                        quote(&format!("localhost:{port}"))
                    );
                }
            }
        }

        if !self.deny_write.is_empty() || !self.deny_read.is_empty() {
            out += "\n;; denials last: later rules take precedence\n";
        }
        if !self.deny_write.is_empty() {
            out += &rule(
                "deny",
                "file-write*",
                &paths("subpath", &self.deny_write),
                Some(&tag(":readonlyPaths")),
            );
        }
        if !self.deny_read.is_empty() {
            out += &rule(
                "deny",
                "file-read* file-write*",
                &paths("subpath", &self.deny_read),
                Some(&tag(":maskedPaths")),
            );
        }
        Ok(out)
    }
}
