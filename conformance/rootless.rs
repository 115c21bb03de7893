//! Rootless mode: the runtime run by an unprivileged user (`ward-rl`, made here with a
//! subordinate id range), through `setpriv`, with XDG_RUNTIME_DIR pointing to a directory it
//! owns and no `--root`: `spec --rootless` bundles, the lifecycle, exit codes and signals, the
//! cgroup skipped with a warning, multi-id maps through newuidmap/newgidmap, a namespace that
//! maps the caller to itself, seccomp, Landlock, the sealed copy of ward (CVE-2019-5736),
//! egress by domain name through the netns wall (against the origin of egress_netwall.rs), and
//! bad input that leaves nothing behind.

use crate::harness::{alive, runtime_is_runc, runtime_path, wait_for, Env, Out};
use crate::require;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const USER: &str = "ward-rl";

/// The test user, with the start of its subordinate uid and gid ranges (65536 each).
struct User {
    uid: u32,
    gid: u32,
    subuid: u32,
    subgid: u32,
}

/// Makes `ward-rl` once per test process (and tolerates another process having made it):
/// useradd, then a subordinate range in /etc/subuid and /etc/subgid if it has none.
fn user() -> Option<&'static User> {
    static USER_INFO: OnceLock<Option<User>> = OnceLock::new();
    USER_INFO
        .get_or_init(|| {
            if !has_tool("setpriv") || !has_tool("newuidmap") {
                return None;
            }
            let id = |flag: &str| -> Option<u32> {
                let out = Command::new("id").args([flag, USER]).output().ok()?;
                String::from_utf8_lossy(&out.stdout).trim().parse().ok()
            };
            // Another test process may hold the lock on /etc/passwd or /etc/subuid for a
            // moment (useradd and usermod then fail): try again until the user and its ranges
            // are there.
            for _ in 0..50 {
                let have = |f| sub_start(f).is_some();
                if id("-u").is_some() && have("/etc/subuid") && have("/etc/subgid") {
                    break;
                }
                if id("-u").is_none() {
                    let _ = Command::new("useradd")
                        .args(["-M", "-s", "/bin/sh", USER])
                        .stderr(Stdio::null())
                        .status();
                }
                for (file, flag) in [
                    ("/etc/subuid", "--add-subuids"),
                    ("/etc/subgid", "--add-subgids"),
                ] {
                    if id("-u").is_some() && !have(file) {
                        let _ = Command::new("usermod")
                            .args([flag, "300000-365535", USER])
                            .stderr(Stdio::null())
                            .status();
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Some(User {
                uid: id("-u")?,
                gid: id("-g")?,
                subuid: sub_start("/etc/subuid")?,
                subgid: sub_start("/etc/subgid")?,
            })
        })
        .as_ref()
}

/// The first range of at least 65536 ids /etc/subuid (or subgid) gives the test user.
fn sub_start(file: &str) -> Option<u32> {
    fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let mut f = l.split(':');
        let (name, start, count) = (f.next()?, f.next()?, f.next()?);
        let count: u32 = count.trim().parse().ok()?;
        (name == USER && count >= 65536)
            .then(|| start.parse().ok())
            .flatten()
    })
}

fn has_tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The runtime's binary where the test user can execute it: the tree it is built in may not
/// be traversable by it, so ward is copied once per test process to /tmp/ward-rl-bin/ward-PID
/// (the copies of test processes that are gone are removed first); runc is used as it is.
fn binary() -> PathBuf {
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    COPY.get_or_init(|| {
        let src = runtime_path();
        if runtime_is_runc() {
            return src;
        }
        let dir = PathBuf::from("/tmp/ward-rl-bin");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("ward-")
                .and_then(|p| p.split('.').next()?.parse::<i64>().ok());
            if pid.is_some_and(|p| !alive(p)) {
                let _ = fs::remove_file(e.path());
            }
        }
        let dst = dir.join(format!("ward-{}", std::process::id()));
        let tmp = dir.join(format!("ward-{}.tmp", std::process::id()));
        crate::harness::copy_executable(&src, &tmp);
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&tmp, &dst).unwrap();
        dst
    })
    .clone()
}

