//! Egress by domain name, read as an attacker inside the container would (issue 16 review):
//! each test runs a real container with a domain policy under `ward run`, makes the attack and
//! asserts it fails. ward-only (runc has no egress policy).

use crate::harness::{runtime_is_runc, Env, Out};
use serde_json::{json, Value};
use std::process::Command;

fn skip() -> bool {
    if runtime_is_runc() {
        eprintln!("skipped: runc has no egress policy");
    }
    runtime_is_runc()
}

fn policy() -> Value {
    json!({"network": {"allowedDomains": ["allowed.example"], "proxyEnv": true}})
}

/// A container with the egress probe, `caps` added to the defaults, the domain policy, `script`.
fn attack_env(extra_caps: &[&str], script: &str) -> Env {
    let mut env = Env::new();
    let probe = crate::harness::static_binary("egress-probe", "egress_probe.c");
    crate::harness::copy_executable(probe, env.rootfs().join("probe"));
    let mut caps = vec!["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    caps.extend_from_slice(extra_caps);
    env.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    env.config["process"]["interception"] = policy();
    env.args(&["sh", "-c", script]);
    env
}

fn text(out: &Out) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

/// The lines of `out` starting with `tag=`: what the probe printed after each tag.
fn tagged(out: &Out, tag: &str) -> String {
    let t = text(out);
    t.lines()
        .skip_while(|l| !l.starts_with(&format!("{tag}:")))
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// A network namespace of the test's own, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("ward-t-attack-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(ok.success(), "ip netns add {name}");
        Netns(name)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }

    /// Waits until a socket in this namespace listens on TCP `port` (state 0A) or is bound to
    /// UDP `port` (state 07), as /proc/net/{tcp,udp}{,6} list them: a test that checks a
    /// listener is not reached must first know it is there.
    fn wait_listening(&self, proto: &str, port: u16) {
        let state = if proto == "tcp" { "0A" } else { "07" };
        let port = format!(":{port:04X}");
        crate::harness::wait_for(&format!("{proto} port {port} in {}", self.0), || {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.0, "cat"])
                .arg(format!("/proc/net/{proto}"))
                .arg(format!("/proc/net/{proto}6"))
                .output()
                .expect("ip netns exec cat");
            String::from_utf8_lossy(&out.stdout).lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&port) && f[3] == state
            })
        });
    }

    fn join(&self, env: &mut Env) {
        for ns in env.config["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(self.path());
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

/// With CAP_NET_RAW: packet and raw sockets are refused by the families filter; UDP and TCP to a
/// denied address, IPv6 anywhere, v4-mapped denied addresses, UDP to the proxy's address on
/// ports that are not DNS: all refused by the wall (EPERM, not just "no route").
#[test]
fn raw_sockets_and_other_paths_around_the_proxy_are_refused() {
    if skip() {
        return;
    }
    let env = attack_env(
        &["CAP_NET_RAW"],
        "echo packet:; /probe socket 17 3; echo raw:; /probe socket 2 3; \
         echo raw6:; /probe socket 10 3; \
         echo udp:; /probe sendto 192.0.2.80 443; echo tcp:; /probe tcp 192.0.2.80 443; \
         echo tcp6:; /probe tcp 2001:db8::1 443; echo udp6:; /probe sendto 2001:db8::1 443; \
         echo mapped:; /probe tcp ::ffff:192.0.2.80 443; \
         echo dot:; /probe tcp 192.0.2.53 853; echo mdns:; /probe sendto 192.0.2.53 5353",
    );
    let out = env.run(&env.id());
    assert_eq!(out.code, 0, "{out:?}");
    for (tag, want) in [
        ("packet", "errno=97"),
        ("raw", "errno=1"),
        ("raw6", "errno=1"),
        ("udp", "errno=1"),
        ("tcp", "errno=1"),
        ("tcp6", "errno=1"),
        ("udp6", "errno=1"),
        ("mapped", "errno=1"),
        ("dot", "errno=1"),
        ("mdns", "errno=1"),
    ] {
        assert_eq!(tagged(&out, tag), want, "{tag}: {}", text(&out));
    }
}

/// A pod: a sidecar without domain rules listens on every address (0.0.0.0:8080, tcp and
/// its TCP port) of the network namespace both share. The walled container must not reach it through
/// the proxy's range, which is local on `lo` (the proxy's own address on another port, or a
/// name address over UDP), any more than through 127.0.0.1.
#[test]
fn a_pod_neighbours_wildcard_listener_is_not_reachable_through_the_range() {
    if skip() {
        return;
    }
    let netns = Netns::new("pod");
    let mut sidecar = Env::new();
    netns.join(&mut sidecar);
    sidecar.args(&[
        "sh",
        "-c",
        "ip link set lo up 2>/dev/null; nc -ll -p 8080 -e echo SIDECAR & sleep 60",
    ]);
    let caps = json!(["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_KILL"]);
    sidecar.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let sid = sidecar.id();
    sidecar.write_config();
    let b = sidecar.bundle.to_str().unwrap().to_string();
    sidecar.rt(&["run", "-d", "--bundle", &b, &sid]).ok();
    struct Stop<'a>(&'a Env, String);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.kill(&self.1, "KILL");
            let _ = self.0.rt(&["delete", "-f", &self.1]);
        }
    }
    let _stop = Stop(&sidecar, sid);
    netns.wait_listening("tcp", 8080);
    let mut env = attack_env(
        &[],
        "echo lo:; nc -w 2 127.0.0.1 8080 </dev/null; \
         echo proxy:; nc -w 2 198.18.0.1 8080 </dev/null; echo rc=$?; \
         echo mapped:; /probe tcp ::ffff:198.18.0.1 8080; \
         echo name:; nc -w 2 198.18.0.9 8080 </dev/null; echo rc=$?",
    );
    netns.join(&mut env);
    let out = env.run(&env.id());
    let t = text(&out);
    assert!(t.contains("not permitted"), "the control: {t}");
    assert!(
        !t.contains("SIDECAR"),
        "the walled container reached the sidecar's listener through the proxy's range: {t}"
    );
    assert_eq!(tagged(&out, "mapped"), "errno=1", "{t}");
}

