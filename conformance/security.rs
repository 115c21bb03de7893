//! Regression tests for known container-escape classes (see RUNC-CONTRACT.md). Each test is
//! named after the CVE whose attack it replays and fails on a design vulnerable to it.
//! Filesystem/procfs redirection cases live in security_fs.rs (a submodule of this file).
//!
//! runc 1.1.5+ds1-1+deb12u1 (Debian, with the CVE-2024-21626 backport) fails the tests marked
//! "runc 1.1.5 FAILS" below; they assert the safe behaviour.

#[path = "security_fs.rs"]
mod fs_redirect;

use crate::harness::{runtime_is_runc, wait_for, Env, Out};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// An fd (>= 100, close-on-exec in this process) for `path`, to be dup'ed into a child.
fn fd_for(path: &Path) -> OwnedFd {
    let f = fs::File::open(path).unwrap();
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd that we then own.
    let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
    assert!(fd >= 100, "F_DUPFD_CLOEXEC: {}", io::Error::last_os_error());
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `<rt> --root R args` with each `(src, dst)` dup2'ed so the runtime inherits `dst` (no
/// CLOEXEC), the way a careless caller (or a compromised parent) would leak fds into it.
fn rt_with_fds(env: &Env, args: &[&str], fds: &[(RawFd, RawFd)]) -> Out {
    let fds = fds.to_vec();
    env.rt_cmd(args, move |cmd| {
        // SAFETY: only dup2 (async-signal-safe) runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                for &(src, dst) in &fds {
                    if libc::dup2(src, dst) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    })
}

/// A host directory holding a file named `marker`, as the escape target.
fn host_dir_with_marker(env: &Env, marker: &str) -> PathBuf {
    let dir = env.dir.join("hostdir");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(marker), "host").unwrap();
    dir
}

/// The fds of container `id`'s process once it runs `sleep` (busybox), as "N -> target".
fn container_fds(env: &Env, id: &str) -> Vec<String> {
    let mut pid = 0;
    wait_for("the container process to exec sleep", || {
        let out = env.rt(&["state", id]);
        pid = serde_json::from_str::<serde_json::Value>(&out.stdout)
            .map_or(0, |s| s["pid"].as_i64().unwrap_or(0));
        fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e.ends_with("busybox"))
    });
    let mut fds: Vec<(i32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let n = e.file_name().to_string_lossy().parse().unwrap();
            (
                n,
                fs::read_link(e.path())
                    .unwrap_or_default()
                    .display()
                    .to_string(),
            )
        })
        .collect();
    fds.sort();
    fds.into_iter()
        .map(|(n, t)| format!("{n} -> {t}"))
        .collect()
}