/// The default state root the runtime must pick under XDG_RUNTIME_DIR.
fn root_name() -> &'static str {
    if runtime_is_runc() {
        "runc"
    } else {
        "ward"
    }
}

/// One test's rootless world: an Env whose dir the user may read, an XDG_RUNTIME_DIR it
/// owns, and the ids to force-delete (as the user) at the end.
struct Rl {
    env: Env,
    user: &'static User,
    xdg: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Rl {
    /// `None` (the test then skips) without setpriv or newuidmap.
    fn new() -> Option<Rl> {
        let user = user()?;
        let mut env = Env::new();
        let xdg = env.dir.join("xdg");
        fs::create_dir_all(&xdg).unwrap();
        chown(&xdg, Some(user.uid), Some(user.gid)).unwrap();
        fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
        for d in [&env.dir, &env.bundle] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        // The runtime's own rootless spec, made by the user, with the test's process.
        let specdir = env.dir.join("spec");
        fs::create_dir_all(&specdir).unwrap();
        chown(&specdir, Some(user.uid), Some(user.gid)).unwrap();
        let mut spec = as_user(user, &xdg, &["spec", "--rootless"], &[]);
        spec.current_dir(&specdir);
        let out = cmd_output(spec);
        assert_eq!(out.code, 0, "spec --rootless: {out:?}");
        let mut config: Value =
            serde_json::from_str(&fs::read_to_string(specdir.join("config.json")).unwrap())
                .unwrap();
        config["process"]["terminal"] = json!(false);
        config["root"]["readonly"] = json!(true);
        env.config = config;
        Some(Rl {
            env,
            user,
            xdg,
            ids: Default::default(),
        })
    }

    fn id(&self) -> String {
        let id = self.env.id();
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn args(&mut self, args: &[&str]) -> &mut Self {
        self.env.args(args);
        self
    }

    fn command(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        as_user(self.user, &self.xdg, args, vars)
    }

    fn rt(&self, args: &[&str]) -> Out {
        self.rt_env(args, &[])
    }

    fn rt_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Out {
        self.env.capture(self.command(args, vars))
    }

    fn run(&self, id: &str) -> Out {
        self.env.write_config();
        self.rt(&["run", "--bundle", self.env.bundle.to_str().unwrap(), id])
    }

    fn state(&self, id: &str) -> Value {
        let out = self.rt(&["state", id]);
        out.ok();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("state: {e}: {out:?}"))
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        self.xdg.join(root_name()).join(id)
    }

    /// `run` must fail, say `word` (ward only: runc's wording is its own) and leave nothing:
    /// no state dir, no process in the bundle, no mount of it.
    fn assert_refused(&self, id: &str, out: &Out, word: &str) {
        assert_ne!(out.code, 0, "{out:?}");
        if !runtime_is_runc() {
            assert!(out.stderr.contains(word), "{word}: {out:?}");
        }
        assert!(!self.state_dir(id).exists(), "state dir left: {out:?}");
        let bundle = self.env.bundle.to_str().unwrap();
        assert_eq!(crate::harness::procs_in(bundle, id), Vec::<i32>::new());
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mi.contains(bundle), "mount of the bundle left:\n{mi}");
    }
}