/// The same pod: a sidecar's UDP socket on 0.0.0.0:5300. The walled container's datagrams to
/// the proxy's range (a name address, the proxy's own address on another port) must not reach
/// it: only the proxy's DNS takes UDP there.
#[test]
fn a_pod_neighbours_udp_socket_is_not_reachable_through_the_range() {
    if skip() {
        return;
    }
    let netns = Netns::new("podu");
    let mut sidecar = Env::new();
    netns.join(&mut sidecar);
    let marks = sidecar.shared_dir("marks", "/marks");
    let mark = crate::harness::static_binary("udp-mark", "udp_mark.c");
    crate::harness::copy_executable(mark, sidecar.rootfs().join("udp_mark"));
    sidecar.args(&[
        "sh",
        "-c",
        "ip link set lo up; /udp_mark 5300 /marks/got & sleep 60",
    ]);
    let caps = json!(["CAP_NET_ADMIN", "CAP_KILL"]);
    sidecar.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let sid = sidecar.id();
    sidecar.write_config();
    let b = sidecar.bundle.to_str().unwrap().to_string();
    sidecar.rt(&["run", "-d", "--bundle", &b, &sid]).ok();
    struct Stop<'a>(&'a Env, String);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.kill(&self.1, "KILL");
            let _ = self.0.rt(&["delete", "-f", &self.1]);
        }
    }
    let _stop = Stop(&sidecar, sid);
    let got = marks.join("got");
    // The control: the sidecar's socket takes datagrams from a neighbour without walls.
    let mut control = Env::new();
    netns.join(&mut control);
    let probe = crate::harness::static_binary("egress-probe", "egress_probe.c");
    crate::harness::copy_executable(&probe, control.rootfs().join("probe"));
    netns.wait_listening("udp", 5300);
    control.args(&["sh", "-c", "/probe sendto 127.0.0.1 5300"]);
    let out = control.run(&control.id());
    crate::harness::wait_for("the control datagram", || got.exists());
    std::fs::remove_file(&got).unwrap();
    let mut env = attack_env(
        &[],
        "echo name:; /probe sendto 198.18.0.9 5300; echo mapped:; /probe sendto ::ffff:198.18.0.9 5300; echo proxy:; /probe sendto 198.18.0.1 5300; \
         echo lo:; /probe sendto 127.0.0.1 5300",
    );
    netns.join(&mut env);
    let out2 = env.run(&env.id());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(tagged(&out2, "lo"), "errno=1", "{out:?} {out2:?}");
    assert!(
        !got.exists(),
        "a datagram reached the sidecar through the proxy's range: {out2:?}"
    );
}

