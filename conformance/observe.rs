//! The interception layer's observation (`process.interception.observe`): the named syscalls
//! notify ward's supervisor, which records them in <state>/violations.jsonl and lets them
//! continue. ward-only (runc has no supervisor).

use crate::harness::{alive, runtime_is_runc, wait_for, Env};
use serde_json::{json, Value};

fn records(env: &Env, id: &str) -> Vec<Value> {
    std::fs::read_to_string(env.root.join(id).join("violations.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn execs(env: &Env, id: &str) -> Vec<Vec<String>> {
    records(env, id)
        .iter()
        .filter(|r| r["type"] == "observe" && r["syscall"] == "execve")
        .map(|r| serde_json::from_value(r["argv"].clone()).unwrap_or_default())
        .collect()
}

fn supervisor_of(env: &Env, id: &str) -> i64 {
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(env.root.join(id).join("state.json")).unwrap(),
    )
    .unwrap();
    state["supervisor"][0]
        .as_i64()
        .expect("a supervisor is recorded")
}

#[test]
fn execve_is_observed_with_argv_for_init_and_exec() {
    if runtime_is_runc() {
        return;
    }
    let mut env = Env::new();
    env.args(&["sh", "-c", "/bin/true first; sleep 60"]);
    env.config["process"]["interception"] = json!({"observe": ["execve"]});
    let id = env.id();
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    env.rt(&["run", "-d", "--bundle", &b, &id]).ok();
    wait_for("init's execs recorded", || {
        execs(&env, &id)
            .iter()
            .any(|a| a == &["/bin/true", "first"])
    });
    let first = execs(&env, &id);
    assert_eq!(
        first[0],
        ["sh", "-c", "/bin/true first; sleep 60"],
        "{first:?}"
    );
    let out = env.rt(&["exec", &id, "/bin/echo", "from-exec"]);
    assert_eq!(out.stdout, "from-exec\n", "{out:?}");
    wait_for("exec recorded", || {
        execs(&env, &id)
            .iter()
            .any(|a| a == &["/bin/echo", "from-exec"])
    });
    for r in records(&env, &id) {
        assert_eq!(r["id"], id.as_str());
        assert!(r["source"].as_str().unwrap().contains("workload-supplied"));
        assert!(r["decision"].as_str().unwrap().starts_with("continue"));
    }
    let supervisor = supervisor_of(&env, &id);
    env.rt(&["delete", "--force", &id]).ok();
    assert!(!alive(supervisor), "the supervisor outlived delete");
    assert!(!env.root.join(&id).exists());
}

/// Threads of a process (the supervisor serves each listener with one).
fn threads(pid: i64) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn an_exec_listener_ends_with_its_process() {
    if runtime_is_runc() {
        return;
    }
    let mut env = Env::new();
    env.config["process"]["interception"] = json!({"observe": ["execve"]});
    let id = env.run_sleeping();
    let supervisor = supervisor_of(&env, &id);
    wait_for("init's listener served", || threads(supervisor) == 2);
    for i in 0..5 {
        let out = env.rt(&["exec", &id, "/bin/echo", &i.to_string()]);
        assert_eq!(out.code, 0, "{out:?}");
    }
    // Each exec brought a listener (and a serving thread); its process is gone, so is the thread.
    wait_for("the exec listeners' threads to end", || {
        threads(supervisor) == 2
    });
    wait_for("sleep's and the five echos' execs logged", || {
        execs(&env, &id).len() == 6
    });
    env.rt(&["delete", "--force", &id]).ok();
}

#[test]
fn without_the_supervisor_observed_calls_fail_but_walls_hold() {
    if runtime_is_runc() {
        return;
    }
    let mut env = Env::new();
    let shared = env.shared_dir("s", "/s");
    // Every 0.1 s: try to exec (observed) and to connect (denied by the egress wall).
    env.args(&["sh", "-c", "while :; do if /bin/true; then echo ok > /s/exec; else echo fail > /s/exec; fi; sleep 0.1; done"]);
    env.config["process"]["interception"] =
        json!({"observe": ["execve"], "network": {"default": "deny"}});
    let id = env.id();
    env.create(&id).ok();
    env.start(&id).ok();
    wait_for("execs work", || {
        std::fs::read_to_string(shared.join("exec")).is_ok_and(|s| s == "ok\n")
    });
    let supervisor = supervisor_of(&env, &id);
    assert_eq!(env.state(&id)["helpers"], json!({"supervisor": "running"}));
    // `events` streams until the container stops; it must report the death as it happens.
    let events_out = env.dir.join("events.out");
    let mut events = std::process::Command::new(&env.binary)
        .arg("--root")
        .arg(&env.root)
        .args(["events", "--interval", "200ms", &id])
        .stdout(std::fs::File::create(&events_out).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The kernel answers ENOSYS for a notifying syscall nobody listens to.
    wait_for("execs fail without a listener", || {
        std::fs::read_to_string(shared.join("exec")).is_ok_and(|s| s == "fail\n")
    });
    // state and events say so.
    assert_eq!(env.state(&id)["helpers"], json!({"supervisor": "exited"}));
    wait_for("an error event for the supervisor", || {
        std::fs::read_to_string(&events_out).is_ok_and(|t| {
            t.lines().any(|l| {
                serde_json::from_str::<serde_json::Value>(l).is_ok_and(|e| {
                    e["type"] == "error"
                        && e["id"] == id.as_str()
                        && e["data"]["helper"] == "supervisor"
                })
            })
        })
    });
    let _ = events.kill();
    let _ = events.wait();
    // The egress wall is the kernel's and does not depend on the supervisor.
    let out = env.rt(&["exec", &id, "nc", "127.0.0.1", "80"]);
    assert_ne!(out.code, 0, "{out:?}");
    env.rt(&["delete", "--force", &id]).ok();
}

#[test]
fn one_listener_only_and_unknown_names_refused() {
    if runtime_is_runc() {
        return;
    }
    for (config_change, word) in [
        (
            json!({"listenerPath": "/run/ward-test-listener.sock", "defaultAction": "SCMP_ACT_ALLOW"}),
            "only one seccomp listener",
        ),
        (Value::Null, "cannot be observed"),
    ] {
        let mut env = Env::new();
        env.args(&["true"]);
        if config_change.is_null() {
            env.config["process"]["interception"] = json!({"observe": ["ptrace"]});
        } else {
            env.config["process"]["interception"] = json!({"observe": ["execve"]});
            env.config["linux"]["seccomp"] = config_change;
        }
        env.assert_run_refused(word);
    }
}

/// A container that joins another's pid namespace by path (a pod's app container joining its
/// pause): ward joins it for its children only to fork init, and must come back before it forks
/// anything else, or its supervisor is born a process of the container's pid namespace, in the
/// workload's view and reach. (The systemd driver hung on the same cause: the kernel refuses new
/// threads while the pid namespace for children differs; see integration/systemd-vm pod_pidns.)
#[test]
fn the_supervisor_of_a_container_joining_a_pid_namespace_stays_outside_it() {
    if runtime_is_runc() {
        return;
    }
    let mut pause = Env::new();
    let pause_id = pause.run_sleeping();
    let pause_pid = pause.state(&pause_id)["pid"].as_i64().unwrap();
    let pause_ns = std::fs::read_link(format!("/proc/{pause_pid}/ns/pid")).unwrap();

    let mut env = Env::new();
    env.args(&["sleep", "60"]);
    env.config["linux"]["namespaces"] = json!([
        {"type": "pid", "path": format!("/proc/{pause_pid}/ns/pid")},
        {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}
    ]);
    env.config["process"]["interception"] = json!({"observe": ["execve"]});
    let id = env.id();
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    env.rt(&["run", "-d", "--bundle", &b, &id]).ok();
    let init = env.state(&id)["pid"].as_i64().unwrap();
    let supervisor = supervisor_of(&env, &id);
    let ns_of = |pid: i64| std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_eq!(
        ns_of(init),
        pause_ns,
        "init did not join the pause's pid namespace"
    );
    assert_eq!(
        ns_of(supervisor),
        std::fs::read_link("/proc/self/ns/pid").unwrap(),
        "the supervisor is in the container's pid namespace, not ward's"
    );
    // Seen from inside: the pause's namespace holds the pause and the app's init, nothing of ward.
    let inside = env.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for p in /proc/[0-9]*/comm; do read c < $p && echo $c; done",
    ]);
    env.rt(&["delete", "--force", &id]).ok();
    pause.rt(&["delete", "--force", &pause_id]).ok();
    let mut comms: Vec<&str> = inside.stdout.lines().collect();
    comms.sort_unstable();
    assert_eq!(
        comms,
        ["sh", "sleep", "sleep"],
        "processes in the pod's pid namespace (pause, init, the exec'd sh): {inside:?}"
    );
    assert!(!alive(supervisor), "the supervisor outlived delete");
}