impl Drop for Rl {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let mut cmd = self.command(&["delete", "--force", id], &[]);
            let _ = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The runtime as the test user, with XDG_RUNTIME_DIR and no --root; `vars` adds (K, V) or
/// removes (K, "") variables.
fn as_user(user: &User, xdg: &Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", &user.uid.to_string()])
        .args(["--regid", &user.gid.to_string()])
        .args(["--init-groups", "env"]);
    // env's options come before its assignments.
    for (k, _) in vars.iter().filter(|(_, v)| v.is_empty()) {
        cmd.args(["-u", k]);
    }
    if !vars.contains(&("XDG_RUNTIME_DIR", "")) {
        cmd.arg(format!("XDG_RUNTIME_DIR={}", xdg.display()));
    }
    cmd.arg("HOME=/tmp");
    for (k, v) in vars.iter().filter(|(_, v)| !v.is_empty()) {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.arg(binary()).args(args);
    cmd
}

fn cmd_output(mut cmd: Command) -> Out {
    let o = cmd.stdin(Stdio::null()).output().expect("spawn");
    Out {
        code: crate::harness::exit_code(o.status),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

macro_rules! rootless_env {
    () => {{
        let rl = Rl::new();
        require!(
            rl.is_some(),
            "setpriv or newuidmap missing (apt-get install util-linux uidmap), or user {USER} and its /etc/subuid, /etc/subgid ranges could not be made"
        );
        rl.unwrap()
    }};
}

#[test]
fn rootless_run_prints_exits_and_keeps_state_under_xdg() {
    let mut rl = rootless_env!();
    rl.args(&[
        "sh",
        "-c",
        "echo hello; cat /proc/self/uid_map; id -u; test -c /dev/null && echo > /dev/null && echo null-ok; exit 3",
    ]);
    let id = rl.id();
    let out = rl.run(&id);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains("hello"), "{out:?}");
    let map: Vec<&str> = out
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(map, ["0", &rl.user.uid.to_string(), "1"], "{out:?}");
    assert_eq!(out.stdout.lines().nth(2), Some("0"), "{out:?}");
    assert!(
        out.stdout.contains("null-ok"),
        "host /dev/null bound in: {out:?}"
    );
    // The default root: $XDG_RUNTIME_DIR/<runtime>, the user's.
    let root = rl.xdg.join(root_name());
    assert!(root.is_dir(), "no state root {}", root.display());
    if !runtime_is_runc() {
        // runc skips the cgroup silently; ward says so.
        assert!(out.stderr.contains("rootless: no cgroup"), "{out:?}");
    }
}

#[test]
fn rootless_lifecycle_create_start_exec_ps_kill_delete() {
    let mut rl = rootless_env!();
    rl.args(&["sleep", "100"]);
    let id = rl.id();
    rl.env.write_config();
    let b = rl.env.bundle.to_str().unwrap().to_string();
    rl.rt(&["create", "--bundle", &b, &id]).ok();
    let st = rl.state(&id);
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().unwrap();
    assert!(rl.state_dir(&id).is_dir());
    rl.rt(&["start", &id]).ok();
    wait_for("running", || rl.state(&id)["status"] == "running");
    let list = rl.rt(&["list", "-q"]);
    assert!(list.ok().stdout.lines().any(|l| l == id), "{list:?}");
    // runc 1.1's ps reads the cgroup it skipped and fails ("runc ps may fail if you don't have
    // the full access to cgroups"); ward lists the container's pid namespace instead.
    if !runtime_is_runc() {
        let ps = rl.rt(&["ps", "--format", "json", &id]);
        let pids: Vec<i64> = serde_json::from_str(&ps.ok().stdout).unwrap();
        assert!(pids.contains(&pid), "{ps:?}");
        let table = rl.rt(&["ps", &id]);
        assert!(table.ok().stdout.contains("sleep"), "{table:?}");
    }
    let ex = rl.rt(&["exec", &id, "sh", "-c", "id -u; cat /proc/1/cmdline"]);
    assert!(ex.ok().stdout.starts_with("0\nsleep"), "{ex:?}");
    rl.rt(&["kill", &id, "KILL"]).ok();
    wait_for("stopped", || rl.state(&id)["status"] == "stopped");
    assert!(!alive(pid));
    rl.rt(&["delete", &id]).ok();
    assert!(!rl.state_dir(&id).exists());
}

#[test]
fn rootless_signal_exit_is_128_plus_n() {
    let mut rl = rootless_env!();
    rl.args(&["sleep", "100"]);
    let id = rl.id();
    rl.env.write_config();
    let b = rl.env.bundle.to_str().unwrap().to_string();
    let mut child = rl
        .command(&["run", "--bundle", &b, &id], &[])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("running", || {
        let out = rl.rt(&["state", &id]);
        out.code == 0 && out.stdout.contains("\"running\"")
    });
    if !runtime_is_runc() {
        // CVE-2019-5736: without CAP_SYS_ADMIN for a read-only bind, ward runs from a sealed
        // memfd copy of itself, which nothing can open for writing (not even root).
        let exe = format!("/proc/{}/exe", child.id());
        let target = fs::read_link(&exe).unwrap();
        assert!(
            target.to_string_lossy().starts_with("/memfd:ward"),
            "{}",
            target.display()
        );
        assert!(fs::OpenOptions::new().write(true).open(&exe).is_err());
    }
    rl.rt(&["kill", &id, "KILL"]).ok();
    let status = child.wait().unwrap();
    assert_eq!(crate::harness::exit_code(status), 137);
}

#[test]
fn rootless_limits_without_a_cgroup_are_refused() {
    let mut rl = rootless_env!();
    rl.env.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    rl.args(&["true"]);
    let id = rl.id();
    let out = rl.run(&id);
    rl.assert_refused(&id, &out, "linux.resources.memory");
}

#[test]
fn rootless_multi_id_maps_through_newuidmap() {
    let mut rl = rootless_env!();
    let (u, sub, subg) = (rl.user.uid, rl.user.subuid, rl.user.subgid);
    let g = rl.user.gid;
    let maps = |own: u32, s: u32| {
        json!([{"containerID": 0, "hostID": own, "size": 1},
               {"containerID": 1, "hostID": s, "size": 65536}])
    };
    rl.env.config["linux"]["uidMappings"] = maps(u, sub);
    rl.env.config["linux"]["gidMappings"] = maps(g, subg);
    let owned = rl.env.rootfs().join("owned");
    fs::write(&owned, "x").unwrap();
    chown(&owned, Some(sub + 5), Some(subg + 7)).unwrap();
    rl.args(&[
        "sh",
        "-c",
        "stat -c %u:%g /owned; wc -l < /proc/self/uid_map",
    ]);
    let id = rl.id();
    let out = rl.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    // Host id sub+5 is container id 1+5: the second range is in force.
    assert_eq!(out.stdout.trim(), "6:8\n2", "{out:?}");
}

#[test]
fn rootless_caller_mapped_to_itself_without_capabilities() {
    let mut rl = rootless_env!();
    require!(
        !runtime_is_runc(),
        "runc 1.1 refuses a user namespace that maps no root (\"no user mapping found\"); \
         ward keeps the caller's uid, which `ward sandbox` relies on"
    );
    let (u, g) = (rl.user.uid, rl.user.gid);
    rl.env.config["linux"]["uidMappings"] = json!([{"containerID": u, "hostID": u, "size": 1}]);
    rl.env.config["linux"]["gidMappings"] = json!([{"containerID": g, "hostID": g, "size": 1}]);
    rl.env.config["process"]["user"] = json!({"uid": u, "gid": g});
    rl.env.config["process"]["capabilities"] = json!({});
    rl.args(&["sh", "-c", "id -u; id -g; grep CapEff /proc/self/status"]);
    let id = rl.id();
    let out = rl.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    let want = format!("{u}\n{g}\nCapEff:\t0000000000000000");
    assert_eq!(out.stdout.trim(), want, "{out:?}");
}

/// The same shape as root: 0 mapped to 0 alone, no capabilities.
#[test]
fn root_mapped_to_itself_without_capabilities() {
    let mut env = Env::new();
    env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let one = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    env.config["linux"]["uidMappings"] = one.clone();
    env.config["linux"]["gidMappings"] = one;
    env.config["process"]["capabilities"] = json!({});
    // devpts' gid=5 is not mapped (runc's spec --rootless drops such options too).
    for m in env.config["mounts"].as_array_mut().unwrap() {
        if let Some(o) = m["options"].as_array_mut() {
            o.retain(|o| !o.as_str().unwrap_or_default().starts_with("gid="));
        }
    }
    env.args(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; grep CapEff /proc/self/status",
    ]);
    let id = env.id();
    let out = env.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, ["0", "0 0 1", "CapEff: 0000000000000000"], "{out:?}");
}

#[test]
fn rootless_seccomp_applies() {
    let mut rl = rootless_env!();
    rl.env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    rl.env.config["root"]["readonly"] = json!(false);
    rl.args(&["sh", "-c", "mkdir /tmp/d 2>&1; echo rc=$?"]);
    let id = rl.id();
    let out = rl.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("rc=1"), "{out:?}");
    assert!(out.stdout.contains("not permitted"), "{out:?}");
}

