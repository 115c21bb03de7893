//! CVE-2019-5736 against a container that holds CAP_SYS_PTRACE (no user namespace, so it is
//! CAP_SYS_PTRACE of the host's user namespace). Non-dumpable does not stop such a process:
//! it can open /proc/<pid>/exe of the runtime while the runtime enters the container, and,
//! once the runtime has left, reopen that fd for writing through /proc/self/fd/N. The binary
//! the runtime runs from inside the container must therefore be one that cannot be written
//! at all (a read-only copy or a sealed memfd), not the host's file.

use crate::harness::{wait_for, Env};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// conformance/exe_attack.c, compiled statically once per test process.
fn attacker() -> PathBuf {
    crate::harness::static_binary("exe-attack", "exe_attack.c")
}

/// Docker's default capabilities plus CAP_SYS_PTRACE.
fn caps() -> Vec<&'static str> {
    let mut caps = crate::harness::DOCKER_CAPS.to_vec();
    caps.push("CAP_SYS_PTRACE");
    caps
}

/// One attack: an Env whose runtime is a copy of the runtime under test in the test's temp dir
/// (a successful attack only hurts the copy), with the attacker in its rootfs and caps().
struct Attack {
    env: Env,
    copy: PathBuf,
    before: Vec<u8>,
    out: PathBuf,
}

impl Attack {
    fn new() -> Attack {
        let mut env = Env::new();
        let before = env.use_runtime_copy();
        let copy = PathBuf::from(&env.binary);
        crate::harness::copy_executable(attacker(), env.rootfs().join("attack"));
        let out = env.shared_dir("out", "/out");
        for set in ["bounding", "effective", "permitted"] {
            env.config["process"]["capabilities"][set] = caps().into();
        }
        Attack {
            env,
            copy,
            before,
            out,
        }
    }

    /// `sh -c` arguments that run the attacker, its output in out/log.
    fn script(&self) -> String {
        format!(
            "exec /attack /out/stop {} > /out/log 2>&1",
            self.copy.display()
        )
    }

    fn log(&self) -> String {
        fs::read_to_string(self.out.join("log")).unwrap_or_default()
    }

    /// `<copy> --root R args`; Err when the copy cannot be spawned for a whole second
    /// (ETXTBSY: the attacker holds it open for writing). A single ETXTBSY is retried: an open
    /// for writing that then fails EROFS on ward's read-only bind still takes the inode's write
    /// count for an instant (the kernel counts the writer before it checks the mount), and an
    /// execve of the same file in that instant fails ETXTBSY although nothing was opened.
    fn rt(&self, args: &[&str]) -> Result<std::process::ExitStatus, String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            match Command::new(&self.env.binary)
                .arg("--root")
                .arg(&self.env.root)
                .args(args)
                .stdin(Stdio::null())
                .status()
            {
                Err(e)
                    if e.raw_os_error() == Some(libc::ETXTBSY)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => {
                    return other
                        .map_err(|e| format!("{args:?}: spawn {}: {e}", self.copy.display()))
                }
            }
        }
    }

    /// Stops the attacker and checks its summary: it saw the runtime (else the test proves
    /// nothing), no open for writing of a writable file succeeded, the copy is unchanged.
    fn verdict(&self, busy: Option<String>) {
        fs::write(self.out.join("stop"), "").unwrap();
        wait_for("the attacker's summary", || self.log().contains("seen="));
        let summary = self.log();
        eprintln!("attacker: {summary}");
        let field = |k: &str| {
            summary
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            fs::read(&self.copy).unwrap() == self.before,
            "the runtime binary was modified: {summary} {busy:?}"
        );
        assert!(
            busy.is_none(),
            "{busy:?}: the attacker holds the binary for writing: {summary}"
        );
        assert_eq!(field("opened"), "0", "a write-open succeeded: {summary}");
        assert_eq!(field("wins"), "", "the attacker wrote: {summary}");
        assert!(
            field("seen").parse::<u32>().unwrap_or(0) > 0,
            "the attacker never saw the runtime inside the container: {summary}"
        );
    }
}

