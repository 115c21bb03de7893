//! A hostile workload (issue 21, case 6): a container running as root with Docker's default
//! capabilities attacks its limits, the runtime and the host — fork bomb, fd exhaustion,
//! signals to everything it can see, writes to /proc, /sys and its own cgroup files, remounts
//! — then the same with extra capabilities (SYS_ADMIN, SYS_PTRACE, NET_ADMIN) inside a user
//! namespace. Each attack has its expected outcome; after each, the host is checked unharmed:
//! its sysctls, the runtime binary's bytes, a neighbour container still answering, the host
//! still able to fork. (Memory bombs: cgroups::memory_limit_oom_kills_and_is_recorded; the
//! runtime binary from inside: security*.rs; 10,000 connections at the proxy:
//! egress_attacks::a_connection_flood_stays_within_the_proxys_bounds.)

use crate::harness::{alive, read, wait_file, wait_for, Env};
use crate::lifecycle_faults::{assert_clean, own_cgroup, procs_in_cgroup};
use serde_json::json;
use std::fs;
use std::time::{Duration, Instant};

/// Host sysctls an escaped root would change first.
const SYSCTLS: &[&str] = &[
    "kernel/core_pattern",
    "kernel/modprobe",
    "kernel/panic",
    "kernel/pid_max",
    "kernel/hostname",
    "fs/file-max",
    "net/ipv4/ip_forward",
    "vm/overcommit_memory",
];

/// What must not change on the host, and a neighbour container that must keep answering.
struct Host {
    sysctls: Vec<(String, String)>,
    runtime: Vec<u8>,
    neighbour: Env,
    neighbour_id: String,
}

impl Host {
    fn snapshot() -> Host {
        let mut neighbour = Env::new();
        let neighbour_id = neighbour.run_sleeping();
        Host {
            sysctls: SYSCTLS
                .iter()
                .map(|s| (s.to_string(), read(format!("/proc/sys/{s}").as_ref())))
                .collect(),
            runtime: fs::read(crate::harness::runtime_path()).unwrap(),
            neighbour,
            neighbour_id,
        }
    }

    /// Sysctls and the runtime binary unchanged, the neighbour answers, the host forks.
    fn assert_unharmed(&self, when: &str) {
        for (name, before) in &self.sysctls {
            assert_eq!(
                &read(format!("/proc/sys/{name}").as_ref()),
                before,
                "{when}: host sysctl {name} changed"
            );
        }
        assert!(
            fs::read(crate::harness::runtime_path()).unwrap() == self.runtime,
            "{when}: the runtime binary changed"
        );
        let out = self
            .neighbour
            .rt(&["exec", &self.neighbour_id, "echo", "neighbour"]);
        assert_eq!(out.stdout, "neighbour\n", "{when}: the neighbour: {out:?}");
        let forked = std::process::Command::new("true").status();
        assert!(
            forked.is_ok_and(|s| s.success()),
            "{when}: the host cannot fork"
        );
    }
}

/// A container as root with Docker's capabilities (plus `extra`), running `script` with /out
/// shared; (env, id, cgroup, out dir).
fn attacker(extra: &[&str], script: &str) -> (Env, String, String, std::path::PathBuf) {
    let mut env = Env::new();
    let cg = own_cgroup(&mut env);
    let mut caps: Vec<&str> = crate::harness::DOCKER_CAPS.to_vec();
    caps.extend_from_slice(extra);
    env.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let out = env.shared_dir("out", "/out");
    // The mount point made beforehand: a mapped root cannot make it in the host root's rootfs.
    fs::create_dir_all(env.rootfs().join("out")).unwrap();
    env.args(&["sh", "-c", script]);
    let id = env.id();
    (env, id, cg, out)
}

fn run_detached(env: &Env, id: &str) {
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    env.rt(&["run", "-d", "--bundle", &b, id]).ok();
}

