//! Corners where a drop-in runtime must behave as runc (issue 14): cwd entered before the user
//! switch, fds the waiting init must not hold, rootfs propagation, hooks, the tty's owner and
//! bind sources only the runtime can reach.

use crate::harness::{runtime_is_runc, Env};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

/// runc enters process.cwd before switching to process.user and tries again after only when
/// the first try is refused: a cwd of mode 700 owned by root works for uid 1000.
#[test]
fn cwd_only_root_can_enter_works_for_a_non_root_user() {
    let mut env = Env::new();
    std::fs::set_permissions(
        env.rootfs().join("root"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    env.config["process"]["cwd"] = json!("/root");
    env.args(&[
        "sh",
        "-c",
        "pwd; id -u; ls . >/dev/null 2>&1 || echo cannot-list",
    ]);
    let out = env.run(&env.id());
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "/root\n1000\ncannot-list\n"),
        "{out:?}"
    );
}

/// Runs the runtime with stdout+stderr and fd 3 the write ends of two pipes (as a shell's
/// `$(... 2>&1)` and a harness reporting on fd 3 do) and reads them to EOF. A process left
/// behind holding either end (the waiting init, a detached container) keeps the reader from
/// ever seeing EOF. Returns the runtime's exit code and which pipes reached EOF within 10 s
/// (stdout is only waited for when `stdout` is true: without a terminal it is the container's).
fn eof_of_output_and_fd3(env: &Env, args: &[&str], stdout: bool) -> (i32, bool, bool) {
    use nix::fcntl::OFlag;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let (fd3_r, fd3_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let mut cmd = std::process::Command::new(&env.binary);
    cmd.arg("--root").arg(&env.root).args(args);
    cmd.stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(out_w.try_clone().unwrap()))
        .stdout(std::process::Stdio::from(out_w));
    let raw3 = fd3_w.as_raw_fd();
    // SAFETY: only dup2, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw3, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cmd.status().expect("spawn the runtime");
    drop(fd3_w);
    drop(cmd);
    let eof = |fd: OwnedFd| {
        let mut file = std::fs::File::from(fd);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while std::time::Instant::now() < deadline {
            let mut pfd = libc::pollfd {
                fd: file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                continue;
            }
            match std::io::Read::read(&mut file, &mut buf) {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
        false
    };
    let b = eof(fd3_r);
    let a = stdout && eof(out_r);
    (crate::harness::exit_code(status), a, b)
}

/// `out=$(runtime create --console-socket S ID)` returns: with a terminal the waiting init's
/// stdio is the pty, and no other fd of the caller may reach it.
#[test]
fn waiting_init_with_a_terminal_holds_none_of_the_callers_fds() {
    let mut env = Env::new();
    env.config["process"]["terminal"] = true.into();
    env.args(&["sh", "-c", "echo hi"]);
    env.write_config();
    let sock = env.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || crate::console::receive_fd(listener));
    let id = env.id();
    let bundle = env.bundle.to_str().unwrap().to_string();
    let args = [
        "create",
        "--bundle",
        &bundle,
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ];
    let (code, stdout_eof, fd3_eof) = eof_of_output_and_fd3(&env, &args, true);
    let master = receiver.join().unwrap();
    assert_eq!(code, 0);
    assert!(master.is_some(), "no pty master received");
    assert_eq!(env.state(&id)["status"], "created");
    assert!(
        stdout_eof,
        "the created container holds the caller's stdout or stderr"
    );
    assert!(fd3_eof, "the created container holds the caller's fd 3");
}

/// Without a terminal the init's stdio is the caller's (as runc), but fd 3 is not passed.
#[test]
fn waiting_init_without_a_terminal_holds_no_fd_above_stdio() {
    let env = Env::new();
    env.write_config();
    let id = env.id();
    let bundle = env.bundle.to_str().unwrap().to_string();
    let (code, _, fd3_eof) =
        eof_of_output_and_fd3(&env, &["create", "--bundle", &bundle, &id], false);
    assert_eq!(code, 0);
    assert_eq!(env.state(&id)["status"], "created");
    assert!(fd3_eof, "the created container holds the caller's fd 3");
}

/// `run -d` and `exec -d`: the detached processes hold no fd of the caller above stdio.
#[test]
fn detached_run_and_exec_hold_no_fd_above_stdio() {
    let mut env = Env::new();
    env.args(&["sleep", "60"]);
    env.write_config();
    let id = env.id();
    let bundle = env.bundle.to_str().unwrap().to_string();
    let (code, _, fd3_eof) =
        eof_of_output_and_fd3(&env, &["run", "-d", "--bundle", &bundle, &id], false);
    assert_eq!(code, 0);
    assert!(fd3_eof, "run -d: the container holds the caller's fd 3");
    let (code, _, fd3_eof) =
        eof_of_output_and_fd3(&env, &["exec", "-d", &id, "sleep", "60"], false);
    assert_eq!(code, 0);
    assert!(
        fd3_eof,
        "exec -d: the exec'd process holds the caller's fd 3"
    );
    env.kill(&id, "KILL");
}

/// LISTEN_FDS meant for the runtime (LISTEN_PID = its pid) reach the container right after
/// stdio with LISTEN_FDS=n and LISTEN_PID=1 in its environment; --preserve-fds come after them.
#[test]
fn listen_fds_and_preserved_fds_reach_the_container() {
    let mut env = Env::new();
    env.args(&[
        "sh",
        "-c",
        "echo fds $(ls /proc/self/fd | sort -n | tr '\\n' ' '); echo env $LISTEN_FDS $LISTEN_PID",
    ]);
    env.write_config();
    let id = env.id();
    let script = format!(
        "exec 3</dev/null 4</dev/null 5</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec {} --root {} run --preserve-fds 1 --bundle {} {id}",
        env.binary,
        env.root.display(),
        env.bundle.display()
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &script]);
    let out = env.capture(cmd);
    out.ok();
    // ls itself opens one more fd (its directory), the highest number.
    assert!(
        out.stdout.starts_with("fds 0 1 2 3 4 "),
        "fds 3 (LISTEN_FDS) and 4 (--preserve-fds) expected, 5 not: {out:?}"
    );
    assert!(!out.stdout.contains(" 5 "), "{out:?}");
    assert!(out.stdout.contains("env 1 1\n"), "{out:?}");
}