/// `ward exec`: a root container with CAP_SYS_PTRACE loops over /proc trying every way to the
/// runtime's binary (exe_attack.c: /proc/<pid>/exe for writing, an O_PATH fd of it reopened
/// for writing after the runtime has left, /proc/<pid>/root/<the binary's host path>) while
/// `exec` runs 30 times, and once more after the last exec has exited.
/// ward before the read-only self-copy FAILS this (its exec child is only non-dumpable, which
/// CAP_SYS_PTRACE of the host's user namespace overrides), and so did ward whose exec child
/// entered the pid namespace before the mount namespace (its root was the host's).
#[test]
fn cve_2019_5736_exec_with_sys_ptrace_cannot_reach_runtime_binary() {
    let mut a = Attack::new();
    let script = a.script();
    a.env.args(&["sh", "-c", &script]);
    a.env.write_config();
    let id = a.env.id();
    let bundle = a.env.bundle.to_str().unwrap().to_string();
    a.rt(&["run", "-d", "--bundle", &bundle, &id])
        .map(|s| assert!(s.success(), "run -d: {s}"))
        .unwrap();
    // An attacker that holds the binary open for writing makes the next spawn fail ETXTBSY:
    // stop there and let the verdict report what it did.
    let mut busy = None;
    for i in 0..30 {
        match a.rt(&["exec", &id, "/bin/true"]) {
            Ok(s) => assert!(s.success(), "exec {i}: {s}"),
            Err(e) => {
                busy = Some(e);
                break;
            }
        }
    }
    a.verdict(busy);
}

/// `ward create` + `start`: the attacker, `exec`'d into the created container, finds init
/// (pid 1, still the runtime, waiting for `start`), holds its /proc/1/exe and reopens it for
/// writing once `start` made init exec the container's process.
/// ward before the read-only self-copy FAILS this: init is only non-dumpable.
#[test]
fn cve_2019_5736_created_init_with_sys_ptrace_cannot_reach_runtime_binary() {
    let mut a = Attack::new();
    a.env.args(&["sleep", "100"]);
    a.env.write_config();
    let id = a.env.id();
    let bundle = a.env.bundle.to_str().unwrap().to_string();
    let script = a.script();
    let mut busy = a
        .rt(&["create", "--bundle", &bundle, &id])
        .map(|s| assert!(s.success(), "create: {s}"))
        .and_then(|()| a.rt(&["exec", "-d", &id, "sh", "-c", &script]))
        .map(|s| assert!(s.success(), "exec -d: {s}"))
        .err();
    if busy.is_none() {
        wait_for("the attacker to start", || a.log().contains("started"));
        std::thread::sleep(std::time::Duration::from_millis(300));
        busy = a.rt(&["start", &id]).err();
        // The attacker keeps retrying its fds after init has become `sleep`.
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    a.verdict(busy);
}

/// CAP_SYS_PTRACE without a user namespace lets the container ptrace a process ward starts in
/// it while that still holds the host's privileges (exec; runc the same): ward warns at create,
/// and only then.
#[test]
fn sys_ptrace_without_userns_is_warned_about() {
    if crate::harness::runtime_is_runc() {
        eprintln!("skipped for runc: it runs such a container without a word");
        return;
    }
    let mut env = Env::new();
    env.args(&["true"]);
    let out = env.run(&env.id());
    out.ok();
    assert!(!out.stderr.contains("CAP_SYS_PTRACE"), "{out:?}");
    for set in ["bounding", "effective", "permitted"] {
        env.config["process"]["capabilities"][set] = caps().into();
    }
    let out = env.run(&env.id());
    out.ok();
    assert!(
        out.stderr
            .contains("CAP_SYS_PTRACE without a user namespace"),
        "{out:?}"
    );
}

/// What `exec` forks into the container's pid namespace must never be seen there holding a
/// capability outside the container's bounding set: with host CAP_SYS_PTRACE (no user
/// namespace) the container could ptrace it in that moment and reach the host. A watcher in
/// the container polls /proc while the host runs `exec` 40 times.
#[test]
fn exec_process_never_appears_in_the_container_with_host_privileges() {
    let mut env = Env::new();
    let watch = crate::harness::static_binary("cap-watch", "cap_watch.c");
    crate::harness::copy_executable(watch, env.rootfs().join("watch"));
    let out = env.shared_dir("out", "/out");
    for set in ["bounding", "effective", "permitted"] {
        env.config["process"]["capabilities"][set] = caps().into();
    }
    env.args(&["sh", "-c", "/watch 8 > /out/report; sleep 30"]);
    let id = env.id();
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    env.rt(&["run", "-d", "--bundle", &b, &id]).ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    for _ in 0..40 {
        env.rt(&["exec", &id, "/bin/true"]).ok();
    }
    wait_for("the watcher's report", || {
        fs::read_to_string(out.join("report")).is_ok_and(|r| r.contains("seen="))
    });
    let report = fs::read_to_string(out.join("report")).unwrap();
    env.kill(&id, "KILL");
    let seen: u64 = report
        .rsplit_once("seen=")
        .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(
        seen >= 10,
        "the watcher saw only {seen} processes: {report}"
    );
    if crate::harness::runtime_is_runc() && !report.contains("privileged=0") {
        eprintln!("skipped for runc: 1.1.5's exec is seen with host privileges: {report}");
        return;
    }
    assert!(report.contains("privileged=0"), "{report}");
}
