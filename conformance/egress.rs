//! Egress walls (`process.interception.network`): cgroup BPF programs decide TCP connects and
//! unconnected UDP sends in the kernel, a seccomp filter limits socket families. A static probe
//! makes the calls; loopback listeners run inside the container's own network namespace.
//! ward-only (runc has no egress policy).

use crate::harness::{runtime_is_runc, Env, Out};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn probe() -> PathBuf {
    crate::harness::static_binary("egress-probe", "egress_probe.c")
}

/// A container with the probe, CAP_NET_ADMIN (to bring up lo) and `policy`, running `script`.
fn probe_env(policy: Value, script: &str) -> Env {
    let mut env = Env::new();
    crate::harness::copy_executable(probe(), env.rootfs().join("probe"));
    env.args(&["sh", "-c", script]);
    let caps = json!([
        "CAP_NET_ADMIN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW"
    ]);
    env.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    if !policy.is_null() {
        env.config["process"]["interception"] = policy;
    }
    env
}

/// A container that brings up lo, starts TCP listeners on 8080 and 9090, waits until the kernel
/// lists both as listening (hex 1F90 and 2382 in state 0A of /proc/net/tcp{,6}; a fixed sleep
/// is too short on a loaded host), then runs the probe.
fn run(policy: Value, probe_cmds: &str) -> Out {
    let env = probe_env(
        policy,
        &format!(
            "ip link set lo up; for p in 8080 9090; do (nc -ll -p $p -e true &); done; \
             for i in $(seq 200); do t=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null); \
             echo \"$t\" | grep -qE ':1F90 [0:]+ 0A' && echo \"$t\" | grep -qE ':2382 [0:]+ 0A' && break; \
             sleep 0.05; done; /probe {probe_cmds}"
        ),
    );
    let id = env.id();
    env.run(&id)
}

fn skip() -> bool {
    if runtime_is_runc() {
        eprintln!("skipped: runc has no egress policy");
    }
    runtime_is_runc()
}

const EPERM: &str = "errno=1";

/// The container's log records, once there are at least `n` (the supervisor writes them a
/// little after the calls).
fn logged(env: &Env, id: &str, n: usize) -> Vec<Value> {
    let log = env.root.join(id).join("violations.jsonl");
    crate::harness::wait_for(&format!("{n} log records"), || {
        std::fs::read_to_string(&log)
            .map(|t| t.lines().count() >= n)
            .unwrap_or(false)
    });
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn tcp_connect_allowed_only_to_the_allowlist() {
    if skip() {
        return;
    }
    let policy = json!({"network": {"default": "deny", "allow": ["127.0.0.1:8080", "[::1]:8080"]}});
    let out = run(policy, "tcp 127.0.0.1 8080 , tcp 127.0.0.1 9090 , tcp 0.0.0.0 9090 , tcp ::1 8080 , tcp ::1 9090 , tcp ::ffff:127.0.0.1 9090");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["ok", EPERM, EPERM, "ok", EPERM, EPERM], "{out:?}");
    // The same container without a policy reaches both ports.
    let open = run(Value::Null, "tcp 127.0.0.1 8080 , tcp 127.0.0.1 9090");
    assert_eq!(
        open.stdout.lines().collect::<Vec<_>>(),
        ["ok", "ok"],
        "{open:?}"
    );
}

#[test]
fn every_udp_send_variant_is_decided_by_the_kernel() {
    if skip() {
        return;
    }
    let policy = json!({"network": {"default": "allow", "deny": ["127.0.0.0/8:53"]}});
    let out = run(
        policy,
        "sendto 127.0.0.1 53 , sendmsg 127.0.0.1 53 , sendmmsg 127.0.0.1 53 , sendto 127.0.0.1 54",
    );
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [EPERM, EPERM, EPERM, "ok"],
        "{out:?}"
    );
}

#[test]
fn denied_families_and_raw_sockets_cannot_be_created() {
    if skip() {
        return;
    }
    let policy = json!({"network": {"default": "deny", "allow": ["127.0.0.1"]}});
    // AF_PACKET=17, AF_VSOCK=40, AF_INET raw (3), AF_INET stream (1), AF_UNIX (1)
    let out = run(
        policy,
        "socket 17 3 , socket 40 1 , socket 2 3 , socket 2 1 , socket 1 1",
    );
    let eafnosupport = format!("errno={}", libc::EAFNOSUPPORT);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [eafnosupport.as_str(), &eafnosupport, EPERM, "ok", "ok"],
        "{out:?}"
    );
}