/// CVE-2024-21626 (runc "Leaky Vessels"): the runtime leaked an fd of a host directory (and
/// any fd its caller leaked to it) into the container, where /proc/self/fd/N or fchdir(N)
/// walks out of the rootfs. The container process must hold exactly 0,1,2 and the preserved
/// fd 3, for foreground `run`, `run --detach` and `create`+`start`, even when the runtime
/// itself inherited a host directory as fds 5 and 7.
#[test]
fn cve_2024_21626_no_runtime_or_inherited_fd_reaches_container() {
    let mut env = Env::new();
    let hostdir = host_dir_with_marker(&env, "leak-marker");
    let (dir_fd, null_fd) = (fd_for(&hostdir), fd_for(Path::new("/dev/null")));
    let fds = vec![
        (null_fd.as_raw_fd(), 3),
        (dir_fd.as_raw_fd(), 5),
        (dir_fd.as_raw_fd(), 7),
    ];
    env.args(&["sleep", "100"]);
    env.write_config();
    let bundle = env.bundle.to_str().unwrap().to_string();
    let check = |fds: Vec<String>, how: &str| {
        let nums: Vec<&str> = fds.iter().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(nums, ["0", "1", "2", "3"], "fds after {how}: {fds:#?}");
        assert!(
            fds[3].ends_with("/dev/null"),
            "preserved fd 3 changed: {fds:#?}"
        );
    };

    // Foreground run: the runtime stays the container's parent while we look.
    let id = env.id();
    let mut cmd = Command::new(&env.binary);
    cmd.arg("--root").arg(&env.root);
    cmd.args(["run", "--preserve-fds", "1", "--bundle", &bundle, &id]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let dup = fds.clone();
    // SAFETY: only dup2 (async-signal-safe) runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for &(src, dst) in &dup {
                if libc::dup2(src, dst) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut fg = cmd.spawn().unwrap();
    let seen = container_fds(&env, &id);
    env.kill(&id, "KILL");
    fg.wait().unwrap();
    check(seen, "foreground `run`");

    let id = env.id();
    let args = [
        "run",
        "--detach",
        "--preserve-fds",
        "1",
        "--bundle",
        &bundle,
        &id,
    ];
    rt_with_fds(&env, &args, &fds).ok();
    check(container_fds(&env, &id), "`run --detach`");

    let id = env.id();
    let args = ["create", "--preserve-fds", "1", "--bundle", &bundle, &id];
    rt_with_fds(&env, &args, &fds).ok();
    rt_with_fds(&env, &["start", &id], &fds).ok();
    check(container_fds(&env, &id), "`create`+`start`");
}

/// Runs `pwd; ls -a` with cwd `/proc/self/fd/<fd>`, the runtime holding the host dir at `fd`.
/// The runtime may refuse (non-zero exit); if it runs, the host dir must not be the cwd.
fn assert_fd_cwd_does_not_escape(fd: RawFd, preserve: bool) {
    let mut env = Env::new();
    let marker = "cwd-escape-marker";
    let hostdir = host_dir_with_marker(&env, marker);
    let probe = format!(
        "pwd; ls -a; test -e ../../../../../../../..{}/{marker} && echo ESCAPED; true",
        hostdir.display()
    );
    env.args(&["sh", "-c", &probe]);
    env.config["process"]["cwd"] = format!("/proc/self/fd/{fd}").into();
    env.write_config();
    let dir_fd = fd_for(&hostdir);
    let bundle = env.bundle.to_str().unwrap().to_string();
    let id = env.id();
    let mut args = vec!["run", "--bundle", &bundle, &id];
    if preserve {
        args.splice(1..1, ["--preserve-fds", "1"]);
    }
    let out = rt_with_fds(&env, &args, &[(dir_fd.as_raw_fd(), fd)]);
    eprintln!("cwd /proc/self/fd/{fd}: {out:?}");
    for bad in [marker, "ESCAPED", hostdir.to_str().unwrap()] {
        assert!(
            !out.stdout.contains(bad),
            "cwd /proc/self/fd/{fd} is the host dir: {out:?}"
        );
    }
    if out.code == 0 {
        assert!(
            !out.stdout.contains("unreachable"),
            "cwd outside the root: {out:?}"
        );
    }
    assert_eq!(
        fs::read_dir(&hostdir).unwrap().count(),
        1,
        "host dir was written"
    );
}

/// CVE-2024-21626, attack 1 with a caller-preserved fd: `process.cwd = /proc/self/fd/3` and
/// `--preserve-fds 1` with fd 3 a host directory. The runtime must not chdir the container
/// process through the magic link into the host directory (refusing is fine).
#[test]
fn cve_2024_21626_cwd_through_preserved_fd_stays_in_container() {
    assert_fd_cwd_does_not_escape(3, true);
}

/// CVE-2024-21626, attack 1 with a leaked fd: cwd `/proc/self/fd/7` where fd 7 is a host
/// directory the runtime inherited but was not asked to preserve.
#[test]
fn cve_2024_21626_cwd_through_leaked_fd_stays_in_container() {
    assert_fd_cwd_does_not_escape(7, false);
}

/// CVE-2024-21626, attack 1 against the runtime's own fds: cwd `/proc/self/fd/N` for every N
/// the runtime might hold open (runc leaked a host /sys/fs/cgroup fd as 7 or 8). Debian's
/// runc 1.1.5+ds1-1+deb12u1 carries the fix and passes; upstream 1.1.5 fails.
#[test]
fn cve_2024_21626_cwd_through_runtime_fds_stays_in_container() {
    let mut env = Env::new();
    let marker = env.dir.join("escape-marker");
    fs::write(&marker, "").unwrap();
    let probe = format!(
        "test -e ../../../../../../..{} && echo ESCAPED; true",
        marker.display()
    );
    env.args(&["sh", "-c", &probe]);
    for fd in 3..=10 {
        env.config["process"]["cwd"] = format!("/proc/self/fd/{fd}").into();
        let out = env.run(&env.id());
        assert!(
            !out.stdout.contains("ESCAPED"),
            "cwd /proc/self/fd/{fd} reached the host: {out:?}"
        );
    }
}

/// Starts `sh -c script` in the namespaces of `pid` (a process of the container), as uid
/// `uid`, with CAP_SYS_PTRACE dropped from the bounding set: the position of a malicious
/// process inside a container (whose default capabilities lack CAP_SYS_PTRACE). The ns files
/// are opened here, with our CAP_SYS_PTRACE; the script's `sh -c` child is in the pid ns.
fn spawn_in_container(pid: i64, uid: u32, script: &str, log: &Path) -> std::process::Child {
    let nss: Vec<OwnedFd> = ["ipc", "uts", "net", "pid", "mnt"]
        .iter()
        .map(|ns| OwnedFd::from(fs::File::open(format!("/proc/{pid}/ns/{ns}")).unwrap()))
        .collect();
    let raw: Vec<RawFd> = nss.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "/bin/sh -c \"$1\"; true", "sh", script])
        .env_clear()
        .env("PATH", "/bin")
        .stdin(Stdio::null())
        .stdout(fs::File::create(log).unwrap())
        .stderr(Stdio::null());
    // SAFETY: only raw syscalls run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &raw {
                if libc::setns(fd, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::chdir(c"/".as_ptr()) != 0
                || libc::prctl(libc::PR_CAPBSET_DROP, 19 /* CAP_SYS_PTRACE */, 0, 0, 0) != 0
                || (uid != 0
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setresgid(uid, uid, uid) != 0
                        || libc::setresuid(uid, uid, uid) != 0))
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("enter the container's namespaces")
}