#[test]
fn rootless_without_xdg_runtime_dir_is_refused() {
    let mut rl = rootless_env!();
    rl.args(&["true"]);
    let id = rl.id();
    rl.env.write_config();
    let b = rl.env.bundle.to_str().unwrap().to_string();
    let out = rl.rt_env(&["run", "--bundle", &b, &id], &[("XDG_RUNTIME_DIR", "")]);
    // runc falls back to /run/runc and fails there; ward names the variable.
    rl.assert_refused(&id, &out, "XDG_RUNTIME_DIR");
    assert!(!rl.xdg.join(root_name()).join(&id).exists());
}

#[test]
fn rootless_unmapped_user_is_refused() {
    let mut rl = rootless_env!();
    rl.env.config["process"]["user"] = json!({"uid": 5, "gid": 0});
    rl.args(&["true"]);
    let id = rl.id();
    let out = rl.run(&id);
    rl.assert_refused(&id, &out, "process.user.uid");
}

#[test]
fn rootless_multi_id_maps_without_newuidmap_are_refused() {
    let mut rl = rootless_env!();
    let (u, sub) = (rl.user.uid, rl.user.subuid);
    rl.env.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u, "size": 1},
                                                   {"containerID": 1, "hostID": sub, "size": 10}]);
    rl.args(&["true"]);
    let id = rl.id();
    rl.env.write_config();
    let b = rl.env.bundle.to_str().unwrap().to_string();
    let out = rl.rt_env(&["run", "--bundle", &b, &id], &[("PATH", "/nonexistent")]);
    rl.assert_refused(&id, &out, "newuidmap");
    assert!(
        out.stderr.contains("linux.uidMappings") || runtime_is_runc(),
        "{out:?}"
    );
}