#[test]
fn exec_is_walled_and_the_own_seccomp_profile_still_applies() {
    if skip() {
        return;
    }
    let mut env = probe_env(
        json!({"network": {"default": "deny", "allow": ["127.0.0.1:8080"]}}),
        "ip link set lo up; nc -ll -p 8080 -e true & nc -ll -p 9090 -e true & sleep 60",
    );
    // The spec's own profile denies mkdir: it still does, beside ward's socket filter.
    env.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
    let id = env.id();
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    env.rt(&["run", "-d", "--bundle", &b, &id]).ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = env.rt(&[
        "exec",
        &id,
        "/probe",
        "tcp",
        "127.0.0.1",
        "8080",
        ",",
        "tcp",
        "127.0.0.1",
        "9090",
    ]);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["ok", EPERM],
        "{out:?}"
    );
    let mkdir = env.rt(&["exec", &id, "mkdir", "/dev/shm/x"]);
    assert_ne!(mkdir.code, 0);
    assert!(mkdir.stderr.contains("Permission denied"), "{mkdir:?}");
}

#[test]
fn invalid_policies_fail_create() {
    if skip() {
        return;
    }
    for (policy, word) in [
        (json!({"network": {"allow": ["10.0.0.0/40"]}}), "prefix"),
        (
            json!({"network": {"families": ["carrier-pigeon"]}}),
            "families[0]",
        ),
        (json!({"observe": ["ptrace"]}), "cannot be observed"),
        (
            json!({"network": {"allowUnix": ["run/x.sock"]}}),
            "allowUnix",
        ),
    ] {
        let mut env = Env::new();
        env.args(&["true"]);
        env.config["process"]["interception"] = policy;
        env.assert_run_refused(word);
    }
}

#[test]
fn denials_are_logged_by_the_supervisor_and_nothing_outlives_delete() {
    if skip() {
        return;
    }
    crate::require!(
        crate::skip::unix_hooks(),
        "no cgroup unix socket hooks (Linux 6.7+ with BTF)"
    );
    let env = probe_env(
        json!({"network": {"default": "allow", "deny": ["127.0.0.0/8:53", "127.0.0.1:9090"],
            "allowUnix": ["/run/x.sock"]}}),
        "ip link set lo up; /probe tcp 127.0.0.1 9090 , sendto 127.0.0.1 53 , sendto 127.0.0.1 54",
    );
    let id = env.id();
    env.create(&id).ok();
    let programs = attached_programs(env.state(&id)["pid"].as_i64().unwrap());
    assert_eq!(
        programs.len(),
        6,
        "connect4/6, sendmsg4/6, unix connect/sendmsg: {programs:?}"
    );
    assert!(programs.iter().all(|p| program_exists(*p)));
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(env.root.join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let supervisor = state["supervisor"][0]
        .as_i64()
        .expect("a supervisor is recorded");
    assert!(crate::harness::alive(supervisor));
    env.start(&id).ok();
    env.wait_status(&id, "stopped");
    let records = logged(&env, &id, 2);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["syscall"], "connect");
    assert_eq!(records[0]["destination"], "127.0.0.1:9090");
    assert_eq!(records[0]["rule"], "deny 127.0.0.1/32:9090-9090");
    assert_eq!(records[1]["syscall"], "sendmsg");
    assert_eq!(records[1]["destination"], "127.0.0.1:53");
    assert_eq!(records[1]["rule"], "deny 127.0.0.0/8:53-53");
    for r in &records {
        assert_eq!(r["id"], id.as_str());
        assert!(r["pid"].as_i64().unwrap() > 0);
        assert_eq!(r["type"], "violation");
    }
    env.delete(&id).ok();
    assert!(
        !crate::harness::alive(supervisor),
        "the supervisor outlived delete"
    );
    // The kernel detaches a removed cgroup's programs from a work queue, soon after rmdir.
    let t0 = std::time::Instant::now();
    while programs.iter().any(|p| program_exists(*p)) && t0.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left: Vec<u32> = programs
        .into_iter()
        .filter(|p| program_exists(*p))
        .collect();
    assert!(left.is_empty(), "BPF programs outlived delete: {left:?}");
}

fn bpf(cmd: i64, attr: &mut [u8; 128]) -> i64 {
    // SAFETY: `attr` is a bpf_attr-sized buffer for the call; pointers in it are live.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) }
}

