//! Landlock (ward's `process.landlock` extension and the `org.ward.landlock` annotation):
//! filesystem, TCP port and scope rulesets enforced on the container process and on `exec`,
//! observed through the errors busybox prints. runc has no Landlock: these tests skip under it.

use crate::harness::{runtime_is_runc, wait_file, Env, Out};
use serde_json::{json, Value};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::PathBuf;
use std::process::Command;

fn skip() -> bool {
    if runtime_is_runc() {
        eprintln!("skipped: runc has no Landlock support");
        return true;
    }
    if crate::skip::landlock_abi() < 1 {
        crate::skip::skipped("Landlock is not enabled in this kernel");
        return true;
    }
    false
}

/// Write rights handled; granted only beneath /tmp.
fn tmp_only() -> Value {
    json!({"ruleset": {"handledAccessFS": ["write_file", "make_reg"]},
        "rules": {"pathBeneath": [{"allowedAccess": ["write_file", "make_reg"], "paths": ["/tmp"]}]}})
}

/// An Env with a writable root running `sh -c script`, optionally under `landlock`.
fn sh_env(landlock: Option<Value>, script: &str) -> Env {
    let mut env = Env::new();
    env.config["root"]["readonly"] = json!(false);
    if let Some(l) = landlock {
        env.config["process"]["landlock"] = l;
    }
    env.args(&["sh", "-c", script]);
    env
}

fn add_cap(env: &mut Env, cap: &str) {
    for set in ["bounding", "effective", "permitted"] {
        let caps = env.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap();
        caps.push(json!(cap));
    }
}

fn run(env: &Env) -> Out {
    env.run(&env.id())
}

const WRITES: &str = "{ echo a > /tmp/a && echo tmp-ok; echo b > /x && echo root-ok; } 2>&1";
const WRITES_DENIED: &str = "tmp-ok\nsh: can't create /x: Permission denied\n";

#[test]
fn writes_only_beneath_the_granted_path() {
    if skip() {
        return;
    }
    let out = run(&sh_env(Some(tmp_only()), WRITES));
    assert_eq!(out.stdout, WRITES_DENIED, "{out:?}");
    // Control: the root is writable, so without Landlock both writes succeed.
    let out = run(&sh_env(None, WRITES));
    assert_eq!(out.stdout, "tmp-ok\nroot-ok\n", "{out:?}");
}

#[test]
fn reads_only_the_listed_tree() {
    if skip() {
        return;
    }
    let read = ["execute", "read_file", "read_dir"];
    let policy = json!({"ruleset": {"handledAccessFS": read},
        "rules": {"pathBeneath": [{"allowedAccess": read, "paths": ["/bin"]}]}});
    let script = "{ ls /bin/busybox; cat /etc/passwd; ls /etc; /checker.sh; } 2>&1; true";
    let out = run(&sh_env(Some(policy), script));
    assert_eq!(
        out.stdout,
        "/bin/busybox\ncat: can't open '/etc/passwd': Permission denied\n\
         ls: can't open '/etc': Permission denied\nsh: /checker.sh: Permission denied\n",
        "{out:?}"
    );
    out.ok();
}

/// The listener's stdin is a pipe that stays open (`sleep 10 |`): with /dev/null, busybox nc
/// shuts its sending side down at once, and a client that polled before `echo` had written
/// saw that EOF first and exited 0 without sending "hello" (1 run in 30 on a loaded host).
#[test]
fn tcp_bind_and_connect_only_on_the_granted_port() {
    if skip() {
        return;
    }
    crate::require!(
        crate::skip::landlock_abi() >= 4,
        "Landlock ABI 4 (Linux 6.7+) absent"
    );
    let policy = json!({"ruleset": {"handledAccessNetwork": ["bind_tcp", "connect_tcp"]},
        "rules": {"netPort": [{"allowedAccess": ["bind_tcp", "connect_tcp"], "ports": [8080]}]}});
    let script = "ip link set lo up || exit 9
        sleep 10 | timeout 5 nc -l -p 8080 & server=$!
        for i in $(seq 50); do echo hello | timeout 5 nc 127.0.0.1 8080 2>/dev/null && break; sleep 0.1; done
        wait $server
        { timeout 2 nc -l -p 9090; timeout 2 nc 127.0.0.1 9090; } 2>&1; true";
    let mut env = sh_env(Some(policy), script);
    add_cap(&mut env, "CAP_NET_ADMIN");
    let out = run(&env);
    assert_eq!(
        out.stdout,
        "hello\nnc: bind: Permission denied\n\
         nc: can't connect to remote host (127.0.0.1): Permission denied\n",
        "{out:?}"
    );
}