#[test]
fn rootless_range_outside_subuid_is_refused() {
    let mut rl = rootless_env!();
    let u = rl.user.uid;
    // Host ids 1..11 are nobody's subordinate range for this user.
    rl.env.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u, "size": 1},
                                                   {"containerID": 1, "hostID": 1, "size": 10}]);
    rl.args(&["true"]);
    let id = rl.id();
    let out = rl.run(&id);
    rl.assert_refused(&id, &out, "linux.uidMappings");
}

#[test]
fn rootless_landlock_applies() {
    let mut rl = rootless_env!();
    require!(!runtime_is_runc(), "runc has no Landlock support");
    require!(
        crate::skip::landlock_abi() >= 1,
        "Landlock is not enabled in this kernel"
    );
    // Two tmpfs the container's root owns; writes are granted beneath /tmp only.
    for dest in ["/tmp", "/w"] {
        rl.env.config["mounts"].as_array_mut().unwrap().push(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}),
        );
    }
    fs::create_dir_all(rl.env.rootfs().join("w")).unwrap();
    rl.env.config["process"]["landlock"] = json!({
        "ruleset": {"handledAccessFS": ["write_file", "make_reg"]},
        "rules": {"pathBeneath": [{"allowedAccess": ["write_file", "make_reg"], "paths": ["/tmp"]}]}
    });
    rl.args(&[
        "sh",
        "-c",
        "{ echo a > /tmp/a && echo tmp-ok; echo b > /w/b && echo w-ok; } 2>&1",
    ]);
    let id = rl.id();
    let out = rl.run(&id);
    assert_eq!(
        out.stdout, "tmp-ok\nsh: can't create /w/b: Permission denied\n",
        "{out:?}"
    );
}

