//! `exec`: a process joining a running container: its namespaces (pid included), cgroup,
//! user, environment, capabilities and seccomp filter; exit codes as runc's.

use crate::harness::{runtime_is_runc, Env};
use serde_json::json;

fn init_pid(env: &Env, id: &str) -> i64 {
    env.state(id)["pid"].as_i64().unwrap()
}

#[test]
fn exec_joins_every_namespace_and_sees_init_as_pid_1() {
    let mut env = Env::new();
    let id = env.run_sleeping();
    let pid = init_pid(&env, &id);
    let out = env.rt(&["exec", &id, "sh", "-c", "for n in ipc mnt net pid uts cgroup; do readlink /proc/self/ns/$n; done; cat /proc/1/cmdline | tr '\\0' ' '"]);
    out.ok();
    let mut want = String::new();
    for n in ["ipc", "mnt", "net", "pid", "uts", "cgroup"] {
        want.push_str(
            &std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                .unwrap()
                .to_string_lossy(),
        );
        want.push('\n');
    }
    want.push_str("sleep 60 ");
    assert_eq!(out.stdout, want);
}

#[test]
fn exec_exit_codes_and_refusals() {
    let mut env = Env::new();
    let id = env.run_sleeping();
    assert_eq!(env.rt(&["exec", &id, "sh", "-c", "exit 7"]).code, 7);
    let missing = env.rt(&["exec", &id, "no-such-binary"]);
    assert_eq!(missing.code, 255, "{missing:?}");
    assert!(
        missing.stderr.contains("executable file not found"),
        "{missing:?}"
    );
    env.rt(&["pause", &id]).ok();
    let paused = env.rt(&["exec", &id, "true"]);
    assert_ne!(paused.code, 0);
    assert!(paused.stderr.contains("paused"), "{paused:?}");
    env.rt(&["resume", &id]).ok();
    env.kill(&id, "KILL").ok();
    env.wait_status(&id, "stopped");
    let stopped = env.rt(&["exec", &id, "true"]);
    assert_ne!(stopped.code, 0);
    assert!(stopped.stderr.contains("stopped"), "{stopped:?}");
}

#[test]
fn exec_flags_user_env_cwd_caps_nnp() {
    let mut env = Env::new();
    env.config["process"]["noNewPrivileges"] = json!(false);
    let id = env.run_sleeping();
    let out = env.rt(&[
        "exec",
        "-u",
        "1000:1000",
        "-g",
        "10",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--cap",
        "CAP_NET_RAW",
        "--no-new-privs",
        &id,
        "sh",
        "-c",
        "id -u; id -g; id -G; echo $FOO; pwd; grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status",
    ]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        &lines[..5],
        ["1000", "1000", "1000 10", "bar", "/tmp"],
        "{out:?}"
    );
    // CAP_NET_RAW is bit 13 = 0x2000, added to the container's default set.
    let bnd = u64::from_str_radix(lines[5].split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_ne!(bnd & (1 << 13), 0, "{out:?}");
    assert_eq!(lines[6].split_whitespace().nth(1), Some("1"));
}

#[test]
fn exec_with_process_json_and_tty() {
    let mut env = Env::new();
    let id = env.run_sleeping();
    let process = json!({"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo from-json $X"],
        "env": ["PATH=/bin", "X=1"], "cwd": "/"});
    let p = env.dir.join("process.json");
    std::fs::write(&p, process.to_string()).unwrap();
    let out = env.rt(&["exec", "--process", p.to_str().unwrap(), &id]);
    assert_eq!(out.stdout, "from-json 1\n", "{out:?}");
    // A pty of ward's own even when the caller has no terminal (runc 1.1.5 insists on
    // opening /dev/tty of the caller and fails here).
    let tty = env.rt(&["exec", "-t", &id, "tty"]);
    assert!(tty.stdout.starts_with("/dev/pts/"), "{tty:?}");
}

#[test]
fn exec_is_under_the_container_seccomp_filter() {
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]});
    let mut env = crate::seccomp::probe_env(&crate::harness::runtime(), &profile, "sys 39");
    let id = env.run_sleeping();
    let out = env.rt(&["exec", &id, "/probe", "sys", "110"]);
    assert_eq!(out.stdout, crate::seccomp::err(77), "{out:?}");
    if !runtime_is_runc() {
        assert_eq!(out.code, 0);
    }
}
