//! Config validation the runtime must do before it creates anything: sysctls that would reach
//! the host, rootfs layouts that redirect /proc, out-of-range resources, namespace lists; and
//! how the errors read.

use crate::harness::{runtime_is_runc, Env};
use serde_json::json;
use std::fs;
use std::sync::{Mutex, MutexGuard};

fn host_sysctl(key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_string()
}

/// Tests that could change a host sysctl (on a runtime that gets it wrong) run one at a time,
/// so none reads another's change as the host's value.
static HOST_SYSCTLS: Mutex<()> = Mutex::new(());

/// The host's value of `key` when the test began; restored on drop if the runtime changed it,
/// so even a failing run leaves the host as it was.
struct HostSysctl {
    key: &'static str,
    before: String,
    _lock: MutexGuard<'static, ()>,
}

impl HostSysctl {
    fn new(key: &'static str) -> HostSysctl {
        let lock = HOST_SYSCTLS.lock().unwrap_or_else(|e| e.into_inner());
        HostSysctl {
            key,
            before: host_sysctl(key),
            _lock: lock,
        }
    }

    /// A value that differs from the host's (for 0/1 switches).
    fn other(&self) -> String {
        if self.before == "0" { "1" } else { "0" }.to_string()
    }

    fn assert_unchanged(&self) {
        assert_eq!(
            host_sysctl(self.key),
            self.before,
            "the host's {} was changed by the container",
            self.key
        );
    }
}

impl Drop for HostSysctl {
    fn drop(&mut self) {
        if host_sysctl(self.key) != self.before {
            let path = format!("/proc/sys/{}", self.key.replace('.', "/"));
            let _ = fs::write(path, &self.before);
        }
    }
}

/// `namespaces` of the base config without `typ`.
fn without_ns(env: &mut Env, typ: &str) {
    env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != typ);
}

#[test]
fn sysctl_net_without_netns_is_refused() {
    let key = "net.ipv4.ip_forward";
    let host = HostSysctl::new(key);
    let mut env = Env::new();
    without_ns(&mut env, "network");
    env.args(&["true"]);
    env.config["linux"]["sysctl"] = json!({ key: host.other() });
    env.assert_run_refused(key);
    host.assert_unchanged();
}

#[test]
fn sysctl_net_in_joined_host_netns_is_refused() {
    let key = "net.ipv4.ip_forward";
    let host = HostSysctl::new(key);
    let mut env = Env::new();
    without_ns(&mut env, "network");
    let host_net = format!("/proc/{}/ns/net", std::process::id());
    env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "network", "path": host_net}));
    env.args(&["true"]);
    env.config["linux"]["sysctl"] = json!({ key: host.other() });
    env.assert_run_refused(key);
    host.assert_unchanged();
}

#[test]
fn sysctl_not_namespaced_is_refused() {
    let key = "kernel.pid_max";
    let host = HostSysctl::new(key);
    let want: u64 = host.before.parse::<u64>().unwrap() - 1;
    let mut env = Env::new();
    env.args(&["true"]);
    env.config["linux"]["sysctl"] = json!({ key: want.to_string() });
    env.assert_run_refused(key);
    host.assert_unchanged();
}

#[test]
fn sysctl_ipc_without_ipcns_is_refused() {
    let key = "kernel.shm_rmid_forced";
    let host = HostSysctl::new(key);
    let mut env = Env::new();
    without_ns(&mut env, "ipc");
    env.args(&["true"]);
    env.config["linux"]["sysctl"] = json!({ key: host.other() });
    env.assert_run_refused(key);
    host.assert_unchanged();
}

#[test]
fn sysctl_net_in_new_netns_is_applied_inside_only() {
    let key = "net.ipv4.ip_forward";
    let host = HostSysctl::new(key);
    let want = host.other();
    let mut env = Env::new();
    env.args(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    env.config["linux"]["sysctl"] = json!({ key: want });
    let id = env.id();
    let out = env.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), want, "{out:?}");
    host.assert_unchanged();
}

