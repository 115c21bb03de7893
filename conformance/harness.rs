//! Shared machinery: per-test temp dirs, busybox bundles, a runc-spec-like config builder,
//! runtime invocations, checker output parsing and "nothing left behind" assertions.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
const CHECKER: &str = include_str!("checker.sh");

/// The binary under test: `$WARD_RUNTIME` (e.g. `runc`) or the freshly built ward.
pub fn runtime() -> String {
    std::env::var("WARD_RUNTIME").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ward").to_string())
}

pub fn runtime_is_runc() -> bool {
    Path::new(&runtime())
        .file_name()
        .is_some_and(|n| n == "runc")
}

fn next_n() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// Docker's default capability set.
pub const DOCKER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Result of one command: exit code (128+signal when killed), stdout, stderr.
#[derive(Debug, Clone)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self
    }
}

/// One test's world: a temp dir with a bundle (busybox rootfs + config) and a state root.
/// Dropping it force-deletes every container it started and removes the directory.
pub struct Env {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub config: Value,
    /// The runtime this Env drives; `runtime()` unless a test compares against another.
    pub binary: String,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Env {
    pub fn new() -> Env {
        let dir = PathBuf::from(format!(
            "/tmp/ward-conf-{}-{}",
            std::process::id(),
            next_n()
        ));
        let _ = fs::remove_dir_all(&dir);
        let bundle = dir.join("bundle");
        build_rootfs(&bundle.join("rootfs"));
        fs::create_dir_all(dir.join("state")).unwrap();
        fs::create_dir_all(dir.join("logs")).unwrap();
        Env {
            root: dir.join("state"),
            bundle,
            config: base_config(&["/checker.sh"]),
            dir,
            binary: runtime(),
            ids: Default::default(),
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }

    /// A fresh container id, unique across threads and concurrent test processes;
    /// it is force-deleted when the Env drops.
    pub fn id(&self) -> String {
        let id = format!("wc{}-{}", std::process::id(), next_n());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.bundle.join("config.json"), text).unwrap();
    }

    /// `<rt> --root R <args...>` with stdin null and output captured through files
    /// (a detached container may keep inherited pipes open forever).
    pub fn rt(&self, args: &[&str]) -> Out {
        self.rt_cmd(args, |_| {})
    }

    pub fn rt_cmd(&self, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Out {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root).args(args);
        tweak(&mut cmd);
        self.capture(cmd)
    }

    pub fn capture(&self, mut cmd: Command) -> Out {
        let n = next_n();
        let (o, e) = (
            self.dir.join(format!("logs/{n}.out")),
            self.dir.join(format!("logs/{n}.err")),
        );
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&o).unwrap())
            .stderr(fs::File::create(&e).unwrap());
        let status = cmd.status().expect("spawn");
        Out {
            code: exit_code(status),
            stdout: read(&o),
            stderr: read(&e),
        }
    }

    /// Writes config.json and runs the container in the foreground.
    pub fn run(&self, id: &str) -> Out {
        self.write_config();
        self.rt(&["run", "--bundle", self.bundle.to_str().unwrap(), id])
    }

    pub fn create(&self, id: &str) -> Out {
        self.write_config();
        self.rt(&["create", "--bundle", self.bundle.to_str().unwrap(), id])
    }

    pub fn start(&self, id: &str) -> Out {
        self.rt(&["start", id])
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.rt(&["state", id]);
        out.ok();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("state JSON: {e}: {out:?}"))
    }

    pub fn kill(&self, id: &str, signal: &str) -> Out {
        self.rt(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Out {
        self.rt(&["delete", id])
    }

    pub fn wait_status(&self, id: &str, want: &str) {
        wait_for(&format!("{id} to be {want}"), || {
            self.state(id)["status"] == want
        });
    }

    /// Runs the checker with extra directives and parses its `key=value` lines.
    pub fn check(&mut self, directives: &[&str]) -> Facts {
        let mut args = vec!["/checker.sh"];
        args.extend_from_slice(directives);
        self.args(&args);
        let id = self.id();
        let out = self.run(&id);
        assert_eq!(out.code, 0, "checker run failed: {out:?}");
        Facts::parse(&out.stdout)
    }

    /// Gives the container a new user namespace, root mapped to host uid/gid 100000 (65536 ids).
    pub fn with_userns(&mut self) -> &mut Self {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        self.config["linux"]["uidMappings"] = map.clone();
        self.config["linux"]["gidMappings"] = map;
        self
    }

    /// Makes this Env drive a copy of the runtime in its own dir (so an attack that succeeds
    /// cannot hurt the real binary); the copy's bytes as they were.
    pub fn use_runtime_copy(&mut self) -> Vec<u8> {
        let copy = self.dir.join("runtime-copy");
        copy_executable(runtime_path(), &copy);
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
        self.binary = copy.to_str().unwrap().to_string();
        fs::read(&copy).unwrap()
    }

    /// Adds a mount to the config.
    pub fn mount(&mut self, m: Value) -> &mut Self {
        self.config["mounts"].as_array_mut().unwrap().push(m);
        self
    }

    /// A host directory (under the test dir) bind-mounted read-write at `dest`.
    pub fn shared_dir(&mut self, name: &str, dest: &str) -> PathBuf {
        let host = self.dir.join(name);
        fs::create_dir_all(&host).unwrap();
        let src = host.to_str().unwrap().to_string();
        self.mount(
            json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rw"]}),
        );
        host
    }

    /// Runs `sleep 60` detached under this config; the container's id.
    pub fn run_sleeping(&mut self) -> String {
        self.args(&["sleep", "60"]);
        let id = self.id();
        self.write_config();
        let b = self.bundle.to_str().unwrap().to_string();
        self.rt(&["run", "-d", "--bundle", &b, &id]).ok();
        id
    }

    /// `run` of this config must fail, say `word`, and leave nothing behind.
    pub fn assert_run_refused(&self, word: &str) {
        let before = self.root_entries();
        let id = self.id();
        let out = self.run(&id);
        assert_ne!(out.code, 0, "{out:?}");
        assert!(out.stderr.contains(word), "{word}: {out:?}");
        self.assert_nothing_left(&id, &before);
    }

    /// Entries of the state root, to prove a failed command added nothing.
    pub fn root_entries(&self) -> BTreeSet<String> {
        fs::read_dir(&self.root)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts a failed command left nothing behind: no state dir, no new root entry,
    /// no process rooted in the bundle or placed in a cgroup named after the id,
    /// no mount referencing the bundle.
    pub fn assert_nothing_left(&self, id: &str, before: &BTreeSet<String>) {
        if !id.is_empty() && !id.contains('/') && id != "." && id != ".." {
            assert!(
                !self.root.join(id).exists(),
                "state dir for {id:?} left behind"
            );
        }
        assert_eq!(
            &self.root_entries(),
            before,
            "new entries in the state root"
        );
        let bundle = self.bundle.to_str().unwrap();
        assert_eq!(
            procs_in(bundle, id),
            Vec::<i32>::new(),
            "processes left in bundle {bundle}"
        );
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mi.contains(bundle),
            "mount referencing the bundle left behind:\n{mi}"
        );
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Side-by-side tests switch `binary` between runtimes: delete with each of them.
        let mut binaries = vec![self.binary.clone(), runtime(), "runc".to_string()];
        binaries.dedup();
        for id in self.ids.borrow().iter() {
            for binary in &binaries {
                let _ = Command::new(binary)
                    .arg("--root")
                    .arg(&self.root)
                    .args(["delete", "--force", id])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Pids whose root or cwd lies in `bundle`, or whose cgroup path names container `id`.
pub fn procs_in(bundle: &str, id: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let p = e.path();
        let in_bundle = ["root", "cwd"].iter().any(|l| {
            fs::read_link(p.join(l)).is_ok_and(|t| t.to_string_lossy().starts_with(bundle))
        });
        let in_cgroup = id.len() > 2
            && fs::read_to_string(p.join("cgroup"))
                .is_ok_and(|c| c.lines().any(|l| l.ends_with(&format!("/{id}"))));
        if in_bundle || in_cgroup {
            found.push(pid);
        }
    }
    found
}

/// Parsed checker output. Later duplicates of a key overwrite earlier ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts(pub BTreeMap<String, String>);

impl Facts {
    pub fn parse(text: &str) -> Facts {
        Facts(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("checker printed no {key:?}: {:#?}", self.0))
    }
}

/// Builds rootfs with static busybox, its applets, base dirs, passwd/group and the checker.
pub fn build_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin).unwrap();
    for d in [
        "proc",
        "sys",
        "dev",
        "tmp",
        "etc",
        "root",
        "home/tester",
        "mnt",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    assert!(
        Path::new("/bin/busybox").is_file(),
        "no /bin/busybox (apt-get install busybox-static)"
    );
    copy_executable("/bin/busybox", bin.join("busybox"));
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", bin.join(applet));
        }
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000::/home/tester:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\ntty:x:5:\ntester:x:1000:\n",
    )
    .unwrap();
    let checker = rootfs.join("checker.sh");
    fs::write(&checker, CHECKER).unwrap();
    fs::set_permissions(&checker, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A config like `runc spec` output (terminal false, no ambient caps) running `args`.
pub fn base_config(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let nosuid_ro = json!(["nosuid", "noexec", "nodev", "ro"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "ward-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": nosuid_ro},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

pub fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

/// Polls `cond` every 50ms for up to 10s; panics naming `what` on timeout.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(50));
    }
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// `readlink /proc/self/ns/<ns>`: the namespaces the runtime is started in.
pub fn host_ns(ns: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Waits for `path` to exist and returns its content (after a grace period for the writer).
pub fn wait_file(path: &Path) -> String {
    wait_for(&path.display().to_string(), || path.exists());
    sleep(Duration::from_millis(100));
    fs::read_to_string(path).unwrap()
}

/// conformance/`source` compiled statically (`cc -static -O2`) once per test process, as
/// `<target tmp>/<name>`; the binary's path.
pub fn static_binary(name: &str, source: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<BTreeMap<String, PathBuf>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let tmp = dir.join(format!("{name}.{}", std::process::id()));
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance")
        .join(source);
    let out = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output()
        .expect("cc (apt-get install gcc libc6-dev)");
    assert!(out.status.success(), "cc -static {source}: {out:?}");
    let path = dir.join(name);
    fs::rename(&tmp, &path).unwrap();
    built.insert(name.to_string(), path.clone());
    path
}

/// Copies an executable by running `cp`, so that this (multi-threaded) process never holds a
/// write fd of it: a child another test thread forks meanwhile would inherit that fd until its
/// own execve, and executing the copy then fails ETXTBSY, which the CVE-2019-5736 tests read as
/// "the attacker holds the binary for writing" (seen once in CI).
pub fn copy_executable(from: impl AsRef<Path>, to: impl AsRef<Path>) {
    let (from, to) = (from.as_ref(), to.as_ref());
    let ok = Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .expect("spawn cp");
    assert!(ok.success(), "cp {from:?} {to:?}");
}

/// The runtime's absolute path (resolving a bare name such as `runc` through PATH).
pub fn runtime_path() -> PathBuf {
    let rt = runtime();
    if rt.contains('/') {
        return rt.into();
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(&rt))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{rt} not in PATH"))
}
