//! The netns wall (issue 18): egress by domain name with no cgroup BPF, for a container with a
//! new network namespace, chosen by `org.ward.egress.wall=netns` here (as root) and by ward
//! itself when it is not root or has no cgroup v2. A small origin of the test's own (a network
//! namespace behind a veth, with an HTTP server and a DNS server the proxy asks through
//! `--egress-resolver`) stands in for the internet. ward-only. The origin is shared with
//! conformance/rootless.rs, which proves the same wall for a non-root ward.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::fd::AsFd;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use serde_json::{json, Value};

use crate::harness::{alive, runtime_is_runc, wait_for, Env};

/// The origin's address (TEST-NET-1: not in the proxy's refused set) and the host's end.
pub(crate) const ORIGIN: &str = "192.0.2.202";
const HOST_END: &str = "192.0.2.201";

fn skip() -> bool {
    if runtime_is_runc() {
        crate::skip::skipped("runc has no egress policy");
        return true;
    }
    if !nix::unistd::Uid::effective().is_root() {
        crate::skip::skipped("the origin's namespace and veth need root");
        return true;
    }
    false
}

fn ip(args: &[&str]) {
    let ok = std::process::Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip {args:?}");
}

/// The origin: `ip netns` NAME with ORIGIN on a veth whose host end has HOST_END; HTTP on 80
/// answers `origin saw <request line> host=<Host>`, DNS on 53 answers A ORIGIN for every
/// name ending in `.example`. Removed on drop. One at a time in this process (the tests that
/// use it run in parallel, and its addresses are fixed): it holds ORIGIN_LOCK.
pub(crate) struct Origin {
    name: String,
    veth: String,
    /// Clones of the servers' sockets, shut down on drop so their threads end.
    sockets: Vec<std::os::fd::OwnedFd>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _one: std::sync::MutexGuard<'static, ()>,
}

impl Origin {
    /// Every request the HTTP server has read so far, as `<request line> host=<Host>`: what
    /// reached the origin, whatever the client printed (or whether it crashed).
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

static ORIGIN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Drop for Origin {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        for s in &self.sockets {
            // SAFETY: shutdown(2) on a socket this struct owns; wakes its server's thread.
            unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_RDWR) };
        }
        // The namespace lives on while anything holds it: remove the veth (both ends) too,
        // so the next origin can have its name and addresses.
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", &self.veth])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

pub(crate) fn origin() -> Origin {
    let one = ORIGIN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("ward-nw-{}", std::process::id());
    let veth = format!("wnw{}", std::process::id() % 100_000);
    let _ = std::process::Command::new("ip")
        .args(["netns", "delete", &name])
        .stderr(std::process::Stdio::null())
        .status();
    ip(&["netns", "add", &name]);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut o = Origin {
        name: name.clone(),
        veth: veth.clone(),
        sockets: Vec::new(),
        seen: seen.clone(),
        _one: one,
    };
    ip(&[
        "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name,
    ]);
    ip(&["addr", "add", &format!("{HOST_END}/30"), "dev", &veth]);
    ip(&["link", "set", &veth, "up"]);
    ip(&[
        "-n",
        &name,
        "addr",
        "add",
        &format!("{ORIGIN}/30"),
        "dev",
        "eth0",
    ]);
    ip(&["-n", &name, "link", "set", "eth0", "up"]);
    ip(&["-n", &name, "link", "set", "lo", "up"]);
    let ns = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
    let (http, dns) = std::thread::spawn(move || {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let http = TcpListener::bind((ORIGIN, 80)).unwrap();
        let dns = UdpSocket::bind((ORIGIN, 53)).unwrap();
        (http, dns)
    })
    .join()
    .unwrap();
    o.sockets.push(http.try_clone().unwrap().into());
    o.sockets.push(dns.try_clone().unwrap().into());
    std::thread::spawn(move || {
        for c in http.incoming() {
            let c = match c {
                Ok(c) => c,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(_) => continue,
            };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                let mut r = BufReader::new(c);
                let (mut line, mut host) = (String::new(), String::new());
                r.read_line(&mut line).unwrap_or(0);
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("host:") {
                        host = v.trim().to_string();
                    }
                }
                let saw = format!("{} host={host}", line.trim_end());
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(saw.clone());
                let body = format!("origin saw {saw}\n");
                let _ = write!(
                    w,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        // Shut down: an error or an empty read.
        while let Ok((n @ 1.., peer)) = dns.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut m = Message::response(q.metadata.id, OpCode::Query);
            for query in &q.queries {
                m.add_query(query.clone());
                let name = query.name().to_ascii();
                if name.trim_end_matches('.').ends_with(".example") {
                    let a = ORIGIN.parse().unwrap();
                    m.add_answer(Record::from_rdata(query.name().clone(), 5, RData::A(A(a))));
                } else {
                    m.metadata.response_code = ResponseCode::NXDomain;
                }
            }
            let _ = dns.send_to(&m.to_vec().unwrap(), peer);
        }
    });
    o
}

fn netwall_env(script: &str) -> Env {
    let mut env = Env::new();
    env.config["process"]["interception"] =
        json!({"network": {"allowedDomains": ["allowed.example"], "proxyEnv": true}});
    env.config["annotations"] = json!({"org.ward.egress.wall": "netns"});
    env.args(&["sh", "-c", script]);
    env
}

