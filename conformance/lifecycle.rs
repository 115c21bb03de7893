//! Lifecycle and CLI surface: create/start/state/delete, list, kill, exit codes, pid files,
//! `--version` and `spec`.

use crate::harness::{alive, runtime, wait_for, Env};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};

/// Args for a container that waits until the host creates `/sync/go`, then exits 0.
const WAIT_FOR_GO: &[&str] = &["sh", "-c", "while [ ! -e /sync/go ]; do sleep 0.05; done"];

fn state_pid(state: &Value) -> i64 {
    state["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("pid not a number: {state}"))
}

#[test]
fn create_start_stop_delete() {
    let mut env = Env::new();
    let sync = env.shared_dir("sync", "/sync");
    env.args(WAIT_FOR_GO);
    let id = env.id();
    env.create(&id).ok();

    let st = env.state(&id);
    let keys: BTreeSet<&str> = st.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    for k in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(keys.contains(k), "state lacks {k}: {st}");
    }
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["status"], "created");
    assert_eq!(st["bundle"], env.bundle.to_str().unwrap());
    assert_eq!(st["rootfs"], env.rootfs().to_str().unwrap());
    let created = st["created"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(created)
        .unwrap_or_else(|e| panic!("created {created:?}: {e}"));
    let pid = state_pid(&st);
    assert!(
        pid > 0 && alive(pid),
        "created container has no live init: {st}"
    );
    assert!(env.root.join(&id).is_dir(), "no state dir <root>/<id>");

    env.start(&id).ok();
    assert_eq!(env.state(&id)["status"], "running");

    fs::write(sync.join("go"), "").unwrap();
    env.wait_status(&id, "stopped");
    assert_eq!(
        state_pid(&env.state(&id)),
        0,
        "a stopped container reports pid 0"
    );

    env.delete(&id).ok();
    assert!(!env.root.join(&id).exists(), "delete left <root>/<id>");
    let gone = env.rt(&["state", &id]);
    assert_ne!(gone.code, 0);
    assert!(gone.stderr.contains("does not exist"), "{gone:?}");
}

#[test]
fn start_twice_fails() {
    let mut env = Env::new();
    env.args(&["sleep", "100"]);
    let id = env.id();
    env.create(&id).ok();
    env.start(&id).ok();
    assert_ne!(env.start(&id).code, 0, "second start must fail");
    assert_eq!(env.state(&id)["status"], "running");
}

#[test]
fn delete_running_needs_force() {
    let mut env = Env::new();
    env.args(&["sleep", "100"]);
    let id = env.id();
    env.create(&id).ok();
    env.start(&id).ok();
    let pid = state_pid(&env.state(&id));

    assert_ne!(
        env.delete(&id).code,
        0,
        "plain delete of a running container must fail"
    );
    assert!(alive(pid), "failed delete killed the container");

    env.rt(&["delete", "--force", &id]).ok();
    assert!(!env.root.join(&id).exists());
    wait_for("init to die", || !alive(pid));
}