/// The client (conformance/landlock_aclient.c), compiled statically once per test process.
fn aclient() -> PathBuf {
    crate::harness::static_binary("landlock-aclient", "landlock_aclient.c")
}

/// An abstract socket listening in the network namespace of `pid` (abstract names are
/// per-netns), bound from a thread of the test process, i.e. outside any Landlock domain.
fn abstract_listener(pid: i64, name: &str) -> UnixListener {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let name = name.to_string();
    std::thread::spawn(move || {
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(name).unwrap()).unwrap()
    })
    .join()
    .unwrap()
}

/// The container's init connects to an abstract socket bound outside the container.
fn connect_abstract(scoped: &[&str]) -> String {
    let mut env = Env::new();
    crate::harness::copy_executable(aclient(), env.rootfs().join("aclient"));
    let out_dir = env.shared_dir("out", "/out");
    env.config["process"]["landlock"] = json!({"ruleset": {"scoped": scoped}});
    env.args(&[
        "sh",
        "-c",
        "/aclient ward-ll-test > /out/r.tmp; mv /out/r.tmp /out/r",
    ]);
    let id = env.id();
    env.create(&id).ok();
    let _listener = abstract_listener(env.state(&id)["pid"].as_i64().unwrap(), "ward-ll-test");
    env.start(&id).ok();
    wait_file(&out_dir.join("r"))
}

#[test]
fn scoped_abstract_unix_socket_cannot_reach_outside_the_domain() {
    if skip() {
        return;
    }
    crate::require!(
        crate::skip::landlock_abi() >= 6,
        "Landlock ABI 6 (Linux 6.12+) absent"
    );
    assert_eq!(
        connect_abstract(&["abstract_unix_socket"]),
        "connect: Operation not permitted\n"
    );
    // Control: the signal scope alone leaves abstract sockets reachable.
    assert_eq!(connect_abstract(&["signal"]), "connect: ok\n");
}

#[test]
fn exec_is_confined_by_the_same_ruleset() {
    if skip() {
        return;
    }
    let mut env = sh_env(Some(tmp_only()), "");
    let id = env.run_sleeping();
    let out = env.rt(&["exec", &id, "sh", "-c", "echo x > /etc/x"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("can't create /etc/x: Permission denied"),
        "{out:?}"
    );
    let out = env.rt(&["exec", &id, "sh", "-c", "echo x > /tmp/x && cat /tmp/x"]);
    assert_eq!(out.stdout, "x\n", "{out:?}");
}

#[test]
fn applies_without_no_new_privileges() {
    if skip() {
        return;
    }
    let script =
        "{ grep NoNewPrivs /proc/self/status; echo a > /tmp/a && echo tmp-ok; echo b > /x; } 2>&1";
    let mut env = sh_env(Some(tmp_only()), script);
    env.config["process"]["noNewPrivileges"] = json!(false);
    let out = run(&env);
    assert_eq!(
        out.stdout, "NoNewPrivs:\t0\ntmp-ok\nsh: can't create /x: Permission denied\n",
        "{out:?}"
    );
}

#[test]
fn annotation_json_acts_as_the_field() {
    if skip() {
        return;
    }
    let mut env = sh_env(None, WRITES);
    env.config["annotations"] = json!({"org.ward.landlock": tmp_only().to_string()});
    let out = run(&env);
    assert_eq!(out.stdout, WRITES_DENIED, "{out:?}");
}

/// `auto` (or nothing), root writable, tmpfs on /tmp, /etc a readonlyPath, CAP_SYS_ADMIN.
/// The init writes beneath / and /tmp and tries to remount /etc rw itself; then the test
/// remounts /etc rw from outside (the "mount changed inside the wall" case) and the init
/// writes to /etc. Returns the init's report.
fn auto_run(auto: bool) -> String {
    let mut env = sh_env(
        None,
        "{ echo a > /tmp/a && echo tmp-ok; echo b > /root/x && echo root-ok
        mount -o remount,rw /etc && echo remount-ok
        until [ -e /out/go ]; do sleep 0.05; done
        echo c > /etc/x && echo etc-ok; } > /out/r.tmp 2>&1; mv /out/r.tmp /out/r",
    );
    env.mount(
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev"]}),
    );
    let out_dir = env.shared_dir("out", "/out");
    env.config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc"));
    add_cap(&mut env, "CAP_SYS_ADMIN");
    if auto {
        env.config["annotations"] = json!({"org.ward.landlock": "auto"});
    }
    let id = env.id();
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    env.rt(&["run", "-d", "--bundle", &b, &id]).ok();
    let pid = env.state(&id)["pid"].to_string();
    let mut remount = Command::new("nsenter");
    remount.args([
        "-t",
        &pid,
        "-m",
        "-p",
        "-r",
        "mount",
        "-o",
        "remount,bind,rw",
        "/etc",
    ]);
    env.capture(remount).ok();
    std::fs::write(out_dir.join("go"), "").unwrap();
    wait_file(&out_dir.join("r"))
}

