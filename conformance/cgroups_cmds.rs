//! cgroup-backed commands: pause/resume, update, ps, events, kill --all (runc 1.1.5 shapes,
//! v1 host).

use crate::cgroups::Cg;
use crate::harness::{alive, wait_for};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A busy counter in a tmpfs /tmp, readable from the host through /proc/<pid>/root.
fn counter() -> Cg {
    let mut cg = Cg::new(json!({}));
    cg.env.mount(
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["rw"]}),
    );
    cg.env.args(&[
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/c; done",
    ]);
    cg
}

fn count(pid: i64) -> String {
    fs::read_to_string(format!("/proc/{pid}/root/tmp/c")).unwrap_or_default()
}

#[test]
fn pause_freezes_and_resume_thaws() {
    crate::require_hybrid!();
    let cg = counter();
    let pid = cg.create_start();
    wait_for("counter", || count(pid).trim().parse::<u64>().is_ok());

    cg.env.rt(&["pause", &cg.id]).ok();
    assert_eq!(cg.env.state(&cg.id)["status"], "paused");
    assert_eq!(cg.file("freezer", "freezer.state"), "FROZEN");
    let frozen = count(pid);
    sleep(Duration::from_secs(1));
    assert_eq!(count(pid), frozen, "counter advanced while paused");
    let again = cg.env.rt(&["pause", &cg.id]);
    assert_ne!(
        again.code, 0,
        "pausing a paused container fails (runc: container not running)"
    );

    cg.env.rt(&["resume", &cg.id]).ok();
    assert_eq!(cg.env.state(&cg.id)["status"], "running");
    assert_eq!(cg.file("freezer", "freezer.state"), "THAWED");
    let a = count(pid);
    wait_for("counter to advance", || {
        let b = count(pid);
        b.trim().parse::<u64>().is_ok() && b != a
    });
    let again = cg.env.rt(&["resume", &cg.id]);
    assert_ne!(
        again.code, 0,
        "resuming a running container fails (runc: container not paused)"
    );
}

/// runc thaws the cgroup after sending SIGKILL to a paused container, so it stops.
#[test]
fn kill_and_force_delete_of_paused_containers() {
    crate::require_hybrid!();
    let cg = counter();
    let pid = cg.create_start();
    cg.env.rt(&["pause", &cg.id]).ok();
    cg.env.kill(&cg.id, "KILL").ok();
    cg.env.wait_status(&cg.id, "stopped");
    assert!(!alive(pid));
    cg.env.delete(&cg.id).ok();
    cg.assert_gone();

    let cg = counter();
    let pid = cg.create_start();
    cg.env.rt(&["pause", &cg.id]).ok();
    let plain = cg.env.delete(&cg.id);
    assert_ne!(
        plain.code, 0,
        "plain delete of a paused container must fail"
    );
    cg.env.rt(&["delete", "--force", &cg.id]).ok();
    wait_for("paused init to die", || !alive(pid));
    assert!(!cg.env.root.join(&cg.id).exists());
    cg.assert_gone();
}

fn sleeper(resources: Value) -> Cg {
    let mut cg = Cg::new(resources);
    cg.env.args(&["sh", "-c", "sleep 1000 & exec sleep 1001"]);
    cg.create_start();
    wait_for("2 processes", || cg.procs().len() == 2);
    cg
}