/// With CAP_SYS_ADMIN: a fresh cgroup2 mount and a write of its own pid to a cgroup.procs
/// outside the walled cgroup would leave the wall (and the DNS redirect) behind.
#[test]
fn cap_sys_admin_cannot_leave_the_walled_cgroup() {
    if skip() {
        return;
    }
    for cgroupns in [true, false] {
        let mut env = attack_env(
            &["CAP_SYS_ADMIN"],
            "mkdir -p /dev/shm/cg; mount -t cgroup2 none /dev/shm/cg; echo mount=$?; \
             cat /proc/self/cgroup; echo $$ > /dev/shm/cg/cgroup.procs; echo move=$?; \
             cat /proc/self/cgroup; echo tcp:; /probe tcp 192.0.2.80 443",
        );
        if cgroupns {
            env.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "cgroup"}));
        }
        let out = env.run(&env.id());
        assert_eq!(
            tagged(&out, "tcp"),
            "errno=1",
            "cgroupns={cgroupns}: left the wall: {}",
            text(&out)
        );
    }
}

/// With CAP_SYS_ADMIN (and a cgroup namespace, so the cgroup it mounts is its own, walled
/// one): bpf(2) could find the wall's programs by id and detach them.
#[test]
fn cap_sys_admin_cannot_detach_the_wall() {
    if skip() {
        return;
    }
    let mut env = attack_env(
        &["CAP_SYS_ADMIN"],
        "mkdir -p /dev/shm/cg; mount -t cgroup2 none /dev/shm/cg; echo mount=$?; \
         /bpf_detach /dev/shm/cg; echo tcp:; /probe tcp 192.0.2.80 443",
    );
    let detach = crate::harness::static_binary("bpf-detach", "bpf_detach.c");
    crate::harness::copy_executable(detach, env.rootfs().join("bpf_detach"));
    env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    let out = env.run(&env.id());
    let t = text(&out);
    assert!(t.contains("mount=0"), "the control: {t}");
    assert!(!t.contains("detached="), "bpf(2) reached the wall: {t}");
    assert_eq!(tagged(&out, "tcp"), "errno=1", "the wall is gone: {t}");
}

/// Forged requests at the proxy's listeners, none of which may reach a denied name or an IP
/// literal: each answer must be a refusal (403 / 400 / SOCKS 0x02) and the log must name it.
#[test]
fn forged_requests_at_the_proxy_are_refused() {
    if skip() {
        return;
    }
    let attacks: &[(&str, &str, &str)] = &[
        ("connect-ip", "198.18.0.1 3128", "CONNECT 192.0.2.80:443 HTTP/1.1\\r\\nHost: 192.0.2.80:443\\r\\n\\r\\n"),
        ("connect-userinfo", "198.18.0.1 3128", "CONNECT allowed.example@evil.example:443 HTTP/1.1\\r\\n\\r\\n"),
        ("connect-suffix", "198.18.0.1 3128", "CONNECT allowed.example.evil.example:443 HTTP/1.1\\r\\n\\r\\n"),
        ("absolute-ip", "198.18.0.1 3128", "GET http://192.0.2.80/ HTTP/1.1\\r\\nHost: 192.0.2.80\\r\\n\\r\\n"),
        ("absolute-https", "198.18.0.1 3128", "GET https://evil.example/ HTTP/1.1\\r\\nHost: allowed.example\\r\\n\\r\\n"),
        ("t-absolute", "198.18.0.2 80", "GET http://evil.example/ HTTP/1.1\\r\\nHost: allowed.example\\r\\n\\r\\n"),
        ("t-suffix", "198.18.0.2 80", "GET / HTTP/1.1\\r\\nHost: allowed.example.evil.example\\r\\n\\r\\n"),
        ("t-no-host", "198.18.0.2 80", "GET / HTTP/1.0\\r\\n\\r\\n"),
        ("t-two-hosts", "198.18.0.2 80", "GET / HTTP/1.1\\r\\nHost: allowed.example\\r\\nHost: evil.example\\r\\n\\r\\n"),
        ("t-other-port", "198.18.0.2 80", "GET / HTTP/1.1\\r\\nHost: allowed.example:8080\\r\\n\\r\\n"),
        ("t-smuggle", "198.18.0.2 80", "POST / HTTP/1.1\\r\\nHost: allowed.example\\r\\nContent-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET / HTTP/1.1\\r\\nHost: evil.example\\r\\n\\r\\n"),
        ("t-proxy-addr", "198.18.0.1 3129", "GET / HTTP/1.1\\r\\nHost: allowed.example\\r\\n\\r\\n"),
    ];
    let mut script = String::from("nslookup allowed.example 192.0.2.53 >/dev/null; ");
    for (tag, to, bytes) in attacks {
        script.push_str(&format!(
            "echo {tag}:; printf '{bytes}' | nc -w 3 {to} | head -c 200 | tr -d '\\r' | head -1; echo; "
        ));
    }
    // SOCKS5: no-auth, then CONNECT to an IPv4 literal, then to an IPv6 literal.
    script.push_str(
        "echo socks4:; printf '\\005\\001\\000\\005\\001\\000\\001\\300\\000\\002\\120\\001\\273' \
         | nc -w 3 198.18.0.1 3128 | od -An -tx1 | head -1; \
         echo socks6:; printf '\\005\\001\\000\\005\\001\\000\\004\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\001\\000\\120' \
         | nc -w 3 198.18.0.1 3128 | od -An -tx1 | head -1",
    );
    let env = attack_env(&[], &script);
    let id = env.id();
    let out = env.run(&id);
    for (tag, _, _) in attacks {
        let got = tagged(&out, tag);
        assert!(
            got.starts_with("HTTP/1.1 403") || got.starts_with("HTTP/1.1 400") || got.is_empty(),
            "{tag}: {got:?}: {}",
            text(&out)
        );
    }
    for tag in ["socks4", "socks6"] {
        let got = tagged(&out, tag);
        assert!(got.trim().starts_with("05 00 05 02"), "{tag}: {got:?}");
    }
}