/// A key written with slashes (sysctl.d's form, accepted by runc): dots stay in names.
#[test]
fn sysctl_slash_form_is_applied_inside() {
    let key = "net.ipv4.ip_forward";
    let host = HostSysctl::new(key);
    let want = host.other();
    let mut env = Env::new();
    env.args(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    env.config["linux"]["sysctl"] = json!({ "net/ipv4/ip_forward": want });
    let id = env.id();
    let out = env.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), want, "{out:?}");
    host.assert_unchanged();
}

/// The rootfs's `dir` replaced by a symlink to `target`.
fn symlinked(env: &Env, dir: &str, target: &str) {
    let path = env.rootfs().join(dir);
    fs::remove_dir_all(&path).unwrap();
    fs::create_dir_all(env.rootfs().join("tmp/elsewhere")).unwrap();
    std::os::unix::fs::symlink(target, &path).unwrap();
}

#[test]
fn rootfs_proc_symlink_is_refused() {
    let mut env = Env::new();
    env.args(&["true"]);
    symlinked(&env, "proc", "/tmp/elsewhere");
    env.assert_run_refused("/proc");
    assert!(
        fs::read_dir(env.rootfs().join("tmp/elsewhere"))
            .unwrap()
            .next()
            .is_none(),
        "something was created through the symlink"
    );
}

#[test]
fn rootfs_sys_symlink_is_refused() {
    let mut env = Env::new();
    env.args(&["true"]);
    symlinked(&env, "sys", "tmp/elsewhere");
    env.assert_run_refused("/sys");
}

#[test]
fn bind_mount_into_proc_is_refused() {
    let mut env = Env::new();
    env.args(&["true"]);
    env.shared_dir("fake-sys", "/proc/sys");
    env.assert_run_refused("/proc/sys");
}

#[test]
fn bind_through_a_symlink_into_proc_is_refused() {
    let mut env = Env::new();
    env.args(&["true"]);
    std::os::unix::fs::symlink("/proc/sys/kernel", env.rootfs().join("innocent")).unwrap();
    env.shared_dir("fake-kernel", "/innocent");
    env.assert_run_refused("/innocent");
}

/// A tmpfs over /proc/self/attr would make LSM label writes land in the tmpfs
/// (CVE-2019-16884): refused like a bind, whatever the type.
#[test]
fn tmpfs_into_proc_is_refused() {
    if runtime_is_runc() {
        eprintln!("skipped: runc 1.1.5 checks only bind and other non-tmpfs mounts against /proc");
        return;
    }
    let mut env = Env::new();
    env.args(&["true"]);
    std::os::unix::fs::symlink("/proc/self/attr", env.rootfs().join("innocent")).unwrap();
    env.mount(json!({"destination": "/innocent", "type": "tmpfs", "source": "tmpfs"}));
    env.assert_run_refused("/innocent");
}

/// A cgroup filesystem mounted inside /proc is refused like any other type (it would cover
/// /proc/sys with a tmpfs before failing).
#[test]
fn cgroup_mount_into_proc_is_refused() {
    let mut env = Env::new();
    env.args(&["true"]);
    env.mount(json!({"destination": "/proc/sys", "type": "cgroup2", "source": "cgroup"}));
    env.assert_run_refused("/proc/sys");
}

/// A bind of a procfs onto /proc (the host's, for a host-pid container) stays allowed.
#[test]
fn bind_of_procfs_onto_proc_is_allowed() {
    let mut env = Env::new();
    env.config["mounts"][0] =
        json!({"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind"]});
    env.args(&["true"]);
    let id = env.id();
    let out = env.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn lxcfs_style_binds_into_proc_are_allowed() {
    let mut env = Env::new();
    let fake = env.dir.join("uptime");
    fs::write(&fake, "12345.67 0.00\n").unwrap();
    env.mount(json!({"destination": "/proc/uptime", "type": "bind",
        "source": fake.to_str().unwrap(), "options": ["bind", "ro"]}));
    env.args(&["cat", "/proc/uptime"]);
    let id = env.id();
    let out = env.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "12345.67 0.00\n", "{out:?}");
}