#[test]
fn update_flags_change_cgroup_files() {
    crate::require_hybrid!();
    let cg = sleeper(
        json!({"memory": {"limit": 33554432}, "pids": {"limit": 100}, "cpu": {"shares": 1024}}),
    );
    let up = |args: &[&str]| {
        let mut a = vec!["update"];
        a.extend_from_slice(args);
        a.push(&cg.id);
        cg.env.rt(&a).ok();
    };
    up(&["--memory", "64M"]);
    assert_eq!(cg.file("memory", "memory.limit_in_bytes"), "67108864");
    up(&["--pids-limit", "5"]);
    assert_eq!(cg.file("pids", "pids.max"), "5");
    up(&["--cpu-quota", "30000", "--cpu-period", "100000"]);
    assert_eq!(cg.file("cpu", "cpu.cfs_quota_us"), "30000");
    assert_eq!(cg.file("cpu", "cpu.cfs_period_us"), "100000");
    up(&["--cpu-share", "256"]);
    assert_eq!(cg.file("cpu", "cpu.shares"), "256");
    up(&["--cpuset-cpus", "0", "--cpuset-mems", "0"]);
    assert_eq!(cg.file("cpuset", "cpuset.cpus"), "0");
    assert_eq!(cg.file("cpuset", "cpuset.mems"), "0");
    up(&["--memory-reservation", "16M"]);
    assert_eq!(cg.file("memory", "memory.soft_limit_in_bytes"), "16777216");
    assert_eq!(
        cg.file("memory", "memory.limit_in_bytes"),
        "67108864",
        "untouched by other flags"
    );
}