/// ward's DNS under abuse: malformed queries (a compression loop, a short header, junk), a TCP
/// length prefix that lies, then more distinct names under an allowed wildcard than the slot
/// has addresses. The table fills up (SERVFAIL, never a crash or a recycled address), and the
/// proxy still answers the name it handed out first.
#[test]
fn dns_abuse_fills_the_table_without_taking_the_proxy_down() {
    if skip() {
        return;
    }
    let mut env = attack_env(
        &[],
        "nslookup allowed.example 192.0.2.53 | grep -c 198.18.0.2; /dns_flood 192.0.2.53 4200",
    );
    env.config["process"]["interception"] =
        json!({"network": {"allowedDomains": ["allowed.example", "*.wild.example"]}});
    let flood = crate::harness::static_binary("dns-flood", "dns_flood.c");
    crate::harness::copy_executable(flood, env.rootfs().join("dns_flood"));
    let out = env.run(&env.id());
    let t = text(&out);
    assert!(t.contains("final=0"), "the proxy stopped answering: {t}");
    let counts = t
        .lines()
        .find(|l| l.starts_with("noerror="))
        .unwrap_or_default();
    let get = |k: &str| -> i64 {
        counts
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    assert!(get("servfail") > 0, "the table never filled: {t}");
    assert_eq!(get("timeout"), 0, "{t}");
    assert_eq!(get("other"), 0, "{t}");
    assert!(get("noerror") + get("servfail") == 4200, "{t}");
}

/// A pod of two walled containers in one network namespace, different policies: B gets its
/// own slot, its DNS goes to its own proxy, and A's slot (A's names, A's explicit proxy) is
/// outside B's wall. Neither sees the other's proxy process or holds its sockets.
#[test]
fn a_pod_neighbour_cannot_use_the_other_containers_slot() {
    if skip() {
        return;
    }
    let netns = Netns::new("pod2");
    let mut a = attack_env(&[], "sleep 60");
    a.config["process"]["interception"] = json!({"network": {"allowedDomains": ["a.example"]}});
    netns.join(&mut a);
    let aid = a.id();
    a.write_config();
    let bundle = a.bundle.to_str().unwrap().to_string();
    let started = a.rt(&["run", "-d", "--bundle", &bundle, &aid]);
    assert_eq!(started.code, 0, "{started:?}");
    struct Stop<'a>(&'a Env, String);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.kill(&self.1, "KILL");
            let _ = self.0.rt(&["delete", "-f", &self.1]);
        }
    }
    let _stop = Stop(&a, aid.clone());
    let out = a.rt(&["exec", &aid, "nslookup", "a.example", "192.0.2.53"]);
    assert!(out.stdout.contains("198.18.0.2"), "the control: {out:?}");
    let mut b = attack_env(
        &[],
        "echo dns-a:; nslookup a.example 192.0.2.53 >/dev/null 2>&1; echo $?; \
         echo dns-b:; nslookup b.example 192.0.2.53 | grep -c 198.18.16.2; \
         echo name-a:; /probe tcp 198.18.0.2 443; echo proxy-a:; /probe tcp 198.18.0.1 3128; \
         echo dns-a-direct:; /probe sendto 198.18.0.1 53; \
         echo procs:; cat /proc/[0-9]*/comm 2>/dev/null | grep -c ward; \
         echo sockets:; ls -l /proc/1/fd | grep -c socket",
    );
    b.config["process"]["interception"] = json!({"network": {"allowedDomains": ["b.example"]}});
    netns.join(&mut b);
    let out = b.run(&b.id());
    let t = text(&out);
    for (tag, want) in [
        ("dns-a", "1"),
        ("dns-b", "1"),
        ("name-a", "errno=1"),
        ("proxy-a", "errno=1"),
        ("procs", "0"),
        ("sockets", "0"),
    ] {
        assert_eq!(tagged(&out, tag), want, "{tag}: {t}");
    }
    // A datagram to A's DNS is rewritten to B's own proxy (port 53, any server): allowed.
    assert_eq!(tagged(&out, "dns-a-direct"), "ok", "{t}");
}