/// The propagation field of the container's `/` in its own mountinfo: `shared`, `master`,
/// `unbindable` or `private` (no optional field).
fn root_propagation(env: &mut Env, word: &str) -> crate::harness::Out {
    env.config["linux"]["rootfsPropagation"] = json!(word);
    env.args(&["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"]);
    let id = env.id();
    env.run(&id)
}

fn propagation_of(line: &str) -> &'static str {
    let fields: Vec<&str> = line.split(" - ").next().unwrap_or("").split(' ').collect();
    let optional = &fields[6.min(fields.len())..];
    if optional.iter().any(|f| f.starts_with("shared:")) {
        "shared"
    } else if optional.iter().any(|f| f.starts_with("master:")) {
        "master"
    } else if optional.contains(&"unbindable") {
        "unbindable"
    } else {
        "private"
    }
}

/// Bind-mounts `dir` onto itself as a shared mount (in the host's mount namespace) for the
/// life of the guard, so a bundle inside it sits on a shared mount, as on systemd hosts.
struct SharedMount(std::path::PathBuf);

impl SharedMount {
    fn new(dir: &std::path::Path) -> SharedMount {
        use nix::mount::{mount, MsFlags};
        mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        let guard = SharedMount(dir.to_path_buf());
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
        .unwrap();
        guard
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// linux.rootfsPropagation: every mode runs, with the bundle on a shared mount (pivot_root
/// refuses a shared new root or parent), and the container's `/` ends with the requested
/// propagation; without the field it is a slave of the host, as under runc.
#[test]
fn rootfs_propagation_every_mode_runs_and_applies() {
    for (word, want) in [
        ("shared", "shared"),
        ("rshared", "shared"),
        // runc's rule: non-recursive `slave` only reaches the namespace's `/`, and the shared
        // mount holding the rootfs is made private so pivot_root accepts it.
        ("slave", "private"),
        ("rslave", "master"),
        ("private", "private"),
        ("rprivate", "private"),
        ("unbindable", "unbindable"),
        ("", "master"),
    ] {
        let mut env = Env::new();
        let _shared = SharedMount::new(&env.dir);
        let out = root_propagation(&mut env, word);
        assert_eq!(out.code, 0, "rootfsPropagation {word:?}: {out:?}");
        if runtime_is_runc() && matches!(want, "shared" | "unbindable") {
            // runc 1.1 pivots into a private root and never applies these to it; newer runc
            // applies them after pivot_root, as ward does.
            eprintln!("skipped for runc 1.1: rootfsPropagation {word} is left private");
            continue;
        }
        assert_eq!(
            propagation_of(out.stdout.trim()),
            want,
            "rootfsPropagation {word:?}: {out:?}"
        );
    }
}

/// The process's stdio belongs to its user, as runc makes it (uid only; the group is kept):
/// a non-root process can reopen `/dev/stdout`, and its terminal is its own.
#[test]
fn stdio_and_terminal_belong_to_the_process_user() {
    let mut env = Env::new();
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    env.args(&["sh", "-c", "echo via-dev-stdout >/dev/stdout"]);
    let out = env.run(&env.id());
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "via-dev-stdout\n"),
        "{out:?}"
    );

