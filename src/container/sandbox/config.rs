//! The OCI config of a `ward sandbox`: the host's own view of the filesystem (read-only, with
//! the settings' writable, unreadable and read-only carvings), the caller's uid mapped to
//! itself in a user namespace of its own, no capabilities, Landlock and seccomp as second and
//! third walls, and egress only through ward's proxy (the netns wall).
//!
//! Mount order matters and is the whole design: the host tree comes first, read-only all the
//! way down (`spec::bundle::HOST_VIEW`); then /proc, a minimal /dev and a private /tmp; then
//! the writable binds (`allowWrite`, shallowest first, so a deeper one lands on top); then the
//! masks (`denyRead`: an empty tmpfs over a directory, /dev/null over a file) and the paths
//! re-allowed inside them (`allowRead`, read-only); last, after pivot_root, `readonlyPaths`
//! (`denyWrite`, and the masks themselves) which no bind below can undo.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::spec::sandbox::settings::Settings;

/// Everything about the caller the config is made of.
#[derive(Clone, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub cwd: PathBuf,
    /// `KEY=value`, as the caller has them.
    pub env: Vec<String>,
    pub args: Vec<String>,
    pub terminal: bool,
}

/// Walls given up with `--allow-weaker` (or not available and so refused before this).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Weaker {
    pub landlock: bool,
    pub seccomp: bool,
}

/// The paths the sandbox is made of, after the settings and the command line are merged
/// (absolute, existing: what does not exist is dropped with a warning by `plan`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paths {
    pub allow_write: Vec<PathBuf>,
    pub deny_read: Vec<PathBuf>,
    pub allow_read: Vec<PathBuf>,
    pub deny_write: Vec<PathBuf>,
    /// Keep the host's /tmp (it is in allowWrite) instead of a private one.
    pub host_tmp: bool,
    /// The current directory, when a private /tmp would hide it and no writable bind covers
    /// it: bound read-only on top of the tmpfs.
    pub tmp_cwd: Option<PathBuf>,
    /// A hosts file of loopback names only, bound over /etc/hosts (egress by name).
    pub hosts: Option<PathBuf>,
}

/// Resolves the settings' paths: made absolute against `cwd`, missing ones dropped (each with
/// a warning in `warnings`), ward's own state and srt's protected files added.
pub fn paths(s: &Settings, cwd: &Path, hidden: &[PathBuf], warnings: &mut Vec<String>) -> Paths {
    let mut keep = |field: &str, list: &[PathBuf]| -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for p in list {
            let abs = if p.is_absolute() {
                p.clone()
            } else {
                cwd.join(p)
            };
            let abs = normalise(&abs);
            if std::fs::symlink_metadata(&abs).is_err() {
                warnings.push(format!(
                    "filesystem.{field}: {} does not exist; ignored",
                    abs.display()
                ));
                continue;
            }
            if !out.contains(&abs) {
                out.push(abs);
            }
        }
        out
    };
    let mut allow_write = keep("allowWrite", &s.filesystem.allow_write);
    let mut deny_read = Vec::new();
    for d in keep("denyRead", &s.filesystem.deny_read) {
        if d == Path::new("/") {
            // srt's meaning: every child of `/` but the kernel's own trees.
            deny_read.extend(children_of_root());
        } else {
            deny_read.push(d);
        }
    }
    let private_tmp = !allow_write.iter().any(|p| p == Path::new("/tmp"));
    for h in hidden {
        // Under a private /tmp it is out of sight already.
        if private_tmp && h.starts_with("/tmp") {
            continue;
        }
        if std::fs::symlink_metadata(h).is_ok() && !deny_read.contains(h) {
            deny_read.push(h.clone());
        }
    }
    let allow_read = keep("allowRead", &s.filesystem.allow_read)
        .into_iter()
        .filter(|p| deny_read.iter().any(|d| p.starts_with(d) && p != d))
        .collect();
    let mut deny_write = keep("denyWrite", &s.filesystem.deny_write);
    for p in protected(&allow_write, &s.home, s.filesystem.allow_git_config) {
        if !deny_write.contains(&p) {
            deny_write.push(p);
        }
    }
    let host_tmp = allow_write.iter().any(|p| p == Path::new("/tmp"));
    // The current directory under a private /tmp would be an empty copy: shown read-only
    // (unless a writable bind covers it already).
    let cwd = normalise(cwd);
    let tmp_cwd = (!host_tmp
        && cwd.starts_with("/tmp")
        && cwd != Path::new("/tmp")
        && !allow_write.iter().any(|w| cwd.starts_with(w)))
    .then_some(cwd);
    allow_write.retain(|p| p != Path::new("/"));
    allow_write.sort_by_key(|p| p.components().count());
    deny_read.sort_by_key(|p| p.components().count());
    Paths {
        allow_write,
        deny_read,
        allow_read,
        deny_write,
        host_tmp,
        tmp_cwd,
        hosts: None,
    }
}

