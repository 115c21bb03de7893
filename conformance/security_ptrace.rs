//! CVE-2019-5736 against a container that holds CAP_SYS_PTRACE (no user namespace, so it is
//! CAP_SYS_PTRACE of the host's user namespace). Non-dumpable does not stop such a process:
//! it can open /proc/<pid>/exe of the runtime while the runtime enters the container, and,
//! once the runtime has left, reopen that fd for writing through /proc/self/fd/N. The binary
//! the runtime runs from inside the container must therefore be one that cannot be written
//! at all (a read-only copy or a sealed memfd), not the host's file.

use crate::harness::{runtime, runtime_is_runc, wait_for, Env};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// conformance/exe_attack.c, compiled statically once per test process.
fn attacker() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let tmp = dir.join(format!("exe-attack.{}", std::process::id()));
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/exe_attack.c");
        let out = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&tmp)
            .arg(src)
            .output()
            .expect("cc (apt-get install gcc libc6-dev)");
        assert!(out.status.success(), "cc -static exe_attack.c: {out:?}");
        let path = dir.join("exe-attack");
        fs::rename(&tmp, &path).unwrap();
        path
    })
}

/// The runtime's absolute path (resolving a bare name such as `runc` through PATH).
fn runtime_path() -> PathBuf {
    let rt = runtime();
    if rt.contains('/') {
        return rt.into();
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(&rt))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{rt} not in PATH"))
}

/// Docker's default capabilities plus CAP_SYS_PTRACE.
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
    "CAP_SYS_PTRACE",
];

/// A root container with CAP_SYS_PTRACE loops over /proc trying every way to the runtime's
/// binary (exe_attack.c) while `exec` runs 30 times, and once more after the last exec has
/// exited. The runtime under test is a copy in the test's temp dir, so a successful attack
/// only hurts the copy. The attacker must have seen the runtime (else the test proves
/// nothing), no open for writing of a writable file may succeed and the copy is unchanged.
/// ward before the sealed self-copy FAILS this: its init and exec child are only
/// non-dumpable, which CAP_SYS_PTRACE of the host's user namespace overrides.
#[test]
fn cve_2019_5736_exec_with_sys_ptrace_cannot_reach_runtime_binary() {
    let mut env = Env::new();
    let copy = env.dir.join("runtime-copy");
    fs::copy(runtime_path(), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    let before = fs::read(&copy).unwrap();
    env.binary = copy.to_str().unwrap().to_string();
    fs::copy(attacker(), env.rootfs().join("attack")).unwrap();
    let out = env.shared_dir("out", "/out");
    let script = format!("exec /attack /out/stop {} > /out/log 2>&1", copy.display());
    env.args(&["sh", "-c", &script]);
    for set in ["bounding", "effective", "permitted"] {
        env.config["process"]["capabilities"][set] = CAPS.into();
    }
    env.write_config();
    let id = env.id();
    env.rt(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    // An attacker that holds the binary open for writing makes the next spawn fail ETXTBSY:
    // stop there and let the checks below report what it did.
    let mut busy = None;
    for i in 0..30 {
        let status = Command::new(&env.binary)
            .arg("--root")
            .arg(&env.root)
            .args(["exec", &id, "/bin/true"])
            .stdin(Stdio::null())
            .status();
        match status {
            Ok(s) => assert!(s.success(), "exec {i}: {s}"),
            Err(e) => {
                busy = Some(format!("exec {i}: spawn {}: {e}", copy.display()));
                break;
            }
        }
    }
    fs::write(out.join("stop"), "").unwrap();
    let log = out.join("log");
    wait_for("the attacker's summary", || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains("seen="))
    });
    let summary = fs::read_to_string(&log).unwrap();
    eprintln!("attacker: {summary}");
    assert!(
        busy.is_none(),
        "{busy:?}: the attacker holds the binary for writing: {summary}"
    );
    let field = |k: &str| {
        summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        fs::read(&copy).unwrap() == before,
        "the runtime binary was modified: {summary} {busy:?}"
    );
    assert_eq!(field("opened"), "0", "a write-open succeeded: {summary}");
    assert_eq!(field("wins"), "", "the attacker wrote: {summary}");
    assert!(
        field("seen").parse::<u32>().unwrap_or(0) > 0,
        "the attacker never saw the runtime inside the container (30 execs): {summary}"
    );
    if runtime_is_runc() {
        eprintln!("runc: {summary}");
    }
}