/// A joined network namespace with a route out (a pod's, a CNI's): a server behind a veth at
/// 192.0.2.80, which the wall refuses. With CAP_NET_ADMIN the container could take the proxy's
/// range off `lo` and route one of its addresses (which the wall allows) to that server (NAT,
/// tc and tunnels would do the same: the cgroup hooks see the address before the network
/// stack rewrites or reroutes it). ward must not run a walled process that way.
#[test]
fn cap_net_admin_in_a_routed_namespace_cannot_route_past_the_wall() {
    if skip() {
        return;
    }
    let pod = Netns::new("rt");
    let out = Netns::new("out");
    let pid = std::process::id();
    let (a, b) = (format!("wa{pid}"), format!("wb{pid}"));
    let sh = |cmd: &str| {
        let ok = Command::new("sh").args(["-c", cmd]).status().expect("sh");
        assert!(ok.success(), "{cmd}");
    };
    sh(&format!(
        "ip link add {a} type veth peer name {b} && ip link set {a} netns {p} && \
         ip link set {b} netns {o} && ip -n {p} addr add 192.0.2.1/24 dev {a} && \
         ip -n {p} link set {a} up && ip -n {p} link set lo up && \
         ip -n {o} addr add 192.0.2.80/24 dev {b} && ip -n {o} link set {b} up && \
         ip -n {o} link set lo up && ip -n {o} addr add 198.18.0.5/32 dev lo",
        p = pod.0,
        o = out.0
    ));
    let mut listener = Command::new("ip")
        .args([
            "netns", "exec", &out.0, "busybox", "nc", "-ll", "-p", "443", "-e", "echo", "REACHED",
        ])
        .spawn()
        .expect("listener");
    out.wait_listening("tcp", 443);
    let mut env = attack_env(
        &["CAP_NET_ADMIN"],
        "echo direct:; nc -w 2 192.0.2.80 443 </dev/null; \
         /route_around; echo via:; nc -w 2 198.18.0.5 443 </dev/null",
    );
    let tool = crate::harness::static_binary("route-around", "route_around.c");
    crate::harness::copy_executable(tool, env.rootfs().join("route_around"));
    pod.join(&mut env);
    let run = env.run(&env.id());
    let _ = listener.kill();
    let _ = listener.wait();
    let t = text(&run);
    assert!(
        !t.contains("REACHED"),
        "the container reached 192.0.2.80: {t}"
    );
    env.assert_run_refused(
        "process.capabilities.bounding: CAP_NET_ADMIN beside process.interception.network in a joined network namespace",
    );
    // Nor may `exec --cap CAP_NET_ADMIN` add it to a walled container that runs without it.
    let mut listener = Command::new("ip")
        .args([
            "netns", "exec", &out.0, "busybox", "nc", "-ll", "-p", "443", "-e", "echo", "REACHED",
        ])
        .spawn()
        .expect("listener");
    let mut calm = attack_env(&[], "sleep 60");
    pod.join(&mut calm);
    crate::harness::copy_executable(
        crate::harness::static_binary("route-around", "route_around.c"),
        calm.rootfs().join("route_around"),
    );
    let id = calm.id();
    calm.write_config();
    let b = calm.bundle.to_str().unwrap().to_string();
    let started = calm.rt(&["run", "-d", "--bundle", &b, &id]);
    assert_eq!(started.code, 0, "{started:?}");
    let execed = calm.rt(&[
        "exec",
        "--cap",
        "CAP_NET_ADMIN",
        &id,
        "sh",
        "-c",
        "/route_around; nc -w 2 198.18.0.5 443 </dev/null",
    ]);
    calm.kill(&id, "KILL");
    let _ = calm.rt(&["delete", "-f", &id]);
    let _ = listener.kill();
    let _ = listener.wait();
    assert!(
        !execed.stdout.contains("REACHED"),
        "exec --cap CAP_NET_ADMIN routed past the wall: {execed:?}"
    );
    assert!(
        execed.code != 0 && execed.stderr.contains("CAP_NET_ADMIN beside"),
        "{execed:?}"
    );
}

