//! SCMP_ACT_NOTIFY: the runtime hands the filter's listener fd to an agent at listenerPath
//! (container process state JSON + SCM_RIGHTS); the agent answers the container's syscalls.
//! Also the seccomp filter flags, which only matter next to notification.

use crate::harness::{runtime, runtime_is_runc, Out};
use crate::seccomp::{err, ok, probe_env, GETPID, GETPPID};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

/// struct seccomp_data
#[repr(C)]
#[derive(Default, Debug)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

/// struct seccomp_notif
#[repr(C)]
#[derive(Default, Debug)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

/// struct seccomp_notif_resp
#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

// _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp).
const NOTIF_RECV: u64 = 0xc000_0000 | (80 << 16) | (0x21 << 8);
const NOTIF_SEND: u64 = 0xc000_0000 | (24 << 16) | (0x21 << 8) | 1;
const _: () = assert!(std::mem::size_of::<Notif>() == 80);
const _: () = assert!(std::mem::size_of::<NotifResp>() == 24);
const _: () = assert!(NOTIF_RECV == 0xc0502100 && NOTIF_SEND == 0xc0182101);
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const METADATA: &str = "ward-conformance agent";

/// What the agent saw: the state message and the notifications it answered.
struct Heard {
    state: Value,
    notifs: Vec<Notif>,
}

/// Accepts one connection (10s deadline), reads the state message and its fd, then answers
/// notifications until none arrives for 5s: getppid(0) -> 4242, anything else -> ENOKEY.
fn agent(listener: UnixListener) -> Heard {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the runtime never connected");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let (len, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .expect("recvmsg");
        let fds: Vec<RawFd> = msg
            .cmsgs()
            .expect("cmsgs")
            .flat_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds,
                _ => vec![],
            })
            .collect();
        (msg.bytes, fds)
    };
    buf.truncate(len);
    // The runtime may keep the connection open: read until the JSON is complete.
    let state: Value = loop {
        match serde_json::from_slice(&buf) {
            Ok(v) => break v,
            Err(e) if e.is_eof() => {
                let mut more = [0u8; 4096];
                let n = stream.read(&mut more).unwrap();
                assert!(
                    n > 0,
                    "EOF in state message {:?}",
                    String::from_utf8_lossy(&buf)
                );
                buf.extend_from_slice(&more[..n]);
            }
            Err(e) => panic!("state message {:?}: {e}", String::from_utf8_lossy(&buf)),
        }
    };
    assert_eq!(
        fds.len(),
        1,
        "exactly one fd with the state message: {state}"
    );
    // SAFETY: SCM_RIGHTS gave us a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    let mut notifs = Vec::new();
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd for the call.
        if unsafe { libc::poll(&mut pfd, 1, 5000) } != 1 || pfd.revents & libc::POLLIN == 0 {
            return Heard { state, notifs };
        }
        let mut n = Notif::default();
        // SAFETY: `n` is a seccomp_notif of the size NOTIF_RECV encodes.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV as _, &mut n) } != 0 {
            return Heard { state, notifs };
        }
        let (val, error) = if n.data.nr == GETPPID as i32 && n.data.args[0] == 0 {
            (4242, 0)
        } else {
            (0, -libc::ENOKEY)
        };
        let mut resp = NotifResp {
            id: n.id,
            val,
            error,
            flags: 0,
        };
        // SAFETY: `resp` is a seccomp_notif_resp of the size NOTIF_SEND encodes.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND as _, &mut resp) };
        assert_eq!(rc, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
        notifs.push(n);
    }
}

/// Runs the probe under `binary` with getppid notified to an agent thread.
/// Returns the probe's output, what the agent heard, the container id and the bundle path.
fn notified_run(binary: &str, cmds: &str) -> (Out, Heard, String, String) {
    let mut env = probe_env(binary, &Value::Null, cmds);
    let path = env.dir.join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    env.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": path, "listenerMetadata": METADATA,
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]});
    let agent = std::thread::spawn(move || agent(listener));
    let id = env.id();
    let out = env.run(&id);
    let heard = agent.join().expect("agent thread");
    (out, heard, id, env.bundle.to_string_lossy().into_owned())
}

#[test]
fn notify_agent_gets_state_and_answers_syscalls() {
    let cmds = format!("sys {GETPID} , sys {GETPPID} 0 , sys {GETPPID} 1 , sys {GETPID}");
    let (out, heard, id, bundle) = notified_run(&runtime(), &cmds);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            [ok(1), ok(4242), err(libc::ENOKEY), ok(1)]
                .concat()
                .as_str()
        ),
        "{out:?}"
    );
    let s = &heard.state;
    assert_eq!(s["fds"], json!(["seccompFd"]), "{s}");
    assert_eq!(s["metadata"], METADATA, "{s}");
    assert_eq!(s["state"]["id"], id.as_str(), "{s}");
    assert_eq!(s["state"]["bundle"], bundle.as_str(), "{s}");
    assert_eq!(s["state"]["status"], "creating", "sent during create: {s}");
    assert!(
        s["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{s}"
    );
    let pid = s["pid"].as_u64().filter(|p| *p > 0).expect("pid");
    assert_eq!(s["state"]["pid"], pid, "{s}");
    assert_eq!(heard.notifs.len(), 2, "{:?}", heard.notifs);
    for (n, arg) in heard.notifs.iter().zip([0, 1]) {
        assert_eq!(
            (n.data.nr, n.data.arch, n.data.args[0]),
            (GETPPID as i32, AUDIT_ARCH_X86_64, arg)
        );
        assert_eq!(
            n.pid as u64, pid,
            "the notification comes from the container process"
        );
    }
    if !runtime_is_runc() {
        let (reference, theirs, ..) = notified_run("runc", &cmds);
        assert_eq!((out.code, out.stdout), (reference.code, reference.stdout));
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        assert_eq!(
            keys(s),
            keys(&theirs.state),
            "top-level keys differ from runc"
        );
        assert_eq!(
            keys(&s["state"]),
            keys(&theirs.state["state"]),
            "state keys differ from runc"
        );
    }
}

fn assert_create_fails_cleanly(seccomp: Value) {
    let env = probe_env(&runtime(), &seccomp, &format!("sys {GETPID}"));
    let before = env.root_entries();
    let id = env.id();
    let out = env.create(&id);
    assert_ne!(out.code, 0, "accepted {seccomp}: {out:?}");
    env.assert_nothing_left(&id, &before);
}

/// SCMP_ACT_NOTIFY needs an agent: without listenerPath `create` fails.
#[test]
fn notify_without_listener_path_fails_create() {
    assert_create_fails_cleanly(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}));
}

/// WAIT_KILLABLE_RECV is meaningless without notification: `create` fails.
/// (runc 1.1.5 rejects every flag: "seccomp flags are not yet supported by runc".)
#[test]
fn wait_killable_recv_without_notify_fails_create() {
    assert_create_fails_cleanly(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}));
}

/// SECCOMP_FILTER_FLAG_LOG is accepted and the rules still apply. Ward only: runc 1.1.5
/// rejects every flag.
#[test]
fn log_flag_accepted() {
    if runtime_is_runc() {
        eprintln!("skipped: runc 1.1.5 does not support seccomp flags");
        return;
    }
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]});
    let env = probe_env(
        &runtime(),
        &profile,
        &format!("sys {GETPPID} , sys {GETPID}"),
    );
    let out = env.run(&env.id());
    assert_eq!((out.code, out.stdout), (0, err(77) + &ok(1)));
}