/// An allowed name reached through the transparent path and through the proxy variables, a
/// denied name and a raw address refused, DNS from 198.18.0.1 (resolv.conf), no supervisor and
/// no cgroup BPF, nothing left after delete.
#[test]
fn the_netns_wall_serves_allowed_names_and_refuses_the_rest() {
    if skip() {
        return;
    }
    let _origin = origin();
    let env = netwall_env(
        "cat /etc/resolv.conf; \
         nslookup allowed.example; echo rc1=$?; \
         nslookup denied.example; echo rc2=$?; \
         wget -Y off -q -O - http://allowed.example/t; echo w1=$?; \
         wget -q -O - http://allowed.example/p; echo w2=$?; \
         wget -Y off -q -T 3 -O - http://denied.example/; echo w3=$?; \
         wget -Y off -q -T 3 -O - http://192.0.2.202/; echo w4=$?; \
         nc -w 2 198.18.0.2 81 </dev/null; echo nc=$?; \
         env | grep -i _proxy | sort",
    );
    env.write_config();
    let bundle = env.bundle.to_str().unwrap().to_string();
    let before = env.root_entries();
    let id = env.id();
    let resolver = format!("{ORIGIN}:53");
    let out = env.rt(&[
        "--egress-resolver",
        &resolver,
        "run",
        "--bundle",
        &bundle,
        &id,
    ]);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(text.contains("nameserver 198.18.0.1"), "{text}");
    let before_rc1 = text.split("rc1=").next().unwrap_or_default();
    assert!(
        text.contains("rc1=0") && before_rc1.contains("198.18.0.2"),
        "{text}"
    );
    assert!(!text.contains("rc2=0"), "a denied name resolved: {text}");
    assert!(
        text.contains("origin saw GET /t HTTP/1.1 host=allowed.example") && text.contains("w1=0"),
        "the transparent path: {text}"
    );
    assert!(
        text.contains("origin saw GET /p") && text.contains("w2=0"),
        "the proxy variables' path: {text}"
    );
    assert!(!text.contains("w3=0"), "a denied name was served: {text}");
    assert!(!text.contains("w4=0"), "a raw address was served: {text}");
    assert!(!text.contains("origin saw GET / "), "served: {text}");
    assert!(!text.contains("nc=0"), "a port with no listener: {text}");
    assert!(text.contains("HTTP_PROXY=http://198.18.0.1:3128"), "{text}");
    env.assert_nothing_left(&id, &before);
}

/// The proxy is recorded, writes the log, and runs alone (no supervisor); killed, nothing
/// resolves and nothing connects (never a bypass); gone after delete with the state dir.
#[test]
fn the_netns_wall_fails_closed_and_leaves_nothing() {
    if skip() {
        return;
    }
    let mut env = netwall_env("");
    let before = env.root_entries();
    let id = env.run_sleeping();
    let state: Value = serde_json::from_str(&crate::harness::read(
        &env.root.join(&id).join("state.json"),
    ))
    .expect("state.json");
    let proxy = state["proxy"][0].as_i64().expect("a proxy pid");
    assert!(state["supervisor"].is_null(), "a supervisor: {state}");
    assert!(alive(proxy));
    let probe = "nslookup allowed.example; echo rc1=$?; \
                 nc -w 2 198.18.0.2 443 </dev/null; echo nc1=$?; \
                 nc -w 2 192.0.2.202 80 </dev/null; echo nc2=$?; \
                 nc -w 2 198.18.0.1 3128 </dev/null; echo nc3=$?";
    let out = env.rt(&["exec", &id, "sh", "-c", probe]);
    assert!(out.stdout.contains("rc1=0"), "{out:?}");
    assert!(out.stdout.contains("nc1=0"), "{out:?}");
    assert!(out.stdout.contains("nc3=0"), "{out:?}");
    env.rt(&["exec", &id, "nslookup", "denied.example"]);
    let log = crate::harness::read(&env.root.join(&id).join("violations.jsonl"));
    assert!(
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|r| r["name"] == "denied.example" && r["source"] == "dns"),
        "{log}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the proxy to die", || !alive(proxy));
    let out = env.rt(&["exec", &id, "sh", "-c", probe]);
    for k in ["rc1=0", "nc1=0", "nc2=0", "nc3=0"] {
        assert!(!out.stdout.contains(k), "{k} without the proxy: {out:?}");
    }
    env.kill(&id, "KILL");
    env.wait_status(&id, "stopped");
    env.delete(&id).ok();
    assert!(!env.root.join(&id).exists(), "the state dir stayed");
    env.assert_nothing_left(&id, &before);
}

/// The annotation is checked: an unknown value, or the netns wall with a joined namespace.
#[test]
fn the_wall_annotation_is_checked() {
    if skip() {
        return;
    }
    let mut env = netwall_env("true");
    env.config["annotations"] = json!({"org.ward.egress.wall": "cgroup"});
    env.assert_run_refused("annotations.org.ward.egress.wall");
    let mut env = netwall_env("true");
    env.config["process"]["interception"]["network"]["allowUnix"] = json!([]);
    env.assert_run_refused("process.interception.network.allowUnix");
}
