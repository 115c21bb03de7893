//! What scripts and shims read from the command line: exit codes and messages of `kill`
//! (liveness with signal 0, `--all`), warnings for skipped config entries, `--version`, help,
//! `--debug` lines, `events`, completions and the man page — each as runc prints it.

use crate::harness::{alive, Env};
use serde_json::json;

/// `kill ID 0` is a liveness check (0 while created or running, non-zero with runc's message
/// once stopped); `kill --all` of a stopped container succeeds, of an unknown id fails.
#[test]
fn kill_zero_checks_liveness_and_kill_all_exit_codes() {
    let mut env = Env::new();
    env.args(&["sleep", "60"]);
    let id = env.id();
    env.create(&id).ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(
        env.kill(&id, "0").code,
        0,
        "created: {:?}",
        env.kill(&id, "0")
    );
    env.start(&id).ok();
    env.kill(&id, "0").ok();
    env.rt(&["kill", "--all", &id, "0"]).ok();
    assert!(alive(pid), "signal 0 must not hurt init");
    assert_eq!(env.state(&id)["status"], "running");
    env.kill(&id, "KILL").ok();
    env.wait_status(&id, "stopped");
    let dead = env.kill(&id, "0");
    assert_ne!(dead.code, 0, "stopped: {dead:?}");
    assert!(dead.stderr.contains("container not running"), "{dead:?}");
    env.rt(&["kill", "-a", &id, "KILL"]).ok();
    env.rt(&["kill", "--all", &id, "0"]).ok();
    let nosuch = env.rt(&["kill", "nosuch-lcf", "0"]);
    assert_ne!(nosuch.code, 0, "{nosuch:?}");
    assert!(nosuch.stderr.contains("does not exist"), "{nosuch:?}");
    assert_ne!(env.rt(&["kill", "-a", "nosuch-lcf"]).code, 0);
    env.delete(&id).ok();
}

/// A capability name the kernel (or the spec) does not know is skipped with runc's warning,
/// once; the known ones are granted.
#[test]
fn unknown_capability_names_warn_and_are_skipped() {
    let mut env = Env::new();
    for set in ["bounding", "effective", "permitted"] {
        env.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .extend([
                json!("CAP_NOSUCH"),
                json!("CAP_SYS_ADMIN"),
                json!("CAP_NOSUCH"),
            ]);
    }
    env.args(&["sh", "-c", "grep CapEff /proc/self/status"]);
    let id = env.id();
    let out = env.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    // AUDIT_WRITE (29), SYS_ADMIN (21), NET_BIND_SERVICE (10), KILL (5).
    assert!(out.stdout.contains("0000000020200420"), "{out:?}");
    let warning = "ignoring unknown or unavailable capabilities: [CAP_NOSUCH]";
    assert_eq!(out.stderr.matches(warning).count(), 1, "{out:?}");
    assert!(out.stderr.contains("level=warning"), "{out:?}");
}
