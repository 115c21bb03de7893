//! The container process: user, groups, umask, capabilities, rlimits, no_new_privs, cwd,
//! environment and inherited file descriptors.

use crate::harness::{runtime_is_runc, Env};
use serde_json::json;
use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

#[test]
fn user_groups_and_umask() {
    let mut env = Env::new();
    env.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 23});
    let f = env.check(&[]);
    assert_eq!(f.get("uid"), "1000");
    assert_eq!(f.get("gid"), "1000");
    let groups: BTreeSet<&str> = f.get("groups").split_whitespace().collect();
    assert_eq!(groups, BTreeSet::from(["1000", "10", "20"]));
    assert_eq!(f.get("umask"), "0027");
}

#[test]
fn root_user_defaults() {
    let f = Env::new().check(&[]);
    assert_eq!(
        (f.get("uid"), f.get("gid"), f.get("groups")),
        ("0", "0", "0")
    );
    assert_eq!(f.get("umask"), "0022", "default umask is 0022");
}

#[test]
fn capabilities_exact_sets() {
    let mut env = Env::new();
    // CAP_CHOWN(0) CAP_KILL(5) CAP_NET_BIND_SERVICE(10) CAP_SYS_ADMIN(21) = 0x200421
    let four = json!([
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_ADMIN"
    ]);
    // For uid 0, execve raises effective to permitted, so they are configured equal.
    env.config["process"]["capabilities"] = json!({
        "bounding": four, "permitted": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_CHOWN"], "ambient": []
    });
    let f = env.check(&[]);
    assert_eq!(f.get("CapBnd"), "0000000000200421");
    assert_eq!(f.get("CapPrm"), "0000000000000021");
    assert_eq!(f.get("CapEff"), "0000000000000021");
    assert_eq!(f.get("CapInh"), "0000000000000001");
    assert_eq!(f.get("CapAmb"), "0000000000000000");
}

#[test]
fn ambient_capabilities_for_non_root() {
    let mut env = Env::new();
    let set = json!(["CAP_NET_BIND_SERVICE"]);
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    env.config["process"]["capabilities"] = json!({"bounding": set, "permitted": set, "effective": set, "inheritable": set, "ambient": set});
    let f = env.check(&[]);
    for k in ["CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"] {
        assert_eq!(f.get(k), "0000000000000400", "{k}");
    }
}

#[test]
fn rlimits_applied() {
    let mut env = Env::new();
    env.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}
    ]);
    let f = env.check(&[]);
    assert_eq!(f.get("limit.nofile"), "512 2048");
    assert_eq!(f.get("limit.nproc"), "300 400");
}

#[test]
fn no_new_privileges_true_and_false() {
    let mut env = Env::new();
    assert_eq!(env.check(&[]).get("NoNewPrivs"), "1");
    env.config["process"]["noNewPrivileges"] = false.into();
    assert_eq!(env.check(&[]).get("NoNewPrivs"), "0");
}

#[test]
fn cwd_existing_and_created() {
    let mut env = Env::new();
    env.config["process"]["cwd"] = "/tmp".into();
    assert_eq!(env.check(&[]).get("cwd"), "/tmp");
    // A cwd that does not exist in the image is created (runc does this even on a read-only root).
    env.config["process"]["cwd"] = "/work/deep/dir".into();
    assert_eq!(env.check(&[]).get("cwd"), "/work/deep/dir");
    assert!(env.rootfs().join("work/deep/dir").is_dir());
}

#[test]
fn env_passed_and_home_from_passwd() {
    let mut env = Env::new();
    env.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY="]);
    let f = env.check(&[]);
    assert_eq!(f.get("env.FOO"), "bar baz");
    assert_eq!(f.get("env.EMPTY"), "");
    assert_eq!(f.get("env.PATH"), "/bin");
    assert_eq!(
        f.get("env.HOME"),
        "/root",
        "HOME from /etc/passwd for uid 0"
    );

    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    assert_eq!(
        env.check(&[]).get("env.HOME"),
        "/home/tester",
        "HOME from /etc/passwd for uid 1000"
    );

    env.config["process"]["env"] = json!(["PATH=/bin", "HOME=/custom"]);
    assert_eq!(
        env.check(&[]).get("env.HOME"),
        "/custom",
        "an explicit HOME wins"
    );
}