#[test]
fn rootless_mqueue_without_an_ipc_namespace_is_refused() {
    let mut rl = rootless_env!();
    // runc 1.1 refuses it too (EPERM); ward says what to add.
    rl.env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "ipc");
    rl.args(&["true"]);
    let id = rl.id();
    let out = rl.run(&id);
    rl.assert_refused(&id, &out, "linux.namespaces");
}

/// The netns wall as a non-root ward uses it on its own (issue 18: "the egress proxy and
/// Landlock work rootless"): the rootless spec plus a new network namespace, allowedDomains
/// and proxyEnv, the proxy asking the local origin of conformance/egress_netwall.rs.
fn rootless_egress_env() -> Option<(Rl, crate::egress_netwall::Origin)> {
    let mut rl = Rl::new()?;
    rl.env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "network"}));
    rl.env.config["process"]["interception"] =
        json!({"network": {"allowedDomains": ["allowed.example"], "proxyEnv": true}});
    // The image's own resolver, which the wall's resolv.conf must cover (the origin's DNS:
    // a query to it would be a way round the proxy's rules).
    let etc = rl.env.rootfs().join("etc");
    let resolver = format!("nameserver {}\n", crate::egress_netwall::ORIGIN);
    fs::write(etc.join("resolv.conf"), resolver).unwrap();
    Some((rl, crate::egress_netwall::origin()))
}

macro_rules! rootless_egress_env {
    () => {{
        require!(!runtime_is_runc(), "runc has no egress policy");
        require!(
            nix::unistd::Uid::effective().is_root(),
            "the origin's namespace and veth need root"
        );
        let e = rootless_egress_env();
        require!(
            e.is_some(),
            "setpriv or newuidmap missing (apt-get install util-linux uidmap), or user {USER} and its /etc/subuid, /etc/subgid ranges could not be made"
        );
        e.unwrap()
    }};
}

impl Rl {
    /// `run -d` of the config (as the user, the proxy's resolver the origin's DNS); the id.
    fn run_detached(&self) -> String {
        let id = self.id();
        self.env.write_config();
        let resolver = format!("{}:53", crate::egress_netwall::ORIGIN);
        let b = self.env.bundle.to_str().unwrap();
        let out = self.rt(&[
            "--egress-resolver",
            &resolver,
            "run",
            "-d",
            "--bundle",
            b,
            &id,
        ]);
        assert_eq!(out.code, 0, "{out:?}");
        id
    }

    /// The proxy's pid from the container's state.json.
    fn proxy(&self, id: &str) -> i64 {
        let path = self.state_dir(id).join("state.json");
        let state: Value = serde_json::from_str(&crate::harness::read(&path)).expect("state.json");
        assert!(state["supervisor"].is_null(), "a supervisor: {state}");
        state["proxy"][0].as_i64().expect("a proxy pid")
    }

    fn exec(&self, id: &str, script: &str) -> Out {
        self.rt(&["exec", id, "sh", "-c", script])
    }

    /// kill, delete: no state dir, no entry in the state root, no process of the container
    /// (nor its proxy), no mount of the bundle.
    fn delete_leaves_nothing(&self, id: &str, proxy: i64) {
        let root = self.xdg.join(root_name());
        self.rt(&["kill", id, "KILL"]).ok();
        wait_for("stopped", || self.state(id)["status"] == "stopped");
        self.rt(&["delete", id]).ok();
        assert!(!self.state_dir(id).exists(), "the state dir stayed");
        let left: Vec<_> = fs::read_dir(&root).unwrap().flatten().collect();
        assert!(left.is_empty(), "left in the state root: {left:?}");
        assert!(!alive(proxy), "the proxy outlived delete");
        let bundle = self.env.bundle.to_str().unwrap();
        assert_eq!(crate::harness::procs_in(bundle, id), Vec::<i32>::new());
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mi.contains(bundle), "mount of the bundle left:\n{mi}");
    }
}