    env.config["process"]["terminal"] = true.into();
    env.args(&[
        "sh",
        "-c",
        "stat -c owner=%u:%g -L /proc/self/fd/0 /dev/console; echo END",
    ]);
    let id = env.id();
    let (out, master) = crate::console::create_with_console(&env, &id);
    out.ok();
    env.start(&id).ok();
    let seen = crate::console::read_until(master.expect("pty master"), "END");
    let owners: Vec<&str> = seen.lines().filter(|l| l.starts_with("owner=")).collect();
    assert!(
        owners.len() == 2 && owners.iter().all(|l| l.trim() == "owner=1000:5"),
        "{seen:?}"
    );
}

/// Each hook kind, without `env` in its entry, dumps its environment; returns kind -> env.
fn hook_environments(env: &mut Env) -> std::collections::BTreeMap<String, String> {
    let dump = "#!/bin/sh\nenv | sort > \"$2\"\n";
    let host_dir = env.shared_dir("hookenv", "/hookenv");
    for path in [env.dir.join("dump.sh"), env.rootfs().join("dump.sh")] {
        std::fs::write(&path, dump).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ];
    let mut hooks = serde_json::Map::new();
    for kind in kinds {
        // startContainer runs inside the container: its paths are the container's.
        let (script, out) = if kind == "startContainer" {
            ("/dump.sh".to_string(), format!("/hookenv/{kind}"))
        } else {
            (
                env.dir.join("dump.sh").display().to_string(),
                host_dir.join(kind).display().to_string(),
            )
        };
        hooks.insert(
            kind.into(),
            json!([{"path": script, "args": ["dump.sh", kind, out]}]),
        );
    }
    env.config["hooks"] = serde_json::Value::Object(hooks);
    env.config["process"]["env"] = json!(["PATH=/bin:/usr/bin", "IN_CONTAINER=yes"]);
    env.args(&["true"]);
    env.write_config();
    let id = env.id();
    let bundle = env.bundle.to_str().unwrap().to_string();
    env.rt_cmd(&["run", "--bundle", &bundle, &id], |c| {
        c.env("FROM_CALLER", "yes");
    })
    .ok();
    kinds
        .iter()
        .map(|k| {
            let text = std::fs::read_to_string(host_dir.join(k)).unwrap_or_default();
            (k.to_string(), text)
        })
        .collect()
}

/// A hook without `env`: startContainer (run in the container's init) gets the container
/// process's environment, the runtime-side hooks get the runtime's own, as under runc.
#[test]
fn hooks_without_env_get_runcs_environment() {
    let mut env = Env::new();
    let got = hook_environments(&mut env);
    let start = &got["startContainer"];
    assert!(
        start.contains("IN_CONTAINER=yes\n"),
        "startContainer: {start:?}"
    );
    assert!(!start.contains("FROM_CALLER"), "startContainer: {start:?}");
    for kind in ["prestart", "createRuntime", "poststart"] {
        assert!(
            got[kind].contains("FROM_CALLER=yes\n"),
            "{kind}: {:?}",
            got[kind]
        );
        assert!(
            !got[kind].contains("IN_CONTAINER"),
            "{kind}: {:?}",
            got[kind]
        );
    }
    let create = &got["createContainer"];
    assert!(
        create.contains("IN_CONTAINER=yes\n"),
        "createContainer: {create:?}"
    );
    assert!(
        !create.contains("FROM_CALLER"),
        "createContainer: {create:?}"
    );
}