#[test]
fn auto_holds_when_a_readonly_path_is_remounted() {
    if skip() {
        return;
    }
    assert_eq!(auto_run(false), "tmp-ok\nroot-ok\nremount-ok\netc-ok\n");
    // Landlock also refuses mount changes to a sandboxed process (EPERM, busybox's words).
    let report = auto_run(true);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 4, "{report}");
    assert_eq!(&lines[..2], ["tmp-ok", "root-ok"], "{report}");
    assert_eq!(
        lines[2], "mount: permission denied (are you root?)",
        "{report}"
    );
    assert_eq!(
        lines[3], "sh: can't create /etc/x: Permission denied",
        "{report}"
    );
}

/// `create` with `landlock` (and optionally the annotation `annotation`) must fail, leave
/// nothing, and print `want` in its error.
fn refused(landlock: Value, annotation: Option<&str>, want: &[&str]) {
    let mut env = sh_env(Some(landlock), "true");
    if let Some(a) = annotation {
        env.config["annotations"] = json!({"org.ward.landlock": a});
    }
    let id = env.id();
    let before = env.root_entries();
    let out = env.create(&id);
    assert_ne!(out.code, 0, "{out:?}");
    for w in want {
        assert!(out.stderr.contains(w), "no {w:?} in {out:?}");
    }
    env.assert_nothing_left(&id, &before);
}

#[test]
fn invalid_policies_fail_create_and_leave_nothing() {
    if skip() {
        return;
    }
    refused(
        tmp_only(),
        Some("auto"),
        &["process.landlock", "org.ward.landlock"],
    );
    let mut unknown = tmp_only();
    unknown["ruleset"]["handledAccessFS"][1] = json!("write_everything");
    refused(
        unknown,
        None,
        &[
            "process.landlock.ruleset.handledAccessFS[1]",
            "write_everything",
        ],
    );
    let mut unhandled = tmp_only();
    unhandled["rules"]["pathBeneath"][0]["allowedAccess"][1] = json!("remove_file");
    refused(
        unhandled,
        None,
        &["process.landlock.rules.pathBeneath[0].allowedAccess"],
    );
}

#[test]
fn disable_best_effort_makes_a_missing_rule_path_fatal() {
    if skip() {
        return;
    }
    let mut policy = tmp_only();
    policy["rules"]["pathBeneath"][0]["paths"] = json!(["/tmp", "/no-such-dir"]);
    policy["disableBestEffort"] = json!(true);
    refused(policy.clone(), None, &["/no-such-dir"]);
    policy["disableBestEffort"] = json!(false);
    let out = run(&sh_env(Some(policy), WRITES));
    assert_eq!(out.stdout, WRITES_DENIED, "{out:?}");
    assert!(
        out.stderr.contains("/no-such-dir") && out.stderr.contains("skipped"),
        "{out:?}"
    );
}