/// `delete --force` ends it within 30 s, and nothing of it is left.
fn removed(env: &Env, id: &str, cg: &str, when: &str) {
    let t0 = Instant::now();
    let out = env.rt(&["delete", "--force", id]);
    assert_eq!(out.code, 0, "{when}: delete --force: {out:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "{when}: slow delete"
    );
    assert_clean(env, id, cg, when);
}

/// A fork bomb under pids.max=64: the count stays at the limit, the runtime still execs into
/// the container and force-deletes it, the host and the neighbour are unharmed.
#[test]
fn a_fork_bomb_is_held_by_its_pids_limit() {
    crate::require_hybrid!();
    let host = Host::snapshot();
    let (mut env, id, cg, out) = attacker(
        &[],
        "echo started > /out/started; b() { b | b & }; b; sleep 600",
    );
    env.config["linux"]["resources"]["pids"] = json!({"limit": 64});
    run_detached(&env, &id);
    wait_file(&out.join("started"));
    std::thread::sleep(Duration::from_secs(2));
    let current: u32 = read(format!("/sys/fs/cgroup/pids/{cg}/pids.current").as_ref())
        .trim()
        .parse()
        .unwrap();
    assert!(current <= 64, "pids.current {current} above pids.max 64");
    let events = read(format!("/sys/fs/cgroup/pids/{cg}/pids.events").as_ref());
    assert!(
        !events.contains("max 0"),
        "the bomb never hit the limit: {events}"
    );
    host.assert_unharmed("fork bomb running");
    removed(&env, &id, &cg, "fork bomb");
    host.assert_unharmed("fork bomb removed");
}

