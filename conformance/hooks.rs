//! OCI hooks: every kind fires once, in order, with the state JSON on stdin; failing and
//! timed-out hooks abort create and leave nothing behind.

use crate::harness::Env;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Appends `<kind> <status from the state JSON on stdin>` to the file named by $2.
const HOOK: &str = "#!/bin/sh\nstatus=$(sed -n 's/.*\"status\": *\"\\([a-z]*\\)\".*/\\1/p')\necho \"$1 $status\" >> \"$2\"\n";

fn write_script(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Installs the logging hook for every kind; returns the host path of the log.
fn install_logging_hooks(env: &mut Env) -> PathBuf {
    let host_log_dir = env.shared_dir("hooklog", "/hooklog");
    let host_hook = env.dir.join("hook.sh");
    write_script(&host_hook, HOOK);
    write_script(&env.rootfs().join("hook.sh"), HOOK);
    let host_log = host_log_dir.join("log");
    let hook = |kind: &str, path: &Path, log: &Path| json!([{"path": path.to_str().unwrap(), "args": ["hook.sh", kind, log.to_str().unwrap()]}]);
    let mut hooks = serde_json::Map::new();
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        hooks.insert(kind.into(), hook(kind, &host_hook, &host_log));
    }
    // startContainer runs inside the container: path and log are resolved there.
    hooks.insert(
        "startContainer".into(),
        hook(
            "startContainer",
            Path::new("/hook.sh"),
            Path::new("/hooklog/log"),
        ),
    );
    env.config["hooks"] = Value::Object(hooks);
    host_log
}

/// Spec order and timing. runc 1.1.5 FAILS this: it runs poststart during `create` (status
/// "created", before startContainer); fixed in runc 1.2. The spec says poststart runs after
/// the user process started, before `start` returns.
#[test]
fn all_hooks_fire_in_order_with_state() {
    let mut env = Env::new();
    let log = install_logging_hooks(&mut env);
    let sync = env.shared_dir("sync", "/sync");
    env.args(&["sh", "-c", "while [ ! -e /sync/go ]; do sleep 0.05; done"]);
    let id = env.id();
    let read_log = || fs::read_to_string(&log).unwrap_or_default();

    env.create(&id).ok();
    assert_eq!(
        read_log(),
        "prestart creating\ncreateRuntime creating\ncreateContainer creating\n"
    );

    env.start(&id).ok();
    let started = "prestart creating\ncreateRuntime creating\ncreateContainer creating\n\
                   startContainer created\npoststart running\n";
    crate::harness::wait_for("poststart", || read_log().contains("poststart"));
    assert_eq!(read_log(), started);

    fs::write(sync.join("go"), "").unwrap();
    env.wait_status(&id, "stopped");
    env.delete(&id).ok();
    assert_eq!(read_log(), format!("{started}poststop stopped\n"));
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    let mut env = Env::new();
    let script = env.dir.join("fail.sh");
    write_script(&script, "#!/bin/sh\nexit 7\n");
    env.config["hooks"] = json!({"createRuntime": [{"path": script.to_str().unwrap()}]});
    env.args(&["sleep", "100"]);
    let id = env.id();
    let before = env.root_entries();
    let out = env.create(&id);
    assert_ne!(out.code, 0, "{out:?}");
    env.assert_nothing_left(&id, &before);
}

#[test]
fn hook_timeout_aborts_create() {
    let mut env = Env::new();
    env.config["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    env.args(&["sleep", "100"]);
    let id = env.id();
    let before = env.root_entries();
    let started = Instant::now();
    let out = env.create(&id);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "timeout not enforced: {:?}",
        started.elapsed()
    );
    env.assert_nothing_left(&id, &before);
}