/// An error of the container's init reaches the caller once, and does not echo a huge input:
/// a hostname the kernel refuses (over 64 bytes), short enough to pass the sync channel and 1 MB.
#[test]
fn init_error_printed_once_and_input_truncated() {
    let mut env = Env::new();
    env.args(&["true"]);
    for len in [300, 1 << 20] {
        env.config["hostname"] = json!("h".repeat(len));
        let before = env.root_entries();
        let id = env.id();
        let out = env.run(&id);
        assert_ne!(out.code, 0, "a {len}-byte hostname must fail");
        assert!(
            out.stderr.len() < 4096,
            "{} bytes of stderr; starts {:?}",
            out.stderr.len(),
            &out.stderr[..out.stderr.len().min(300)]
        );
        assert_eq!(
            out.stderr.matches("sethostname").count(),
            1,
            "printed once: {:?}",
            out.stderr
        );
        env.assert_nothing_left(&id, &before);
    }
}

/// Tools match `invalid configuration` at the start of the message, then look for the field.
#[test]
fn invalid_config_says_so_first_then_the_field() {
    if runtime_is_runc() {
        eprintln!(
            "skipped: runc 1.1.5 words each validation error its own way \
             (\"Cwd must be an absolute path\")"
        );
        return;
    }
    let mut env = Env::new();
    env.args(&["true"]);
    env.config["process"]["cwd"] = json!("tmp");
    let before = env.root_entries();
    let id = env.id();
    let out = env.run(&id);
    assert_ne!(out.code, 0, "{out:?}");
    let msg = out.stderr.split("msg=\"").nth(1).unwrap_or(&out.stderr);
    assert!(
        msg.starts_with("invalid configuration: process.cwd"),
        "{:?}",
        out.stderr
    );
    env.assert_nothing_left(&id, &before);
}

/// Whether a cgroup directory named `id` exists in any v1 hierarchy or the unified one.
fn cgroup_named(id: &str) -> Option<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, id: &str, depth: u32) -> Option<std::path::PathBuf> {
        for e in fs::read_dir(dir).ok()?.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name() == id {
                return Some(e.path());
            }
            if depth > 0 {
                if let Some(p) = walk(&e.path(), id, depth - 1) {
                    return Some(p);
                }
            }
        }
        None
    }
    walk(std::path::Path::new("/sys/fs/cgroup"), id, 4)
}

/// `resources` must make `run` fail; the error names `ward_field` (under ward) or says
/// `runc_word` (under runc); no state, process or cgroup is left.
fn resources_refused(resources: serde_json::Value, ward_field: &str, runc_word: &str) {
    let mut env = Env::new();
    env.args(&["true"]);
    env.config["linux"]["resources"] = resources.clone();
    let before = env.root_entries();
    let id = env.id();
    let out = env.run(&id);
    assert_ne!(out.code, 0, "{resources} must be refused: {out:?}");
    let word = if runtime_is_runc() {
        runc_word
    } else {
        ward_field
    };
    assert!(out.stderr.contains(word), "{resources}: {word}: {out:?}");
    env.assert_nothing_left(&id, &before);
    assert_eq!(cgroup_named(&id), None, "cgroup left behind");
}

#[test]
fn negative_memory_limits_other_than_minus_one_are_refused() {
    let mb64 = 64 << 20;
    resources_refused(
        json!({"memory": {"limit": -2}}),
        "linux.resources.memory.limit",
        "memory.limit_in_bytes",
    );
    resources_refused(
        json!({"memory": {"reservation": -3}}),
        "linux.resources.memory.reservation",
        "memory.soft_limit_in_bytes",
    );
    resources_refused(
        json!({"memory": {"limit": mb64, "swap": -5}}),
        "linux.resources.memory.swap",
        "memory.memsw.limit_in_bytes",
    );
}

