//! `terminal: true` with `--console-socket`: the runtime sends the pty master over the unix
//! socket with SCM_RIGHTS and the container's stdio is the pty slave.

use crate::harness::Env;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

/// Accepts one connection (10s at most) and returns the first fd received via SCM_RIGHTS.
pub(crate) fn receive_fd(listener: UnixListener) -> Option<OwnedFd> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    };
    conn.set_nonblocking(false).unwrap();
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .ok()?;
    for cmsg in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: SCM_RIGHTS gave us a new fd that nothing else owns.
            return Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    None
}

/// Reads from the pty master until `want` appears, the slave closes (EIO) or 10s pass.
/// What the pty master yields until `want` shows up (or 10 s pass).
pub(crate) fn read_until(master: OwnedFd, want: &str) -> String {
    let mut file = std::fs::File::from(master);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1024];
    while !seen.contains(want) && Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd for the call.
        if unsafe { libc::poll(&mut pfd, 1, 200) } <= 0 {
            continue;
        }
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    seen
}

/// `create` with `--console-socket`: the runtime's result and the pty master it sent, if any.
pub(crate) fn create_with_console(env: &Env, id: &str) -> (crate::harness::Out, Option<OwnedFd>) {
    env.write_config();
    let sock = env.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_fd(listener));
    let bundle = env.bundle.to_str().unwrap().to_string();
    let out = env.rt(&[
        "create",
        "--bundle",
        &bundle,
        "--console-socket",
        sock.to_str().unwrap(),
        id,
    ]);
    if out.code != 0 {
        // A runtime that refused may never connect: an empty connection ends the wait.
        let _ = std::os::unix::net::UnixStream::connect(&sock);
    }
    (out, receiver.join().unwrap())
}

#[test]
fn console_socket_receives_working_pty_master() {
    let mut env = Env::new();
    env.config["process"]["terminal"] = true.into();
    env.args(&[
        "sh",
        "-c",
        "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo stdio-is-tty; echo console-says-hello",
    ]);
    let id = env.id();
    let (out, master) = create_with_console(&env, &id);
    out.ok();
    let master = master.expect("the runtime sends the pty master");
    let link = std::fs::read_link(format!("/proc/self/fd/{}", master.as_raw_fd())).unwrap();
    assert!(
        link.to_string_lossy().contains("ptmx"),
        "received fd is not a pty master: {link:?}"
    );
    env.start(&id).ok();
    let seen = read_until(master, "console-says-hello");
    assert!(
        seen.contains("stdio-is-tty"),
        "container stdio is not the pty: {seen:?}"
    );
    assert!(seen.contains("console-says-hello"), "{seen:?}");
}