/// CVE-2019-5736 (runc /proc/self/exe overwrite): a process in the container opens
/// /proc/<init>/exe while init is still the runtime binary, and once init has exec'd the
/// container process, reopens that fd for writing and overwrites the host's runtime.
/// While `created`, init must be non-dumpable (or a sealed copy): readlink, open for reading
/// and open for writing of /proc/1/exe all fail, for root without CAP_SYS_PTRACE and for uid
/// 1000, and the binary that ran (a copy: a successful attack cannot hurt the real one) is
/// byte-identical afterwards. runc 1.1.5 FAILS the readlink/open part (its init is
/// dumpable and runs from a memfd copy, so the binary itself survives).
#[test]
fn cve_2019_5736_created_init_exe_unreachable_from_container() {
    let mut env = Env::new();
    let before = env.use_runtime_copy();
    let copy = std::path::PathBuf::from(&env.binary);
    env.args(&["sleep", "100"]);
    let id = env.id();
    env.create(&id).ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let script = "if command exec 3</proc/1/exe; then echo open=ok; else echo open=fail; fi
        if readlink /proc/1/exe; then echo readlink=ok; else echo readlink=fail; fi
        if (echo x >> /proc/1/exe) 2>/dev/null; then echo write=ok; else echo write=fail; fi
        echo ready
        i=0; while [ $i -lt 30 ]; do
          if (echo PWNED >> /proc/self/fd/3) 2>/dev/null; then echo overwrite=ok; break; fi
          sleep 0.1; i=$((i+1)); done
        echo done";
    let logs: Vec<PathBuf> = [0u32, 1000]
        .iter()
        .map(|&uid| env.dir.join(format!("attack-{uid}.log")))
        .collect();
    let mut kids: Vec<_> = [0u32, 1000]
        .iter()
        .zip(&logs)
        .map(|(&uid, log)| spawn_in_container(pid, uid, script, log))
        .collect();
    for log in &logs {
        wait_for("the attacker to probe /proc/1/exe", || {
            fs::read_to_string(log)
                .unwrap_or_default()
                .contains("ready")
        });
    }
    env.start(&id).ok();
    for k in &mut kids {
        k.wait().unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        fs::read(&copy).unwrap() == before,
        "the runtime binary was modified"
    );
    for (uid, log) in [0, 1000].iter().zip(&logs) {
        let text = fs::read_to_string(log).unwrap();
        for want in ["open=fail", "readlink=fail", "write=fail", "done"] {
            assert!(
                text.contains(want),
                "uid {uid} in the container: want {want}:\n{text}"
            );
        }
        assert!(
            !text.contains("overwrite=ok"),
            "uid {uid} overwrote the runtime:\n{text}"
        );
    }
}