#[test]
fn cpu_shares_the_kernel_would_clamp_are_refused() {
    resources_refused(
        json!({"cpu": {"shares": 1}}),
        "linux.resources.cpu.shares",
        "minimum allowed cpu-shares",
    );
    resources_refused(
        json!({"cpu": {"shares": 300000}}),
        "linux.resources.cpu.shares",
        "maximum allowed cpu-shares",
    );
}

#[test]
fn cpu_period_and_quota_out_of_range_are_refused() {
    resources_refused(
        json!({"cpu": {"period": 500}}),
        "linux.resources.cpu.period",
        "cpu.cfs_period_us",
    );
    resources_refused(
        json!({"cpu": {"quota": 500, "period": 100000}}),
        "linux.resources.cpu.quota",
        "cpu.cfs_quota_us",
    );
}

/// runc writes these and the kernel (or runc itself for pids) reads any negative value as
/// "unlimited": a typo would silently lift the limit.
#[test]
fn negative_quota_and_pids_other_than_minus_one_are_refused() {
    if runtime_is_runc() {
        eprintln!(
            "skipped: runc 1.1.5 runs cpu.quota -5 and pids.limit -5 as unlimited; \
             ward refuses them"
        );
        return;
    }
    resources_refused(
        json!({"cpu": {"quota": -5}}),
        "linux.resources.cpu.quota",
        "",
    );
    resources_refused(
        json!({"pids": {"limit": -5}}),
        "linux.resources.pids.limit",
        "",
    );
}

/// A quota without a period uses the kernel's period (100 ms), as under runc; 0 shares is
/// "unset" (engines send it), -1 is unlimited.
#[test]
fn quota_without_period_zero_shares_and_minus_one_run() {
    let mut env = Env::new();
    env.config["linux"]["resources"] = json!({
        "cpu": {"quota": 50000, "shares": 0},
        "memory": {"limit": -1, "swap": -1},
        "pids": {"limit": -1}
    });
    env.args(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us \
         /sys/fs/cgroup/cpu/cpu.shares",
    ]);
    let id = env.id();
    let out = env.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "50000\n100000\n1024\n", "{out:?}");
}

/// Two entries of one namespace type: refused as by runc ("duplicated ns"), nothing left.
#[test]
fn duplicate_namespace_entries_are_refused() {
    let host_net = format!("/proc/{}/ns/net", std::process::id());
    for extra in [
        json!({"type": "pid"}),
        json!({"type": "network", "path": host_net}),
    ] {
        let mut env = Env::new();
        env.args(&["true"]);
        env.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(extra);
        let word = if runtime_is_runc() {
            "duplicated ns"
        } else {
            "linux.namespaces"
        };
        env.assert_run_refused(word);
    }
}