#[test]
fn update_resources_from_stdin_and_file() {
    crate::require_hybrid!();
    let cg = sleeper(json!({"memory": {"limit": 33554432}}));
    // What containerd sends: a LinuxResources object.
    let res = r#"{"memory":{"limit":50331648},"cpu":{"shares":300,"quota":40000,"period":200000},"pids":{"limit":7}}"#;
    // Env::rt gives stdin null; feed the JSON through a pipe.
    let mut child = Command::new(&cg.env.binary)
        .arg("--root")
        .arg(&cg.env.root)
        .args(["update", "-r", "-", &cg.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(res.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "update -r -");
    assert_eq!(cg.file("memory", "memory.limit_in_bytes"), "50331648");
    assert_eq!(cg.file("cpu", "cpu.shares"), "300");
    assert_eq!(cg.file("cpu", "cpu.cfs_quota_us"), "40000");
    assert_eq!(cg.file("cpu", "cpu.cfs_period_us"), "200000");
    assert_eq!(cg.file("pids", "pids.max"), "7");

    let file = cg.env.dir.join("res.json");
    fs::write(
        &file,
        r#"{"memory":{"limit":41943040,"reservation":20971520}}"#,
    )
    .unwrap();
    cg.env
        .rt(&["update", "-r", file.to_str().unwrap(), &cg.id])
        .ok();
    assert_eq!(cg.file("memory", "memory.limit_in_bytes"), "41943040");
    assert_eq!(cg.file("memory", "memory.soft_limit_in_bytes"), "20971520");
    assert_eq!(
        cg.file("pids", "pids.max"),
        "7",
        "fields absent from -r are kept"
    );
}

#[test]
fn update_rejects_invalid_values() {
    crate::require_hybrid!();
    let cg = sleeper(json!({"memory": {"limit": 33554432}, "cpu": {"shares": 1024}}));
    for args in [
        &["--memory", "abc"][..],
        &["--cpu-share", "xyz"],
        &["--cpuset-cpus", "99"],
        &["--memory", "1k"],
    ] {
        let mut a = vec!["update"];
        a.extend_from_slice(args);
        a.push(&cg.id);
        let out = cg.env.rt(&a);
        assert_ne!(out.code, 0, "update {args:?} must fail: {out:?}");
        assert!(
            !out.stderr.trim().is_empty(),
            "update {args:?}: no error message"
        );
    }
    assert_eq!(cg.file("memory", "memory.limit_in_bytes"), "33554432");
    assert_eq!(cg.file("cpu", "cpu.shares"), "1024");
    let bad = cg.env.dir.join("bad.json");
    fs::write(&bad, "not json").unwrap();
    assert_ne!(
        cg.env
            .rt(&["update", "-r", bad.to_str().unwrap(), &cg.id])
            .code,
        0
    );
    let gone = cg
        .env
        .rt(&["update", "--memory", "64M", "no-such-container"]);
    assert_ne!(gone.code, 0);
    assert!(gone.stderr.contains("does not exist"), "{gone:?}");
}

/// PIDs of table rows, located by the header's PID column.
fn table_pids(text: &str) -> (String, BTreeSet<i64>) {
    let mut lines = text.lines();
    let header = lines.next().expect("ps header").to_string();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .unwrap_or_else(|| panic!("no PID: {header}"));
    let pids = lines
        .map(|l| l.split_whitespace().nth(col).unwrap().parse().unwrap())
        .collect();
    (header, pids)
}

#[test]
fn ps_json_table_and_ps_options() {
    crate::require_hybrid!();
    let cg = sleeper(json!({}));
    let procs = cg.procs();
    let json_out = cg.env.rt(&["ps", "--format", "json", &cg.id]);
    let arr: Vec<i64> =
        serde_json::from_str(json_out.ok().stdout.trim()).expect("a JSON array of ints");
    assert_eq!(arr.iter().copied().collect::<BTreeSet<_>>(), procs);

    // Default: `ps -ef` filtered to the container's pids.
    let table = cg.env.rt(&["ps", &cg.id]);
    let (header, pids) = table_pids(&table.ok().stdout);
    assert!(
        header.starts_with("UID") && header.contains("CMD"),
        "{header}"
    );
    assert_eq!(pids, procs);

    // Arguments after the id replace `-ef` (runc passes them through verbatim, so
    // `ps <id> -- -o ...` makes ps(1) fail on "--"; not asserted).
    let custom = cg.env.rt(&["ps", &cg.id, "-o", "pid,comm"]);
    let text = &custom.ok().stdout;
    let (header, pids) = table_pids(text);
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert_eq!(pids, procs);
    assert!(
        text.lines()
            .skip(1)
            .all(|l| l.trim_end().ends_with("sleep")),
        "{text}"
    );

    assert_ne!(cg.env.rt(&["ps", "--format", "yaml", &cg.id]).code, 0);
    assert_ne!(cg.env.rt(&["ps", "no-such-container"]).code, 0);
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(|k| k.as_str())
        .collect()
}

fn assert_has(v: &Value, want: &[&str], what: &str) {
    let have = keys(v);
    for k in want {
        assert!(have.contains(k), "{what} lacks {k:?}: {v}");
    }
}

#[test]
fn events_stats_shape() {
    crate::require_hybrid!();
    let cg = sleeper(json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}}));
    let out = cg.env.rt(&["events", "--stats", &cg.id]);
    let text = &out.ok().stdout;
    assert_eq!(text.trim().lines().count(), 1, "one JSON object: {text}");
    let ev: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(keys(&ev), BTreeSet::from(["type", "id", "data"]));
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], cg.id.as_str());
    let d = &ev["data"];
    assert_has(
        d,
        &[
            "cpu",
            "cpuset",
            "memory",
            "pids",
            "blkio",
            "hugetlb",
            "intel_rdt",
        ],
        "data",
    );

    // Go omitempty: zero total/percpu/throttling counters are dropped, kernel/user kept.
    assert_has(
        &d["cpu"]["usage"],
        &["total", "percpu", "kernel", "user"],
        "cpu.usage",
    );
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert!(!d["cpu"]["usage"]["percpu"].as_array().unwrap().is_empty());
    assert!(d["cpu"]["throttling"].is_object());
    let cpus = d["cpuset"]["cpus"]
        .as_array()
        .expect("cpuset.cpus is a list of ints");
    assert!(
        !cpus.is_empty() && cpus.iter().all(Value::is_u64),
        "{}",
        d["cpuset"]
    );

    let m = &d["memory"];
    assert_has(m, &["usage", "swap", "kernel", "raw"], "memory");
    assert_has(
        &m["usage"],
        &["usage", "max", "limit", "failcnt"],
        "memory.usage",
    );
    assert!(m["usage"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(m["usage"]["limit"], 67108864);
    assert_eq!(m["usage"]["failcnt"], 0);
    assert_has(
        &m["raw"],
        &[
            "cache",
            "rss",
            "total_rss",
            "pgfault",
            "hierarchical_memory_limit",
        ],
        "memory.raw",
    );
    assert_eq!(m["raw"]["hierarchical_memory_limit"], 67108864);

    assert_eq!(d["pids"]["current"], 2);
    assert_eq!(d["pids"]["limit"], 50);
    for list in d["blkio"].as_object().unwrap().values() {
        for e in list.as_array().unwrap() {
            assert_has(e, &["major", "op"], "blkio entry");
            let op = e["op"].as_str().unwrap();
            assert!(
                ["Read", "Write", "Sync", "Async", "Discard", "Total"].contains(&op),
                "{e}"
            );
        }
    }

    cg.env.kill(&cg.id, "KILL").ok();
    cg.env.wait_status(&cg.id, "stopped");
    let stopped = cg.env.rt(&["events", "--stats", &cg.id]);
    assert_ne!(
        stopped.code, 0,
        "events on a stopped container: {stopped:?}"
    );
}

/// `events --interval 1s` streams stats once a second; an OOM kill inside the container
/// adds `{"type":"oom","id":...}` lines (runc listens on memory.oom_control via eventfd).
#[test]
fn events_stream_stats_and_oom() {
    crate::require_hybrid!();
    crate::require!(
        crate::skip::memsw(),
        "no swap accounting (memory.memsw.*) in this kernel"
    );
    let mut cg = Cg::new(json!({"memory": {"limit": 16777216, "swap": 16777216}}));
    cg.env.args(&[
        "sh",
        "-c",
        "sleep 2; head -c 67108864 /dev/zero | tail; sleep 100",
    ]);
    cg.create_start();
    let mut child = Command::new(&cg.env.binary)
        .arg("--root")
        .arg(&cg.env.root)
        .args(["events", "--interval", "1s", &cg.id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut stats, mut ooms) = (Vec::new(), 0);
    while (stats.len() < 2 || ooms == 0) && Instant::now() < deadline {
        let Ok((at, line)) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let ev: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(ev["id"], cg.id.as_str());
        match ev["type"].as_str() {
            Some("stats") => stats.push(at),
            Some("oom") => {
                assert_eq!(keys(&ev), BTreeSet::from(["type", "id"]), "{ev}");
                ooms += 1;
            }
            _ => panic!("unexpected event {ev}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(stats.len() >= 2, "fewer than 2 stats events in 10s");
    let gap = stats[1] - stats[0];
    assert!(
        gap < Duration::from_millis(2500),
        "stats gap {gap:?} with --interval 1s"
    );
    assert!(ooms >= 1, "no oom event");
}

#[test]
fn kill_all_without_pid_namespace_reaches_the_whole_cgroup() {
    crate::require_hybrid!();
    let mut cg = Cg::new(json!({}));
    let ns = cg.env.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    cg.env
        .args(&["sh", "-c", "sleep 101 & sleep 102 & sleep 103 & wait"]);
    cg.create_start();
    wait_for("4 processes in the cgroup", || cg.procs().len() == 4);
    let procs = cg.procs();
    cg.env.rt(&["kill", "--all", &cg.id, "KILL"]).ok();
    wait_for("every cgroup member to die", || {
        procs.iter().all(|&p| !alive(p))
    });
    cg.env.wait_status(&cg.id, "stopped");
    cg.env.delete(&cg.id).ok();
    cg.assert_gone();
}

/// In a pod the container shares a pid namespace: when init exits, containerd's shim runs
/// `kill --all` to reap what is left in the cgroup, and expects success (runc: exit 0).
#[test]
fn kill_all_of_a_stopped_container_sharing_a_pid_namespace_reaps_its_cgroup() {
    crate::require_hybrid!();
    let mut env = crate::harness::Env::new();
    let ns = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "pid")
        .cloned()
        .collect::<Vec<_>>();
    env.config["linux"]["namespaces"] = serde_json::Value::Array(ns);
    env.config["linux"]["cgroupsPath"] = serde_json::json!(format!("/ward-test/{}", env.id()));
    // init leaves a child that ignores TERM behind, then exits.
    env.args(&["sh", "-c", "(trap '' TERM; sleep 300) & sleep 0.2"]);
    let id = env.id();
    env.create(&id).ok();
    env.start(&id).ok();
    env.wait_status(&id, "stopped");
    let out = env.rt(&["kill", "--all", &id, "KILL"]);
    assert_eq!(out.code, 0, "{out:?}");
    env.delete(&id).ok();
}