/// Ids of the egress programs attached to the cgroup v2 dir of process `pid`.
fn attached_programs(pid: i64) -> Vec<u32> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    let mount = if Path::new("/sys/fs/cgroup/unified").exists() {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    };
    let dir = std::fs::File::open(format!("{mount}{rel}")).unwrap();
    let mut ids = Vec::new();
    for attach_type in [10u32, 11, 14, 15, 49, 50] {
        let mut found = [0u32; 8];
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&(std::os::fd::AsRawFd::as_raw_fd(&dir) as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&attach_type.to_ne_bytes());
        attr[16..24].copy_from_slice(&(found.as_mut_ptr() as u64).to_ne_bytes());
        attr[24..28].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(bpf(16, &mut attr), 0, "BPF_PROG_QUERY {attach_type}"); // BPF_PROG_QUERY
        let n = u32::from_ne_bytes(attr[24..28].try_into().unwrap()) as usize;
        ids.extend_from_slice(&found[..n]);
    }
    ids
}

/// Whether a BPF program with this id is still loaded.
fn program_exists(id: u32) -> bool {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&id.to_ne_bytes());
    let fd = bpf(13, &mut attr); // BPF_PROG_GET_FD_BY_ID
    if fd >= 0 {
        // SAFETY: closing the fd bpf(2) just returned to us.
        unsafe { libc::close(fd as i32) };
    }
    fd >= 0
}

/// Unix sockets the probe makes in the container: listeners and bound datagram sockets, allowed
/// and not, then connects and sends to each, in several spellings of the same address.
const UNIX_SETUP: &str = "unix-listen /tmp/ok.sock , unix-listen /tmp/no.sock , unix-listen @ok , unix-listen @no , unix-bind /tmp/dg.sock , unix-bind /tmp/dgno.sock";

#[test]
fn unix_sockets_are_reached_only_at_listed_addresses() {
    if skip() {
        return;
    }
    crate::require!(
        crate::skip::unix_hooks(),
        "no cgroup unix socket hooks (Linux 6.7+ with BTF)"
    );
    let policy = json!({"network": {"default": "allow",
        "allowUnix": ["/tmp/ok.sock", "@ok", "/tmp/dg.sock"]}});
    let mut env = probe_env(
        policy,
        &format!(
            "cd /tmp && /probe {UNIX_SETUP} , unix-connect /tmp/ok.sock , unix-connect /tmp/no.sock \
             , unix-connect @ok , unix-connect @no , unix-connect @ok2 , unix-sendto /tmp/dg.sock \
             , unix-sendto /tmp/dgno.sock , unix-connect-pad /tmp/ok.sock , unix-connect-pad /tmp/no.sock \
             , unix-connect ok.sock , unix-connect /tmp//ok.sock , unix-connect /tmp/missing.sock \
             > /tmp/probe.out"
        ),
    );
    let tmp = env.shared_dir("tmp", "/tmp");
    let id = env.id();
    env.create(&id).ok();
    env.start(&id).ok();
    env.wait_status(&id, "stopped");
    let out = std::fs::read_to_string(tmp.join("probe.out")).unwrap();
    let setup = ["ok"; 6];
    let expected = [
        "ok", EPERM, // the listed path; another path
        "ok", EPERM, EPERM, // the listed abstract name; others
        "ok", EPERM, // datagram sends: sendmsg hook
        "ok", EPERM, // the whole sockaddr_un with junk after the NUL: the name still decides
        EPERM, EPERM, // other spellings of the listed socket are other addresses
        EPERM, // refused before the kernel looks the path up
    ];
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [&setup[..], &expected[..]].concat(), "{out}");
    let records = logged(&env, &id, 8);
    let seen: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["syscall"].as_str().unwrap(),
                r["destination"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("connect", "/tmp/no.sock"),
            ("connect", "@no"),
            ("connect", "@ok2"),
            ("sendmsg", "/tmp/dgno.sock"),
            ("connect", "/tmp/no.sock"),
            ("connect", "ok.sock"),
            ("connect", "/tmp//ok.sock"),
            ("connect", "/tmp/missing.sock"),
        ],
        "{records:?}"
    );
    assert!(records.iter().all(|r| r["rule"] == "not in allowUnix"));
    env.delete(&id).ok();
    // Without allowUnix, unix sockets are not restricted; with an empty list, none is reached.
    for (rules, want) in [(Value::Null, "ok"), (json!([]), EPERM)] {
        let mut network = json!({"default": "allow"});
        if !rules.is_null() {
            network["allowUnix"] = rules;
        }
        let mut env = probe_env(
            json!({ "network": network }),
            &format!("/probe {UNIX_SETUP} , unix-connect /tmp/ok.sock , unix-connect @ok"),
        );
        env.shared_dir("tmp", "/tmp");
        let out = env.run(&env.id());
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines, [&setup[..], &[want, want][..]].concat(), "{out:?}");
    }
}