/// A pod again, and the walled container's proxy killed: the steering goes with it, and a
/// name address must then refuse (fail closed), not fall through to the sidecar's listener
/// on 0.0.0.0.
#[test]
fn a_dead_proxy_does_not_open_the_range_to_a_pod_neighbour() {
    if skip() {
        return;
    }
    let netns = Netns::new("podd");
    let mut sidecar = Env::new();
    netns.join(&mut sidecar);
    sidecar.args(&[
        "sh",
        "-c",
        "ip link set lo up 2>/dev/null; nc -ll -p 8080 -e echo SIDECAR & sleep 60",
    ]);
    let caps = json!(["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_KILL"]);
    sidecar.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let sid = sidecar.id();
    sidecar.write_config();
    let b = sidecar.bundle.to_str().unwrap().to_string();
    sidecar.rt(&["run", "-d", "--bundle", &b, &sid]).ok();
    struct Stop<'a>(&'a Env, String);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.kill(&self.1, "KILL");
            let _ = self.0.rt(&["delete", "-f", &self.1]);
        }
    }
    let _stop = Stop(&sidecar, sid);
    let mut env = attack_env(&[], "sleep 60");
    netns.join(&mut env);
    let id = env.id();
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    let started = env.rt(&["run", "-d", "--bundle", &b, &id]);
    assert_eq!(started.code, 0, "{started:?}");
    let _stop2 = Stop(&env, id.clone());
    let probe = "nc -w 2 198.18.0.9 8080 </dev/null; echo rc=$?";
    let out = env.rt(&["exec", &id, "sh", "-c", probe]);
    assert!(!out.stdout.contains("SIDECAR"), "the control: {out:?}");
    let state: Value = serde_json::from_str(&crate::harness::read(
        &env.root.join(&id).join("state.json"),
    ))
    .expect("state.json");
    let proxy = state["proxy"][0].as_i64().expect("proxy pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    crate::harness::wait_for("the proxy to die", || !crate::harness::alive(proxy));
    let out = env.rt(&["exec", &id, "sh", "-c", probe]);
    assert!(
        !out.stdout.contains("SIDECAR"),
        "with its proxy dead the container reached the sidecar through a name address: {out:?}"
    );
}