/// A field of /proc/PID/status.
fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// An allowed name through the transparent path (DNS from 198.18.0.1) and the proxy
/// variables; a denied name, a raw address and another DNS server refused, by what reaches
/// the origin and by the violation log; the proxy is the user's, with no capability; Landlock
/// holds in the same container; delete leaves nothing, the proxy included.
#[test]
fn rootless_egress_by_domain_name_through_the_netns_wall() {
    let (mut rl, origin) = rootless_egress_env!();
    let landlock = crate::skip::landlock_abi() >= 1;
    if landlock {
        // As rootless_landlock_applies: writes granted beneath /tmp only.
        for dest in ["/tmp", "/w"] {
            rl.env.config["mounts"].as_array_mut().unwrap().push(
                json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}),
            );
        }
        fs::create_dir_all(rl.env.rootfs().join("w")).unwrap();
        rl.env.config["process"]["landlock"] = json!({
            "ruleset": {"handledAccessFS": ["write_file", "make_reg"]},
            "rules": {"pathBeneath": [{"allowedAccess": ["write_file", "make_reg"], "paths": ["/tmp"]}]}
        });
    } else {
        crate::skip::skipped("(its Landlock part only) Landlock is not enabled in this kernel");
    }
    rl.args(&["sleep", "100"]);
    let id = rl.run_detached();

    // The proxy: ward-rl's, in ward's network namespace (the container's has no way out),
    // holding no capability and unable to gain one. Its bounding set is the caller's: a
    // process without CAP_SETPCAP cannot empty it (README, the netns wall), and no_new_privs
    // with seccomp keep it from ever mattering.
    let proxy = rl.proxy(&id);
    let status = fs::read_to_string(format!("/proc/{proxy}/status")).unwrap();
    let uid = rl.user.uid.to_string();
    assert_eq!(status_field(&status, "Uid"), [uid.as_str(); 4].join(" "));
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(
            status_field(&status, set),
            "0000000000000000",
            "{set}: {status}"
        );
    }
    assert_eq!(status_field(&status, "NoNewPrivs"), "1", "{status}");
    assert_eq!(status_field(&status, "Seccomp"), "2", "{status}");
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let bnd = |s: &str| u64::from_str_radix(&status_field(s, "CapBnd"), 16).unwrap();
    assert_eq!(
        bnd(&status) & !bnd(&own),
        0,
        "CapBnd beyond the caller's: {status}"
    );
    let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(ns(&proxy.to_string()), ns("self"), "the proxy's namespace");
    let init = rl.state(&id)["pid"].as_i64().unwrap().to_string();
    assert_ne!(
        ns(&init),
        ns("self"),
        "the container shares the host's namespace"
    );

    let out = rl.exec(
        &id,
        "cat /etc/resolv.conf; \
         nslookup allowed.example; echo rc1=$?; \
         nslookup denied.example; echo rc2=$?; \
         nslookup allowed.example 192.0.2.202; echo rc3=$?; \
         timeout 10 wget -Y off -q -O - http://allowed.example/t; echo w1=$?; \
         timeout 10 wget -q -O - http://allowed.example/p; echo w2=$?; \
         timeout 10 wget -Y off -q -O - http://denied.example/d; echo w3=$?; \
         timeout 10 wget -q -O - http://denied.example/dp; echo w4=$?; \
         timeout 10 wget -Y off -q -O - http://192.0.2.202/raw; echo w5=$?; \
         timeout 10 wget -q -O - http://192.0.2.202/rawp; echo w6=$?; \
         nc -w 2 198.18.0.2 81 </dev/null; echo nc=$?; \
         env | grep -i _proxy | sort",
    );
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{out:?}");
    // DNS from the wall's resolver, the image's file covered; a name ward handed out.
    assert!(text.contains("nameserver 198.18.0.1"), "{text}");
    assert!(!text.contains("nameserver 192.0.2.202"), "{text}");
    let before_rc1 = text.split("rc1=").next().unwrap_or_default();
    assert!(
        text.contains("rc1=0") && before_rc1.contains("198.18.0.2"),
        "{text}"
    );
    for k in ["rc2=0", "rc3=0", "nc=0"] {
        assert!(!text.contains(k), "{k}: {text}");
    }
    // The allowed name, both ways, and nothing else reached the origin: what the origin saw
    // is the proof, not wget's status (timeout(1) bounds it: the -T of Debian's busybox 1.35
    // wget dies of SIGSEGV, 139, whatever the server does).
    assert!(text.contains("w1=0") && text.contains("w2=0"), "{text}");
    let seen = origin.seen();
    assert!(
        seen.iter()
            .any(|s| s == "GET /t HTTP/1.1 host=allowed.example"),
        "the transparent path: {seen:?} {text}"
    );
    assert!(
        seen.iter()
            .any(|s| s.starts_with("GET /p ") || s.starts_with("GET http://allowed.example/p ")),
        "the proxy variables' path: {seen:?} {text}"
    );
    assert_eq!(
        seen.len(),
        2,
        "refused requests reached the origin: {seen:?} {text}"
    );
    for k in ["w3=0", "w4=0", "w5=0", "w6=0"] {
        assert!(!text.contains(k), "{k}: {text}");
    }
    assert!(text.contains("HTTP_PROXY=http://198.18.0.1:3128"), "{text}");

    // The refusals are the proxy's lines in the state dir's violation log.
    let log = crate::harness::read(&rl.state_dir(&id).join("violations.jsonl"));
    let records: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        records
            .iter()
            .any(|r| r["name"] == "denied.example" && r["source"] == "dns"),
        "the denied name: {log}"
    );
    assert!(
        records.iter().any(|r| r["destination"] == "192.0.2.202:80"
            && r["decision"]
                .as_str()
                .unwrap_or_default()
                .contains("never handed out")),
        "the raw address: {log}"
    );

    if landlock {
        let out = rl.exec(
            &id,
            "{ echo a > /tmp/a && echo tmp-ok; echo b > /w/b && echo w-ok; } 2>&1",
        );
        assert_eq!(
            out.stdout, "tmp-ok\nsh: can't create /w/b: Permission denied\n",
            "{out:?}"
        );
    }
    rl.delete_leaves_nothing(&id, proxy);
}