#[test]
fn an_exec_process_meets_the_same_unix_rules() {
    if skip() {
        return;
    }
    crate::require!(
        crate::skip::unix_hooks(),
        "no cgroup unix socket hooks (Linux 6.7+ with BTF)"
    );
    let mut env = probe_env(
        json!({"network": {"allowUnix": ["/tmp/ok.sock"]}}),
        &format!("/probe {UNIX_SETUP} , hold 60"),
    );
    let tmp = env.shared_dir("tmp", "/tmp");
    let id = env.id();
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    env.rt(&["run", "-d", "--bundle", &b, &id]).ok();
    crate::harness::wait_for("the probe's sockets", || tmp.join("dgno.sock").exists());
    let out = env.rt(&[
        "exec",
        &id,
        "/probe",
        "unix-connect",
        "/tmp/ok.sock",
        ",",
        "unix-connect",
        "/tmp/no.sock",
    ]);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["ok", EPERM],
        "{out:?}"
    );
}

/// Runs `ip` with arguments, panicking with its output on failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

/// Two network namespaces of this test's own, joined by a veth pair: the container's (joined by
/// path) and a server's. Removed on drop.
struct Veth {
    names: [String; 2],
}

impl Drop for Veth {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

#[test]
fn a_server_across_a_veth_pair_is_reached_only_where_allowed() {
    if skip() {
        return;
    }
    let tag = std::process::id() % 200 + 20;
    let (cns, sns) = (format!("wardc{tag}"), format!("wards{tag}"));
    let veth = Veth {
        names: [cns.clone(), sns.clone()],
    };
    let (caddr, saddr) = (format!("10.231.{tag}.1"), format!("10.231.{tag}.2"));
    ip(&["netns", "add", &cns]);
    ip(&["netns", "add", &sns]);
    ip(&[
        "link",
        "add",
        &format!("wc{tag}"),
        "netns",
        &cns,
        "type",
        "veth",
        "peer",
        "name",
        &format!("ws{tag}"),
        "netns",
        &sns,
    ]);
    ip(&[
        "-n",
        &cns,
        "addr",
        "add",
        &format!("{caddr}/30"),
        "dev",
        &format!("wc{tag}"),
    ]);
    ip(&[
        "-n",
        &sns,
        "addr",
        "add",
        &format!("{saddr}/30"),
        "dev",
        &format!("ws{tag}"),
    ]);
    for (ns, dev) in [(&cns, format!("wc{tag}")), (&sns, format!("ws{tag}"))] {
        ip(&["-n", ns, "link", "set", &dev, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    // Servers in the server namespace: each answers "hello-<port>" to every connection.
    let mut servers = Vec::new();
    for port in ["8080", "9090"] {
        let reply = format!("hello-{port}");
        servers.push(
            Command::new("ip")
                .args([
                    "netns", "exec", &sns, "busybox", "nc", "-ll", "-p", port, "-e", "echo", &reply,
                ])
                .spawn()
                .expect("server"),
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut env = Env::new();
    let ns_path = format!("/var/run/netns/{cns}");
    let namespaces: Vec<Value> = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            if n["type"] == "network" {
                json!({"type": "network", "path": ns_path})
            } else {
                n.clone()
            }
        })
        .collect();
    env.config["linux"]["namespaces"] = Value::Array(namespaces);
    env.config["process"]["interception"] =
        json!({"network": {"default": "deny", "allow": [format!("{saddr}:8080")]}});
    let script =
        format!("echo | nc -w 2 {saddr} 8080; echo | nc -w 2 {saddr} 9090 || echo refused-9090");
    env.args(&["sh", "-c", &script]);
    let id = env.id();
    let out = env.run(&id);
    for mut s in servers {
        let _ = s.kill();
        let _ = s.wait();
    }
    drop(veth);
    assert_eq!(out.stdout, "hello-8080\nrefused-9090\n", "{out:?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
}