/// CVE-2019-5736, host side: while init waits for `start`, a host process without
/// CAP_SYS_PTRACE cannot reach the runtime binary through /proc/<pid>/exe.
/// runc 1.1.5 FAILS this: its init stays dumpable (it relies on a memfd copy of itself).
#[test]
fn cve_2019_5736_created_init_exe_unreachable_without_ptrace() {
    let mut env = Env::new();
    env.args(&["sleep", "100"]);
    let id = env.id();
    env.create(&id).ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert!(
        fs::read_link(format!("/proc/{pid}/exe")).is_ok(),
        "root with CAP_SYS_PTRACE can read it"
    );
    let probe = Command::new("capsh")
        .args([
            "--drop=cap_sys_ptrace",
            "--",
            "-c",
            &format!("readlink /proc/{pid}/exe"),
        ])
        .output()
        .expect("capsh (apt-get install libcap2-bin)");
    assert!(
        !probe.status.success(),
        "/proc/{pid}/exe readable without CAP_SYS_PTRACE: {}",
        String::from_utf8_lossy(&probe.stdout)
    );
}

/// State-root symlink planting (no runc CVE; the CVE-2024-45310 class of a runtime creating
/// files through a symlink someone else planted): `<root>/<id>` already exists as a symlink
/// to a host directory. create should fail (the id exists) and must write nothing through
/// the link. runc 1.1.5 succeeds: it resolves the link inside --root (securejoin) and keeps
/// its state at `<root>/<link target>`, which is safe, so success is tolerated.
#[test]
fn symlink_planted_state_dir_is_not_followed() {
    let env = Env::new();
    let victim = env.dir.join("victim-dir");
    fs::create_dir_all(&victim).unwrap();
    let id = env.id();
    symlink(&victim, env.root.join(&id)).unwrap();
    let out = env.create(&id);
    assert_eq!(
        fs::read_dir(&victim).unwrap().count(),
        0,
        "wrote through the symlink: {out:?}"
    );
    if !runtime_is_runc() {
        assert_ne!(
            out.code, 0,
            "create over a planted state dir symlink succeeded: {out:?}"
        );
    }
    assert!(
        fs::symlink_metadata(env.root.join(&id))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link was replaced"
    );
    fs::remove_file(env.root.join(&id)).unwrap();
}

/// `create --pid-file P` with extra symlinks planted next to P; returns the exit status
/// after checking that every planted link's host target is unchanged and, if create
/// succeeded, that P is a regular file holding the pid of init.
fn create_with_planted_pid_links(names: &[&str]) -> i32 {
    let env = Env::new();
    let piddir = env.dir.join("piddir");
    fs::create_dir_all(&piddir).unwrap();
    let pidfile = piddir.join("ctr.pid");
    let victims: Vec<PathBuf> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let victim = env.dir.join(format!("victim-{i}"));
            fs::write(&victim, "host data").unwrap();
            symlink(&victim, piddir.join(name)).unwrap();
            victim
        })
        .collect();
    env.write_config();
    let id = env.id();
    let bundle = env.bundle.to_str().unwrap();
    let out = env.rt(&[
        "create",
        "--bundle",
        bundle,
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    for v in &victims {
        assert_eq!(
            fs::read_to_string(v).unwrap(),
            "host data",
            "pid written through a link: {out:?}"
        );
    }
    if out.code == 0 {
        let meta = fs::symlink_metadata(&pidfile).unwrap();
        assert!(
            meta.file_type().is_file(),
            "pid file is not a regular file: {meta:?}"
        );
        let pid = env.state(&id)["pid"].as_i64().unwrap();
        assert_eq!(
            fs::read_to_string(&pidfile).unwrap().trim(),
            pid.to_string()
        );
    } else {
        assert!(
            !env.root.join(&id).exists(),
            "failed create left state: {out:?}"
        );
    }
    out.code
}

/// Pid-file symlink planting (CVE-2024-45310 class): the --pid-file path itself is a symlink
/// to a host file. The runtime must replace the link (runc writes a temp file and renames
/// it over P), never write the pid into the link's target.
#[test]
fn symlink_planted_pid_file_is_replaced_not_followed() {
    assert_eq!(
        create_with_planted_pid_links(&["ctr.pid"]),
        0,
        "create should succeed"
    );
}

/// Pid-file symlink planting, temp names: symlinks at plausible temporary names next to the
/// pid file (`P.tmp`, `.P`, `.P.tmp`, `ctr.tmp`) must not be followed (the temp file needs
/// O_EXCL|O_NOFOLLOW). The runtime may fail (runc refuses because `.P` exists: O_EXCL).
#[test]
fn symlink_planted_pid_temp_files_are_not_followed() {
    create_with_planted_pid_links(&["ctr.pid.tmp", ".ctr.pid", ".ctr.pid.tmp", "ctr.tmp"]);
}