/// The proxy killed: nothing resolves, nothing connects (the listeners die with it, and the
/// namespace has no other way out), the origin sees nothing; delete still leaves nothing.
#[test]
fn rootless_egress_fails_closed_without_its_proxy() {
    let (mut rl, origin) = rootless_egress_env!();
    rl.args(&["sleep", "100"]);
    let id = rl.run_detached();
    let proxy = rl.proxy(&id);
    let probe = "nslookup allowed.example; echo rc1=$?; \
                 nslookup allowed.example 192.0.2.202; echo rc2=$?; \
                 timeout 10 wget -Y off -q -O - http://allowed.example/t; echo w1=$?; \
                 timeout 10 wget -q -O - http://allowed.example/p; echo w2=$?; \
                 nc -w 2 198.18.0.2 80 </dev/null; echo nc1=$?; \
                 nc -w 2 192.0.2.202 80 </dev/null; echo nc2=$?; \
                 nc -w 2 198.18.0.1 3128 </dev/null; echo nc3=$?";
    let out = rl.exec(&id, probe);
    for k in ["rc1=0", "w1=0", "w2=0", "nc1=0", "nc3=0"] {
        assert!(out.stdout.contains(k), "{k} with the proxy: {out:?}");
    }
    let served = origin.seen().len();
    assert_eq!(served, 2, "{:?}", origin.seen());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the proxy to die", || !alive(proxy));
    let out = rl.exec(&id, probe);
    for k in ["rc1=0", "rc2=0", "w1=0", "w2=0", "nc1=0", "nc2=0", "nc3=0"] {
        assert!(!out.stdout.contains(k), "{k} without the proxy: {out:?}");
    }
    assert_eq!(origin.seen().len(), served, "{:?}", origin.seen());
    rl.delete_leaves_nothing(&id, proxy);
}