#[test]
fn list_table_quiet_and_json() {
    let mut env = Env::new();
    let empty = env.rt(&["list", "--format", "json"]);
    assert_eq!(
        empty.ok().stdout.trim(),
        "null",
        "empty list --format json prints null (runc)"
    );

    env.args(&["sleep", "100"]);
    let (a, b) = (env.id(), env.id());
    env.create(&a).ok();
    env.create(&b).ok();
    env.start(&b).ok();

    let table = env.rt(&["list"]);
    let mut lines = table.ok().stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    for (id, status) in [(&a, "created"), (&b, "running")] {
        let row = rows
            .iter()
            .find(|r| r[0] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {rows:?}"));
        assert_eq!(row[1], state_pid(&env.state(id)).to_string());
        assert_eq!(row[2], status);
        assert_eq!(row[3], env.bundle.to_str().unwrap());
        assert_eq!(row[5], "root");
    }

    let quiet = env.rt(&["list", "-q"]);
    let ids: BTreeSet<&str> = quiet.ok().stdout.lines().collect();
    assert_eq!(ids, BTreeSet::from([a.as_str(), b.as_str()]));

    let json = env.rt(&["list", "--format", "json"]);
    let arr: Value = serde_json::from_str(&json.ok().stdout).unwrap();
    let arr = arr.as_array().expect("list json is an array");
    assert_eq!(arr.len(), 2);
    for c in arr {
        assert_eq!(c["owner"], "root", "{c}");
        assert_eq!(
            c["status"],
            if c["id"] == a.as_str() {
                "created"
            } else {
                "running"
            }
        );
    }
}

/// Enough containers for `list` to spread them over threads: every one listed once, in id
/// order, each with its own status (created, running, paused, stopped) and pid.
#[test]
fn list_of_many_containers_keeps_order_and_each_status() {
    let mut env = Env::new();
    env.args(&["sleep", "100"]);
    let ids: Vec<String> = (0..150).map(|_| env.id()).collect();
    for id in &ids {
        env.create(id).ok();
    }
    let (running, paused, stopped) = (&ids[7], &ids[77], &ids[140]);
    for id in [running, paused, stopped] {
        env.start(id).ok();
    }
    env.rt(&["pause", paused]).ok();
    env.kill(stopped, "KILL").ok();
    env.wait_status(stopped, "stopped");

    let json = env.rt(&["list", "--format", "json"]);
    let arr: Value = serde_json::from_str(&json.ok().stdout).unwrap();
    let listed: Vec<&Value> = arr.as_array().expect("an array").iter().collect();
    let mut sorted = ids.clone();
    sorted.sort();
    let order: Vec<&str> = listed
        .iter()
        .map(|c| c["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(order, sorted, "every container once, in id order");
    for c in listed {
        let id = c["id"].as_str().unwrap();
        let want = match id {
            _ if id == running => "running",
            _ if id == paused => "paused",
            _ if id == stopped => "stopped",
            _ => "created",
        };
        assert_eq!(c["status"], want, "{c}");
        assert_eq!(c["pid"], env.state(id)["pid"], "{c}");
    }
}

#[test]
fn pid_file_matches_state() {
    let mut env = Env::new();
    env.args(&["sleep", "100"]);
    let id = env.id();
    let pid_file = env.dir.join("init.pid");
    env.write_config();
    env.rt(&[
        "create",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ])
    .ok();
    let written = fs::read_to_string(&pid_file).expect("pid file written");
    assert_eq!(written.trim(), state_pid(&env.state(&id)).to_string());
}

#[test]
fn run_propagates_exit_code() {
    let mut env = Env::new();
    env.args(&["sh", "-c", "exit 3"]);
    assert_eq!(env.run(&env.id()).code, 3);
    env.args(&["true"]);
    assert_eq!(env.run(&env.id()).code, 0);
}

#[test]
fn run_killed_by_signal_exits_128_plus_signal() {
    let mut env = Env::new();
    env.args(&["sleep", "100"]);
    env.write_config();
    let id = env.id();
    let pid_file = env.dir.join("run.pid");
    let mut child = Command::new(runtime())
        .arg("--root")
        .arg(&env.root)
        .args([
            "run",
            "--bundle",
            env.bundle.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("pid file", || {
        fs::read_to_string(&pid_file).is_ok_and(|s| !s.trim().is_empty())
    });
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(crate::harness::exit_code(status), 128 + 9);
}

#[test]
fn kill_delivers_signals_by_name_and_number() {
    let mut env = Env::new();
    let out = env.shared_dir("out", "/out");
    env.args(&[
        "sh",
        "-c",
        "trap 'echo TERM >> /out/sig' TERM; trap 'echo USR1 >> /out/sig' USR1; \
                 touch /out/ready; while true; do sleep 0.05; done",
    ]);
    let id = env.id();
    env.create(&id).ok();
    env.start(&id).ok();
    wait_for("trap handlers", || out.join("ready").exists());
    let sig_log = || fs::read_to_string(out.join("sig")).unwrap_or_default();

    env.rt(&["kill", &id]).ok();
    wait_for("default signal TERM", || sig_log() == "TERM\n");
    env.kill(&id, "SIGUSR1").ok();
    wait_for("SIGUSR1 by name", || sig_log() == "TERM\nUSR1\n");
    env.kill(&id, "10").ok();
    wait_for("signal 10 by number", || sig_log() == "TERM\nUSR1\nUSR1\n");
    env.kill(&id, "KILL").ok();
    env.wait_status(&id, "stopped");
}

#[test]
fn kill_all_reaches_every_process() {
    let mut env = Env::new();
    let out = env.shared_dir("out", "/out");
    // Without a private pid namespace, killing init does not kill its children.
    env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    env.args(&["sh", "-c", "sleep 100 & echo $! > /out/child; sleep 100"]);
    let id = env.id();
    env.create(&id).ok();
    env.start(&id).ok();
    wait_for("child pid", || {
        fs::read_to_string(out.join("child")).is_ok_and(|s| s.ends_with('\n'))
    });
    let child: i64 = fs::read_to_string(out.join("child"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(child));

    env.rt(&["kill", "--all", &id, "KILL"]).ok();
    wait_for("the child to be killed by kill --all", || !alive(child));
    env.wait_status(&id, "stopped");
}

#[test]
fn version_output_shape() {
    let out = Env::new().rt(&["--version"]);
    let lines: Vec<&str> = out.ok().stdout.lines().collect();
    let first: Vec<&str> = lines[0].split_whitespace().collect();
    assert!(
        first.len() == 3 && first[1] == "version",
        "first line `<name> version X`: {lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("commit: ")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("spec: ")), "{lines:?}");
}

#[test]
fn spec_writes_runnable_config() {
    let env = Env::new();
    let bundle = env.bundle.to_str().unwrap();
    env.rt(&["spec", "--bundle", bundle]).ok();
    let path = env.bundle.join("config.json");
    let mut cfg: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(cfg["root"]["path"], "rootfs");
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["args"] = serde_json::json!(["true"]);
    fs::write(&path, cfg.to_string()).unwrap();
    let id = env.id();
    let out = env.rt(&["run", "--bundle", bundle, &id]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_ne!(
        env.rt(&["spec", "--bundle", bundle]).code,
        0,
        "spec must refuse to overwrite config.json"
    );
}