/// 6,000 connections held open at the proxy's listeners (explicit and transparent): the
/// proxy stays within its bounds (at most 1024 clients, NOFILE 4096), stays alive, and still
/// answers DNS while they are open.
#[test]
fn a_connection_flood_stays_within_the_proxys_bounds() {
    if skip() {
        return;
    }
    let mut env = attack_env(&[], "sleep 60");
    env.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]);
    let flood = crate::harness::static_binary("conn-flood", "conn_flood.c");
    crate::harness::copy_executable(flood, env.rootfs().join("conn_flood"));
    let id = env.id();
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    let started = env.rt(&["run", "-d", "--bundle", &b, &id]);
    assert_eq!(started.code, 0, "{started:?}");
    struct Stop<'a>(&'a Env, String);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.kill(&self.1, "KILL");
            let _ = self.0.rt(&["delete", "-f", &self.1]);
        }
    }
    let _stop = Stop(&env, id.clone());
    let state: Value = serde_json::from_str(&crate::harness::read(
        &env.root.join(&id).join("state.json"),
    ))
    .expect("state.json");
    let proxy = state["proxy"][0].as_i64().expect("proxy pid");
    let out = env.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "nslookup allowed.example 192.0.2.53 >/dev/null; \
         /conn_flood 198.18.0.1 3128 3000 20 & /conn_flood 198.18.0.2 443 3000 20 & \
         sleep 6; nslookup allowed.example 192.0.2.53 | grep -c 198.18.0.2; echo dns=$?",
    ]);
    let fds = std::fs::read_dir(format!("/proc/{proxy}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(crate::harness::alive(proxy), "the proxy died: {out:?}");
    assert!(fds > 0 && fds <= 4096, "the proxy holds {fds} fds: {out:?}");
    assert!(
        out.stdout.contains("dns=0"),
        "no DNS during the flood: {out:?}"
    );
}

/// runc with `ward hook egress`: runc installs no families filter of ward's, so bpf(2) is open
/// to a container with CAP_SYS_ADMIN, which would detach the wall the hook attached. Runs
/// under either WARD_RUNTIME: the runtime here is always runc, the hook always this ward.
#[test]
fn under_runc_the_hook_refuses_what_would_lift_its_wall() {
    let mut env = attack_env(
        &["CAP_SYS_ADMIN"],
        "mkdir -p /dev/shm/cg; mount -t cgroup2 none /dev/shm/cg; \
         /bpf_detach /dev/shm/cg; echo tcp:; /probe tcp 192.0.2.80 443",
    );
    let detach = crate::harness::static_binary("bpf-detach", "bpf_detach.c");
    crate::harness::copy_executable(detach, env.rootfs().join("bpf_detach"));
    env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    crate::egress_domains::under_runc_with_the_hook(&mut env);
    env.config["process"]
        .as_object_mut()
        .unwrap()
        .remove("interception");
    env.config["annotations"] = json!({"org.ward.interception": policy().to_string()});
    let out = env.run(&env.id());
    let t = text(&out);
    assert!(
        !t.contains("detached="),
        "the container detached the hook's wall: {t}"
    );
    assert!(
        out.code != 0 && t.contains("CAP_SYS_ADMIN"),
        "runc ran it: {t}"
    );
}

/// runc with `ward hook egress`: without ward's families filter, CAP_NET_RAW (one of Docker's
/// defaults) makes raw and packet sockets that send past the cgroup wall: refused by the hook
/// (the container does not start), and the same container without it runs (the control).
#[test]
fn under_runc_the_hook_refuses_cap_net_raw() {
    let mut env = attack_env(&["CAP_NET_RAW"], "echo started");
    if let Some(n) = env.config["process"]["interception"]["network"].as_object_mut() {
        n.remove("proxyEnv"); // a hook refuses it for another reason
    }
    crate::egress_domains::under_runc_with_the_hook(&mut env);
    let out = env.run(&env.id());
    let t = text(&out);
    assert!(
        out.code != 0 && t.contains("CAP_NET_RAW") && !t.contains("started"),
        "runc ran it: {t}"
    );
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    env.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let out = env.run(&env.id());
    assert!(text(&out).contains("started"), "{out:?}");
}

/// io_uring's IORING_OP_SOCKET makes sockets without socket(2), where the families filter
/// looks: with CAP_NET_RAW a walled container must not get a packet or raw socket that way
/// (they go around the cgroup hooks wherever a route leads out).
#[test]
fn io_uring_cannot_make_the_sockets_the_families_filter_refuses() {
    if skip() {
        return;
    }
    let env = attack_env(
        &["CAP_NET_RAW"],
        "echo packet:; /uring_socket 17 3 768; echo raw:; /uring_socket 2 3 17",
    );
    let tool = crate::harness::static_binary("uring-socket", "uring_socket.c");
    crate::harness::copy_executable(tool, env.rootfs().join("uring_socket"));
    let out = env.run(&env.id());
    let t = text(&out);
    for tag in ["packet", "raw"] {
        let got = tagged(&out, tag);
        assert!(
            got.starts_with("setup errno=1") || got.starts_with("socket=-"),
            "{tag}: io_uring made the socket: {t}"
        );
    }
}