/// Lists the container shell's own fds (`ls -l` lines `... <fd> -> <target>`); `; true` keeps
/// the shell from exec'ing ls, whose own directory fd would otherwise show up.
const LIST_FDS: &[&str] = &["sh", "-c", "ls -l /proc/$$/fd; true"];

/// Runs LIST_FDS with a non-CLOEXEC file open at fd 3 in the runtime; returns the fd numbers.
fn fds_seen(env: &mut Env, extra: &[&str]) -> (BTreeSet<String>, String) {
    env.args(LIST_FDS);
    env.write_config();
    let secret = env.dir.join("secret-leak");
    std::fs::write(&secret, "host secret").unwrap();
    let file = std::fs::File::open(&secret).unwrap();
    let raw = file.as_raw_fd();
    let id = env.id();
    let mut args = vec!["run", "--bundle", env.bundle.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(&id);
    // SAFETY: the pre_exec closure only calls dup2 and fcntl, async-signal-safe.
    let out = env.rt_cmd(&args, |cmd| unsafe {
        cmd.pre_exec(move || {
            // dup2 clears CLOEXEC on the copy; fcntl covers raw == 3, where dup2 is a no-op.
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    });
    assert_eq!(out.code, 0, "{out:?}");
    let fds = out
        .stdout
        .lines()
        .filter(|l| l.contains(" -> "))
        .filter_map(|l| l.split(" -> ").next()?.split_whitespace().last())
        .map(String::from)
        .collect();
    (fds, out.stdout)
}

#[test]
fn host_fds_do_not_leak() {
    // CVE-2024-21626 class: only stdio reaches the container process.
    let (fds, raw) = fds_seen(&mut Env::new(), &[]);
    assert_eq!(
        fds,
        BTreeSet::from(["0", "1", "2"].map(String::from)),
        "{raw}"
    );
    assert!(!raw.contains("secret-leak"), "{raw}");
}

#[test]
fn preserve_fds_passes_fd_3() {
    let (fds, raw) = fds_seen(&mut Env::new(), &["--preserve-fds", "1"]);
    assert_eq!(
        fds,
        BTreeSet::from(["0", "1", "2", "3"].map(String::from)),
        "{raw}"
    );
    assert!(
        raw.lines()
            .any(|l| l.contains(" 3 -> ") && l.ends_with("secret-leak")),
        "{raw}"
    );
}

#[test]
fn signals_start_with_default_dispositions() {
    // Ignored signals survive execve: a runtime written in a language that ignores SIGPIPE
    // (Rust does) must not hand that on. Read by the container process itself, not a shell
    // (busybox sh ignores SIGQUIT on its own). runc 1.1.5 passes on an ignored signal 32.
    let mut env = Env::new();
    env.args(&["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]);
    let id = env.id();
    let out = env.run(&id);
    out.ok();
    let facts: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        facts,
        vec!["SigBlk: 0000000000000000", "SigIgn: 0000000000000000"]
    );
}

/// No PATH in `process.env`: args[0] is looked up as execvp(3) does (the runtime-spec gives
/// args execvp's semantics), in a default search path, and PATH stays unset in the process.
/// runc 1.1.5 fails ("executable file not found in $PATH"): a deliberate difference (README).
#[test]
fn args0_without_path_in_env_is_looked_up_as_execvp_does() {
    let mut env = Env::new();
    env.config["process"]["env"] = json!(["FOO=1"]);
    env.args(&["env"]);
    let out = env.run(&env.id());
    if runtime_is_runc() && out.code != 0 {
        eprintln!("difference: runc 1.1.5 without PATH: {}", out.stderr);
        return;
    }
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.lines().any(|l| l == "FOO=1"), "{out:?}");
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("PATH=")),
        "PATH was added: {out:?}"
    );
}
