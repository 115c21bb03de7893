//! Regression tests for known container-escape classes (see RUNC-CONTRACT.md).

use crate::harness::Env;
use serde_json::json;
use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;

fn host_mountinfo_mentions(path: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(path)
}

/// CVE-2019-5736: while init waits for `start`, it must be non-dumpable, so a host process
/// without CAP_SYS_PTRACE cannot reach the runtime binary through /proc/<pid>/exe.
/// runc 1.1.5 FAILS this: its init stays dumpable (it relies on a memfd copy of itself).
#[test]
fn created_init_exe_unreachable_without_ptrace() {
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

/// An image symlink at a mount destination pointing at an absolute host path is resolved
/// inside the rootfs: the mount lands in the rootfs and the host directory is untouched.
#[test]
fn mount_destination_symlink_stays_in_rootfs() {
    let mut env = Env::new();
    let hostdir = env.dir.join("hostdir");
    fs::create_dir_all(&hostdir).unwrap();
    let target = hostdir.to_str().unwrap().to_string();
    symlink(&target, env.rootfs().join("mnt/evil")).unwrap();
    env.mount(json!({"destination": "/mnt/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    let mount_key = format!("mount:{target}");
    let f = env.check(&[&mount_key, "write:/mnt/evil/marker"]);
    assert!(
        f.get(&mount_key).contains(" tmpfs "),
        "mount did not land inside the rootfs: {:?}",
        f.0
    );
    assert_eq!(f.get("write:/mnt/evil/marker"), "ok");
    assert_eq!(
        fs::read_dir(&hostdir).unwrap().count(),
        0,
        "host directory was written"
    );
    assert!(
        !host_mountinfo_mentions(&target),
        "host directory got a mount"
    );
    assert!(
        env.rootfs().join(&target[1..]).is_dir(),
        "mountpoint should be created inside the rootfs"
    );
}

/// A masked path that the image made a symlink to a host file must not mask the host file.
#[test]
fn masked_path_symlink_does_not_touch_host() {
    let mut env = Env::new();
    let secret = env.dir.join("hostsecret");
    fs::write(&secret, "host data").unwrap();
    let target = secret.to_str().unwrap().to_string();
    symlink(&target, env.rootfs().join("etc/masklink")).unwrap();
    env.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc/masklink"));
    env.config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc/masklink"));
    let f = env.check(&["read:/etc/masklink"]);
    assert_eq!(
        f.get("read:/etc/masklink"),
        "err",
        "the link must resolve inside the rootfs"
    );
    assert_eq!(fs::read_to_string(&secret).unwrap(), "host data");
    assert!(!host_mountinfo_mentions(&target), "host file got a mount");
    fs::write(&secret, "still writable").expect("host file must stay writable");
}

/// CVE-2024-21626: a cwd of /proc/self/fd/N must never leave the process in a host directory.
/// The runtime may refuse such a cwd or resolve it inside the container. (Debian's runc
/// 1.1.5+ds1-1+deb12u1 carries the fix and passes; upstream 1.1.5 would leak fd 7/8.)
#[test]
fn proc_self_fd_cwd_cannot_escape() {
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