/// Hook failures, row by row of README's table: a failing startContainer hook fails `start`,
/// the user process never runs, poststart does not run, the container is stopped and delete
/// (with poststop) still works; a failing poststart hook is logged and `start` succeeds with
/// the container running (the spec; runc 1.1 kills the container instead).
#[test]
fn failing_start_container_and_poststart_hooks() {
    for failing in ["startContainer", "poststart"] {
        if crate::harness::runtime_is_runc() && failing == "poststart" {
            // runc 1.1 runs poststart during create (fixed in 1.2), and a failing one kills
            // the container, where the spec asks for a warning.
            eprintln!("skipped for runc: poststart runs during create in runc 1.1");
            continue;
        }
        let mut env = Env::new();
        let log_dir = env.shared_dir("hooklog", "/hooklog");
        let logger = "#!/bin/sh\necho \"$1\" >> \"$2\"\n";
        for path in [env.dir.join("log.sh"), env.rootfs().join("log.sh")] {
            std::fs::write(&path, logger).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let host = |kind: &str| {
            json!({"path": env.dir.join("log.sh").to_str().unwrap(),
                   "args": ["log.sh", kind, log_dir.join("log").to_str().unwrap()]})
        };
        // /bin/false exists on the host and in the busybox rootfs alike.
        let fail = json!({"path": "/bin/false", "args": ["false"]});
        let mut hooks = json!({
            "startContainer": [{"path": "/log.sh", "args": ["log.sh", "startContainer", "/hooklog/log"]}],
            "poststart": [host("poststart")],
            "poststop": [host("poststop")],
        });
        hooks[failing] = json!([fail]);
        env.config["hooks"] = hooks;
        env.args(&["sh", "-c", "echo ran > /hooklog/process; sleep 30"]);
        let id = env.id();
        env.create(&id).ok();
        let start = env.start(&id);
        let log = || std::fs::read_to_string(log_dir.join("log")).unwrap_or_default();
        if failing == "startContainer" {
            if crate::harness::runtime_is_runc() && start.code == 0 {
                // runc reads the exec fifo's "0" and returns before init runs the hook.
                eprintln!("skipped for runc: start succeeds though startContainer failed");
                env.wait_status(&id, "stopped");
                continue;
            }
            assert_ne!(start.code, 0, "{start:?}");
            env.wait_status(&id, "stopped");
            assert!(!log_dir.join("process").exists(), "the process ran");
            assert_eq!(log(), "", "poststart ran after a failing startContainer");
        } else {
            assert_eq!(start.code, 0, "{start:?}");
            assert!(start.stderr.contains("poststart"), "no warning: {start:?}");
            assert_eq!(env.state(&id)["status"], "running");
            assert_eq!(log(), "startContainer\n");
            env.kill(&id, "KILL").ok();
            env.wait_status(&id, "stopped");
        }
        env.delete(&id).ok();
        assert!(log().ends_with("poststop\n"), "{failing}: {:?}", log());
    }
}

/// Under a user namespace, a bind source inside a host directory the container's root cannot
/// enter (mode 700, owned by the host's root) still mounts: the runtime opens it from outside
/// the user namespace (runc's approach), not by path from inside.
#[test]
fn userns_bind_source_behind_a_private_host_dir_mounts() {
    let mut env = Env::new();
    env.with_userns();
    let private = env.dir.join("private");
    let shared = private.join("data");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("file"), "inside\n").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(shared.join("file"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.mount(json!({"destination": "/data", "type": "bind",
        "source": shared.to_str().unwrap(), "options": ["rbind", "ro"]}));
    // The rootfs is the host root's: the mount point must exist already.
    std::fs::create_dir_all(env.rootfs().join("data")).unwrap();
    env.args(&["cat", "/data/file"]);
    let out = env.run(&env.id());
    assert_eq!((out.code, out.stdout.as_str()), (0, "inside\n"), "{out:?}");
}

/// A config with large annotations (Kubernetes' last-applied-configuration can be hundreds of
/// KiB) runs, and the hooks init runs get the whole state with them on stdin.
#[test]
fn large_annotations_reach_init_hooks_whole() {
    let mut env = Env::new();
    let big = "x".repeat(300 * 1024);
    env.config["annotations"] = json!({ "big": big });
    let out_dir = env.shared_dir("hookout", "/hookout");
    let counter = "#!/bin/sh\nwc -c > \"$2\"\n";
    std::fs::write(env.rootfs().join("count.sh"), counter).unwrap();
    std::fs::set_permissions(
        env.rootfs().join("count.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    env.config["hooks"] = json!({
        "startContainer": [{"path": "/count.sh", "args": ["count.sh", "x", "/hookout/start"]}]
    });
    env.args(&["true"]);
    let out = env.run(&env.id());
    assert_eq!(out.code, 0, "{out:?}");
    let n: usize = std::fs::read_to_string(out_dir.join("start"))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(n > big.len(), "startContainer got {n} bytes of state");
}

/// Runs `<runtime> run` of this Env's config inside fresh `unshare` namespaces of the given
/// kinds (so a runtime that changed its own namespaces changes only throwaway ones), then
/// `after` in the same namespaces; the combined output.
fn run_in_unshared(env: &Env, unshare: &[&str], after: &str) -> crate::harness::Out {
    env.write_config();
    let id = env.id();
    let script = format!(
        "{} --root {} run --bundle {} {id} </dev/null; echo rc=$?; {after}",
        env.binary,
        env.root.display(),
        env.bundle.display()
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(unshare).args(["sh", "-c", &script]);
    env.capture(cmd)
}

/// Joining, by path, the mount namespace the runtime itself runs in would pivot and detach
/// that namespace's root (the host's, on a real host): refused, naming the field.
#[test]
fn joining_the_runtimes_own_mount_namespace_is_refused() {
    let mut env = Env::new();
    let ns = env.config["linux"]["namespaces"].as_array_mut().unwrap();
    for n in ns.iter_mut().filter(|n| n["type"] == "mount") {
        n["path"] = json!("/proc/self/ns/mnt");
    }
    if runtime_is_runc() {
        eprintln!("skipped for runc: 1.1.5 pivots the joined namespace (its own) away");
        return;
    }
    let out = run_in_unshared(
        &env,
        &["-m", "--propagation", "private"],
        "ls / | tr '\\n' ' '",
    );
    let host_root = std::fs::read_dir("/")
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name() == "work");
    assert!(out.stdout.contains("rc=1"), "{out:?}");
    assert!(
        out.stderr.contains("linux.namespaces[mount].path"),
        "{out:?}"
    );
    if host_root {
        assert!(
            out.stdout.contains("work"),
            "the runtime's root was replaced: {out:?}"
        );
    }
}

/// `hostname` with a UTS namespace joined by path that is the runtime's own would rename the
/// host: refused, naming the field (as the equivalent sysctl is).
#[test]
fn hostname_in_the_runtimes_own_uts_namespace_is_refused() {
    let mut env = Env::new();
    let ns = env.config["linux"]["namespaces"].as_array_mut().unwrap();
    for n in ns.iter_mut().filter(|n| n["type"] == "uts") {
        n["path"] = json!("/proc/self/ns/uts");
    }
    env.config["hostname"] = json!("set-by-container-config");
    env.args(&["true"]);
    if runtime_is_runc() {
        eprintln!("skipped for runc: 1.1.5 sets the hostname of the joined (its own) namespace");
        return;
    }
    let out = run_in_unshared(&env, &["-u"], "hostname");
    assert!(out.stdout.contains("rc=1"), "{out:?}");
    assert!(out.stderr.contains("hostname"), "{out:?}");
    assert!(
        !out.stdout.contains("set-by-container-config"),
        "the runtime's hostname changed: {out:?}"
    );
}

/// `exec` with an oomScoreAdj (Docker sets one on every exec): the process gets it.
#[test]
fn exec_applies_oom_score_adj() {
    let mut env = Env::new();
    let id = env.run_sleeping();
    let mut process = env.config["process"].clone();
    process["args"] = json!(["cat", "/proc/self/oom_score_adj"]);
    process["oomScoreAdj"] = json!(123);
    let pfile = env.dir.join("process.json");
    std::fs::write(&pfile, process.to_string()).unwrap();
    let out = env.rt(&["exec", "--process", pfile.to_str().unwrap(), &id]);
    assert_eq!((out.code, out.stdout.trim()), (0, "123"), "{out:?}");
    env.kill(&id, "KILL");
}