/// Every fd it may take: it stops at its RLIMIT_NOFILE (EMFILE for open, socket and pipe), the
/// runtime still execs into it, reads its state and force-deletes it.
#[test]
fn fd_exhaustion_stops_at_its_rlimit() {
    let host = Host::snapshot();
    let (env, id, cg, out) = attacker(&[], "/fd_hog > /out/fds");
    let hog = crate::harness::static_binary("fd-hog", "fd_hog.c");
    crate::harness::copy_executable(hog, env.rootfs().join("fd_hog"));
    run_detached(&env, &id);
    let fds = wait_file(&out.join("fds"));
    let held: u32 = fds
        .split_whitespace()
        .find_map(|w| w.strip_prefix("held="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("fd_hog said {fds:?}"));
    assert!((1000..1024).contains(&held), "{fds}");
    assert_eq!(
        fds.matches("Too many open files").count(),
        3,
        "open, socket and pipe all refused for EMFILE: {fds}"
    );
    let ex = env.rt(&["exec", &id, "echo", "still"]);
    assert_eq!(ex.stdout, "still\n", "exec into the fd hog: {ex:?}");
    assert_eq!(env.state(&id)["status"], "running");
    host.assert_unharmed("fd exhaustion");
    removed(&env, &id, &cg, "fd hog");
}

/// SIGKILL to every process it can see (kill -1 and each /proc entry): only its own are hit —
/// its /proc lists nothing outside its pid namespace, so ward's supervisor (outside) lives on
/// and keeps recording, and the neighbour answers.
#[test]
fn signals_to_everything_it_sees_reach_only_its_own() {
    if crate::harness::runtime_is_runc() {
        return; // the supervisor is ward's
    }
    let host = Host::snapshot();
    let (mut env, id, cg, out) = attacker(
        &["CAP_SYS_PTRACE"],
        "sleep 600 & ls /proc | grep -E '^[0-9]+$' > /out/pids; \
         for p in $(cat /out/pids); do [ $p = 1 ] || kill -9 $p; done; kill -9 -1; \
         echo seen > /out/seen; sleep 600",
    );
    env.config["process"]["interception"] = json!({"observe": ["execve"]});
    run_detached(&env, &id);
    wait_file(&out.join("seen"));
    let state: serde_json::Value =
        serde_json::from_str(&read(&env.root.join(&id).join("state.json"))).unwrap();
    let supervisor = state["supervisor"][0].as_i64().expect("a supervisor");
    let pids = read(&out.join("pids"));
    assert!(
        pids.lines().count() <= 8,
        "its /proc lists more than its own processes: {pids}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(supervisor), "the supervisor was killed from inside");
    let ex = env.rt(&["exec", &id, "/bin/true", "after-kill"]);
    assert_eq!(ex.code, 0, "{ex:?}");
    host.assert_unharmed("signals");
    removed(&env, &id, &cg, "signaller");
}

/// The writes root in a container tries first: host sysctls, sysrq, its own cgroup's limits,
/// /proc/kcore, a new proc or sysfs, remounting /proc/sys or /sys/fs/cgroup read-write. All
/// refused with Docker's capabilities; with SYS_ADMIN, SYS_PTRACE and NET_ADMIN inside a user
/// namespace too (the read-only mounts are locked to the namespace that made them).
#[test]
fn proc_sys_and_cgroup_writes_and_remounts_are_refused() {
    let host = Host::snapshot();
    let script = "\
        try() { name=$1; shift; if \"$@\" 2>/dev/null; then echo \"$name=DONE\"; else echo \"$name=refused\"; fi; }; \
        try core_pattern sh -c 'echo |/tmp/x > /proc/sys/kernel/core_pattern'; \
        try sysrq sh -c 'echo h > /proc/sysrq-trigger'; \
        try kcore sh -c 'test -s /proc/kcore && head -c 1 /proc/kcore | grep -q .'; \
        for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/unified/cgroup.procs; do [ -e $f ] && echo cgroup_file=$f; done; \
        try cgroup_limit sh -c 'for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/unified/cgroup.procs; do echo 1 > $f && exit 0; done; exit 1'; \
        try remount_proc_sys mount -o remount,rw /proc/sys; \
        try remount_cgroup mount -o remount,rw /sys/fs/cgroup; \
        try remount_sys mount -o remount,rw /sys; \
        mkdir -p /tmp/p /tmp/s; \
        try new_proc mount -t proc proc /tmp/p; \
        try new_sysfs mount -t sysfs sysfs /tmp/s; \
        try core_pattern_after sh -c 'echo |/tmp/x > /proc/sys/kernel/core_pattern'; \
        if [ -e /tmp/p/self ]; then \
          try core_pattern_new_proc sh -c 'echo |/tmp/x > /tmp/p/sys/kernel/core_pattern'; \
          try sysrq_new_proc sh -c 'echo h > /tmp/p/sysrq-trigger'; \
          try kcore_new_proc sh -c 'head -c 1 /tmp/p/kcore | grep -q .'; \
        fi; \
        echo end=1";
    for extra in [
        &[][..],
        &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_NET_ADMIN"][..],
    ] {
        let when = format!("caps +{extra:?}");
        let (mut env, id, cg, out) = attacker(extra, &format!("{{ {script}; }} > /out/r 2>&1"));
        env.mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
        if !extra.is_empty() {
            env.with_userns();
            // The shared dir is written by the mapped root.
            std::process::Command::new("chown")
                .args(["100000:100000", out.to_str().unwrap()])
                .status()
                .unwrap();
        }
        run_detached(&env, &id);
        let r = wait_file(&out.join("r"));
        assert!(r.contains("end=1"), "{when}: {r}");
        assert!(
            r.contains("cgroup_file="),
            "{when}: no cgroup file to attack: {r}"
        );
        // With SYS_ADMIN in its user namespace it may remount /proc/sys and mount a new proc:
        // both belong to its own namespaces (as under runc). What it reaches through them is
        // still checked against the host's namespaces: every write after them stays refused.
        let allowed: &[&str] = if extra.is_empty() {
            &[]
        } else {
            &["remount_proc_sys=DONE", "new_proc=DONE"]
        };
        let done: Vec<&str> = r
            .lines()
            .filter(|l| l.ends_with("=DONE") && !allowed.contains(l))
            .collect();
        assert!(
            done.is_empty(),
            "{when}: attacks that worked: {done:?}\n{r}"
        );
        host.assert_unharmed(&when);
        wait_for("the attacker to exit", || procs_in_cgroup(&cg).is_empty());
        removed(&env, &id, &cg, &when);
    }
}