fn children_of_root() -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir("/") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| !matches!(p.to_str(), Some("/proc" | "/dev" | "/sys")))
        .collect();
    out.sort();
    out
}

/// Files that run code or steer tools outside the sandbox when written (a shell's rc file,
/// git's hooks and config, an editor's tasks, an agent's commands): read-only even under a
/// writable tree, as srt keeps them. Only existing ones: a mount needs something to land on.
pub const PROTECTED: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".gitconfig",
    ".gitmodules",
    ".ripgreprc",
    ".mcp.json",
    ".git/hooks",
    ".git/config",
    ".vscode",
    ".idea",
    ".claude/commands",
    ".claude/agents",
];

fn protected(allow_write: &[PathBuf], home: &Path, allow_git_config: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut bases: Vec<&Path> = allow_write.iter().map(PathBuf::as_path).collect();
    if allow_write.iter().any(|w| home.starts_with(w)) {
        bases.push(home);
    }
    for base in bases {
        for name in PROTECTED {
            if allow_git_config && *name == ".git/config" {
                continue;
            }
            let p = base.join(name);
            if std::fs::symlink_metadata(&p).is_ok() && !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// `a/./b/../c` → `a/c`, lexically (the paths name places on the host, as the user wrote them).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Masked and read-only paths of /proc and /sys, as runc's default spec has them.
const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Syscalls Docker's default profile refuses to a container without extra capabilities, plus
/// the new mount API and io_uring (whose socket operations seccomp would never see).
pub const REFUSED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "vhangup",
];

/// clone(2) flags that make namespaces (refused: a namespace of its own inside would give the
/// command capabilities over it).
const NS_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const AF_UNIX: u64 = 1;

fn seccomp(unix_sockets: bool) -> Value {
    let mut rules = vec![json!({
        "names": REFUSED,
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": EPERM,
    })];
    // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc fall back to
    // clone, whose flags it can.
    rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    for flag in NS_FLAGS {
        rules.push(json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": EPERM,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
    }
    if !unix_sockets {
        rules.push(json!({
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": EPERM,
            "args": [{"index": 0, "value": AF_UNIX, "op": "SCMP_CMP_EQ"}],
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": rules,
    })
}

const READ: &[&str] = &["execute", "read_file", "read_dir"];

/// Landlock: read and execute anywhere the mounts show, write only beneath the writable
/// places (Landlock cannot carve a read-only path out of a writable tree: the read-only binds
/// do that), device files and /proc written as files only; TCP bind only with
/// allowLocalBinding; no signals or abstract sockets past the sandbox.
fn landlock(p: &Paths, local_binding: bool) -> Value {
    use crate::spec::landlock::FS_NAMES;
    let handled = FS_NAMES.to_vec();
    // Every right but reading and device ioctls (granted on their own below).
    let write: Vec<&str> = FS_NAMES
        .iter()
        .copied()
        .filter(|n| !READ.contains(n) && *n != "ioctl_dev")
        .collect();
    let mut writable: Vec<String> = p
        .allow_write
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    for extra in ["/tmp", "/dev/shm"] {
        if !writable.iter().any(|w| w == extra) {
            writable.push(extra.to_string());
        }
    }
    let mut rules = vec![
        json!({"allowedAccess": READ, "paths": ["/"]}),
        json!({"allowedAccess": write, "paths": writable}),
        json!({"allowedAccess": ["write_file", "ioctl_dev", "truncate"], "paths": ["/dev", "/proc"]}),
    ];
    let mut ruleset = json!({
        "handledAccessFS": handled,
        "scoped": ["abstract_unix_socket", "signal"],
    });
    // Without allowLocalBinding no TCP port can be bound (no rule grants one).
    if !local_binding {
        ruleset["handledAccessNetwork"] = json!(["bind_tcp"]);
    }
    rules.retain(|r| r["paths"].as_array().is_some_and(|a| !a.is_empty()));
    json!({
        "ruleset": ruleset,
        "rules": {"pathBeneath": rules},
    })
}

fn bind(path: &Path, ro: bool) -> Value {
    let mut opts = vec!["rbind", "nosuid", "nodev"];
    if ro {
        opts.push("ro");
    }
    json!({"destination": path, "type": "bind", "source": path, "options": opts})
}

fn mounts(p: &Paths) -> Vec<Value> {
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    if !p.host_tmp {
        m.push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}));
    }
    if let Some(c) = &p.tmp_cwd {
        m.push(bind(c, true));
    }
    for w in &p.allow_write {
        if w == Path::new("/dev/shm") {
            continue;
        }
        m.push(bind(w, false));
    }
    for d in &p.deny_read {
        if d.is_dir() {
            m.push(json!({"destination": d, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "mode=755", "size=16k"]}));
        } else {
            m.push(json!({"destination": d, "type": "bind", "source": "/dev/null", "options": ["bind", "ro"]}));
        }
    }
    for a in &p.allow_read {
        m.push(bind(a, true));
    }
    if let Some(h) = &p.hosts {
        m.push(json!({"destination": "/etc/hosts", "type": "bind", "source": h, "options": ["bind", "ro"]}));
    }
    m
}

/// The config. `interception` is `process.interception` (network and credentials), made by
/// the caller from the settings.
pub fn config(
    c: &Caller,
    p: &Paths,
    s: &Settings,
    rootfs: &Path,
    interception: Value,
    weaker: Weaker,
) -> Value {
    let mut readonly: Vec<String> = READONLY.iter().map(|s| s.to_string()).collect();
    readonly.extend(p.deny_write.iter().map(|d| d.display().to_string()));
    readonly.extend(
        p.deny_read
            .iter()
            .filter(|d| d.is_dir())
            .map(|d| d.display().to_string()),
    );
    // Per-path unix socket rules need a kernel hook a rootless sandbox cannot attach (as srt
    // on Linux, the list is not honoured: `prepare` warns).
    let unix_sockets = s.network.allow_all_unix_sockets;
    let mut process = json!({
        "terminal": c.terminal,
        "user": {"uid": c.uid, "gid": c.gid},
        "args": c.args,
        "env": c.env,
        "cwd": c.cwd,
        "capabilities": {"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []},
        "noNewPrivileges": true,
        "interception": interception,
    });
    if !weaker.landlock {
        process["landlock"] = landlock(p, s.network.allow_local_binding);
    }
    let mut linux = json!({
        "uidMappings": [{"containerID": c.uid, "hostID": c.uid, "size": 1}],
        "gidMappings": [{"containerID": c.gid, "hostID": c.gid, "size": 1}],
        "namespaces": [
            {"type": "user"}, {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "network"},
        ],
        "maskedPaths": MASKED,
        "readonlyPaths": readonly,
        "rootfsPropagation": "rslave",
    });
    if !weaker.seccomp {
        linux["seccomp"] = seccomp(unix_sockets);
    }
    json!({
        "ociVersion": "1.2.0",
        "root": {"path": rootfs, "readonly": true},
        "process": process,
        "mounts": mounts(p),
        "annotations": {
            crate::spec::bundle::HOST_VIEW: "true",
            "org.ward.egress.wall": "netns",
            crate::init::reaper::ANNOTATION: "true",
        },
        "linux": linux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
        let mut s = Settings::default();
        f(&mut s);
        s
    }

    #[test]
    fn missing_paths_are_dropped_with_a_warning_and_nesting_sorts_shallow_first() {
        let dir = std::env::temp_dir().join(format!("ward-sbcfg-{}", std::process::id()));
        let deep = dir.join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        let s = settings(|s| {
            s.filesystem.allow_write = vec![deep.clone(), dir.clone(), dir.join("missing")];
        });
        let mut w = Vec::new();
        let p = paths(&s, Path::new("/"), &[], &mut w);
        assert_eq!(p.allow_write, vec![dir.clone(), deep.clone()]);
        assert!(w.iter().any(|m| m.contains("missing")), "{w:?}");
        assert!(!p.host_tmp);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cwd_hidden_by_the_private_tmp_is_shown_read_only() {
        let dir = std::env::temp_dir().join(format!("ward-sbcwd-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("w")).unwrap();
        let s = settings(|s| s.filesystem.allow_write = vec![dir.join("w")]);
        let p = paths(&s, &dir, &[], &mut Vec::new());
        assert_eq!(p.tmp_cwd.as_deref(), Some(dir.as_path()));
        // Covered by a writable bind, or with the host's /tmp: nothing to add.
        let s = settings(|s| s.filesystem.allow_write = vec![dir.clone()]);
        assert_eq!(paths(&s, &dir, &[], &mut Vec::new()).tmp_cwd, None);
        let s = settings(|s| s.filesystem.allow_write = vec!["/tmp".into()]);
        assert_eq!(paths(&s, &dir, &[], &mut Vec::new()).tmp_cwd, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn protected_files_under_a_writable_tree_become_read_only() {
        let dir = std::env::temp_dir().join(format!("ward-sbprot-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".git/hooks")).unwrap();
        std::fs::write(dir.join(".git/config"), "").unwrap();
        std::fs::write(dir.join(".bashrc"), "").unwrap();
        let got = protected(std::slice::from_ref(&dir), Path::new("/nonexistent"), false);
        assert!(got.contains(&dir.join(".git/hooks")));
        assert!(got.contains(&dir.join(".git/config")));
        assert!(got.contains(&dir.join(".bashrc")));
        let got = protected(std::slice::from_ref(&dir), Path::new("/nonexistent"), true);
        assert!(!got.contains(&dir.join(".git/config")), "allowGitConfig");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unix_sockets_only_with_allow_all() {
        let c = Caller {
            uid: 1000,
            gid: 1000,
            cwd: "/".into(),
            env: vec![],
            args: vec!["true".into()],
            terminal: false,
        };
        let has_unix_rule = |s: &Settings| {
            let v = config(
                &c,
                &Paths::default(),
                s,
                Path::new("/r"),
                json!({}),
                Weaker::default(),
            );
            v["linux"]["seccomp"]["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["names"] == json!(["socket"]))
        };
        assert!(has_unix_rule(&settings(|_| {})));
        assert!(has_unix_rule(&settings(|s| {
            s.network.allow_unix_sockets = vec!["/run/x.sock".into()]
        })));
        assert!(!has_unix_rule(&settings(|s| s
            .network
            .allow_all_unix_sockets =
            true)));
        let v = config(
            &c,
            &Paths::default(),
            &settings(|_| {}),
            Path::new("/r"),
            json!({}),
            Weaker {
                landlock: true,
                seccomp: true,
            },
        );
        assert!(v["linux"]["seccomp"].is_null() && v["process"]["landlock"].is_null());
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 1000);
        assert_eq!(v["annotations"][crate::spec::bundle::HOST_VIEW], "true");
    }
}