/// A config without a mount namespace: the container shares its caller's mount table.
/// Everything runs inside a throwaway mount namespace made by `unshare -m` (private), so
/// even a runtime that mounts into the table it shares cannot touch the host's; the table
/// seen there is compared before and after.
/// With `exec_after`, the container runs detached and `exec <exec_after>` reports instead.
fn run_without_mountns(env: &mut Env, exec_after: Option<&str>) -> (crate::harness::Out, String) {
    env.config["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}
    ]);
    env.config["mounts"] = json!([]);
    env.config["root"]["readonly"] = json!(false);
    let linux = env.config["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    env.write_config();
    let id = env.id();
    let rootfs = env.rootfs();
    let script = format!(
        "set -e
        mount --bind /proc {r}/proc
        cat /proc/self/mountinfo > {d}/before
        {rt} --root {root} run {detach} --bundle {b} {id} > {d}/out 2>&1 || echo \"exit=$?\" >> {d}/out
        {after}
        {rt} --root {root} delete -f {id} 2>/dev/null || true
        cat /proc/self/mountinfo > {d}/after",
        r = rootfs.display(),
        d = env.dir.display(),
        rt = env.binary,
        root = env.root.display(),
        b = env.bundle.display(),
        detach = if exec_after.is_some() { "-d" } else { "" },
        after = exec_after.map_or(String::new(), |cmd| format!(
            "{} --root {} exec {id} {cmd} >> {}/out 2>&1 || echo \"exit=$?\" >> {}/out",
            env.binary,
            env.root.display(),
            env.dir.display(),
            env.dir.display()
        )),
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let out = env.capture(cmd);
    let run_out = fs::read_to_string(env.dir.join("out")).unwrap_or_default();
    let (before, after) = (
        fs::read_to_string(env.dir.join("before")).unwrap_or_default(),
        fs::read_to_string(env.dir.join("after")).unwrap_or_default(),
    );
    let diff: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    (
        out,
        format!("{run_out}\n--new mounts--\n{}", diff.join("\n")),
    )
}

#[test]
fn no_mount_namespace_shares_the_callers_and_mounts_nothing() {
    let mut env = Env::new();
    env.args(&[
        "sh",
        "-c",
        "echo mnt=$(readlink /proc/self/ns/mnt) root=$(ls /); touch /made-inside",
    ]);
    let (out, report) = run_without_mountns(&mut env, None);
    assert_eq!(out.code, 0, "{out:?}");
    let (run, new_mounts) = report.split_once("--new mounts--").unwrap();
    assert!(!run.contains("exit="), "run failed: {report}");
    assert!(
        run.contains("checker.sh"),
        "not chroot'ed into the rootfs: {report}"
    );
    assert!(env.rootfs().join("made-inside").exists(), "{report}");
    let host_mnt = crate::harness::host_ns("mnt");
    assert!(
        !run.contains(&format!("mnt={host_mnt}")),
        "the throwaway namespace should be the one shared: {report}"
    );
    if runtime_is_runc() {
        eprintln!(
            "skipped (mount table check): runc 1.1.5 mounts the rootfs and mounts into the \
             shared mount table and leaves them after delete ({} here)",
            new_mounts.trim().lines().count()
        );
        return;
    }
    assert_eq!(
        new_mounts.trim(),
        "",
        "mounts left in the shared table: {report}"
    );
}

/// `exec` into such a container lands in its root, not the caller's.
#[test]
fn no_mount_namespace_exec_enters_the_containers_root() {
    if runtime_is_runc() {
        eprintln!(
            "skipped: runc 1.1.5 runs the exec'd process in the caller's root, outside the \
             container's (its `ls /` lists the host's /)"
        );
        return;
    }
    let mut env = Env::new();
    env.args(&["sleep", "30"]);
    let (out, report) = run_without_mountns(&mut env, Some("ls /"));
    assert_eq!(out.code, 0, "{out:?}");
    let (run, _) = report.split_once("--new mounts--").unwrap();
    assert!(!run.contains("exit="), "failed: {report}");
    assert!(
        run.contains("checker.sh"),
        "exec not in the container's root: {report}"
    );
}

/// Without a mount namespace, what would have to be mounted is refused up front.
#[test]
fn no_mount_namespace_refuses_what_needs_mounts() {
    if runtime_is_runc() {
        eprintln!("skipped: runc 1.1.5 makes these mounts in the caller's mount table");
        return;
    }
    let mut env = Env::new();
    env.args(&["true"]);
    without_ns(&mut env, "mount");
    env.assert_run_refused("mounts");
    env.config["mounts"] = json!([]);
    env.assert_run_refused("linux.maskedPaths");
    let linux = env.config["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    env.assert_run_refused("root.readonly");
}
