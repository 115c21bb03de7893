//! Tests of `console` against the real kernel (ptys, processes).
use super::*;
use nix::sys::socket::socketpair;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pty() -> Pty {
    open_pty(Path::new("/dev/ptmx"), None).unwrap()
}

fn read_some(fd: &OwnedFd) -> String {
    let mut buf = [0u8; 256];
    let n = nix::unistd::read(fd.as_raw_fd(), &mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Runs `sh -c script` on the pty slave and proxies its output into a pipe.
fn run_proxied(
    script: &str,
    input: Option<&[u8]>,
    pre: Option<fn(BorrowedFd) -> Result<(), ConsoleError>>,
) -> String {
    let p = pty();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    cmd.stdin(Stdio::from(p.slave.try_clone().unwrap()))
        .stdout(Stdio::from(p.slave.try_clone().unwrap()))
        .stderr(Stdio::from(p.slave.try_clone().unwrap()));
    if let Some(f) = pre {
        let raw = p.slave.as_raw_fd();
        // SAFETY: the closure only makes syscalls (no allocation) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                f(BorrowedFd::borrow_raw(raw))
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM))
            })
        };
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // the Command still holds its copies of the slave
    drop(p.slave);
    let (in_r, mut in_w) = std::io::pipe().unwrap();
    let (mut out_r, out_w) = std::io::pipe().unwrap();
    if let Some(data) = input {
        in_w.write_all(data).unwrap();
    }
    drop(in_w);
    let start = Instant::now();
    let mut stop = || start.elapsed() > Duration::from_secs(10);
    let in_fd = input.map(|_| in_r.as_fd());
    proxy(p.master.as_fd(), in_fd, out_w.as_fd(), &mut stop).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "proxy did not notice the pty closing"
    );
    drop(out_w);
    assert!(child.wait().unwrap().success());
    let mut out = String::new();
    out_r.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn pty_pair_works_and_is_sized() {
    let p = open_pty(Path::new("/dev/ptmx"), Some((24, 132))).unwrap();
    assert!(p.slave_path.starts_with("/dev/pts/"), "{:?}", p.slave_path);
    assert!(p.slave_path.exists());
    nix::unistd::write(&p.slave, b"hi\n").unwrap();
    assert_eq!(read_some(&p.master), "hi\r\n");
    assert_eq!(get_size(p.slave.as_fd()).unwrap(), (24, 132));
    for fd in [&p.master, &p.slave] {
        let flags = FdFlag::from_bits_retain(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC));
    }
    let other = pty();
    resize_from(p.slave.as_fd(), other.master.as_fd()).unwrap();
    assert_eq!(get_size(other.slave.as_fd()).unwrap(), (24, 132));
}

#[test]
fn missing_ptmx_names_path() {
    let err = open_pty(Path::new("/nonexistent/ptmx"), None).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ptmx"), "{err}");
}

#[test]
fn master_round_trips_over_socketpair() {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let p = pty();
    send_master(a.as_fd(), p.master.as_fd(), "/dev/ptmx").unwrap();
    let got = recv_fd(b.as_fd()).unwrap();
    drop(p.master);
    let flags = FdFlag::from_bits_retain(fcntl(got.as_raw_fd(), FcntlArg::F_GETFD).unwrap());
    assert!(flags.contains(FdFlag::FD_CLOEXEC));
    nix::unistd::write(&got, b"ping\n").unwrap();
    assert_eq!(read_some(&p.slave), "ping\n");
    // A message without an fd is an error, not a hang or a panic.
    nix::unistd::write(&a, b"x").unwrap();
    assert!(matches!(
        recv_fd(b.as_fd()),
        Err(ConsoleError::NoFd { bytes: 1 })
    ));
}

#[test]
fn console_socket_connect() {
    let missing = Path::new("/nonexistent/ward-console.sock");
    let err = connect_console_socket(missing).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/ward-console.sock"),
        "{err}"
    );

    let path = std::env::temp_dir().join(format!("ward-console-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let sock = connect_console_socket(&path).unwrap();
    let (conn, _) = listener.accept().unwrap();
    let p = pty();
    send_master(sock.as_fd(), p.master.as_fd(), "").unwrap();
    let got = recv_fd(conn.as_fd()).unwrap();
    nix::unistd::write(&p.slave, b"x\n").unwrap();
    assert_eq!(read_some(&got), "x\r\n");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn proxy_drains_child_output() {
    let out = run_proxied("echo hello", None, None);
    assert_eq!(out, "hello\r\n");
}

#[test]
fn proxy_forwards_input_until_eof() {
    let out = run_proxied("read line; echo got:$line", Some(b"abc\n"), None);
    assert!(out.contains("got:abc"), "{out:?}");
}

#[test]
fn controlling_terminal_is_set() {
    let out = run_proxied(
        "tty; echo ok > /dev/tty",
        None,
        Some(make_controlling_terminal),
    );
    assert!(
        out.starts_with("/dev/pts/") && out.contains("ok"),
        "{out:?}"
    );
}

#[test]
fn proxy_stops_and_restores_raw_mode() {
    let tty = pty();
    let target = pty();
    set_size(tty.slave.as_fd(), 30, 100).unwrap();
    let before = tcgetattr(tty.slave.as_fd()).unwrap();
    let (_r, w) = std::io::pipe().unwrap();
    let mut calls = 0;
    let mut was_raw = false;
    let mut stop = || {
        calls += 1;
        let now = tcgetattr(tty.slave.as_fd()).unwrap();
        was_raw = !now
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON);
        calls >= 3
    };
    proxy(
        target.master.as_fd(),
        Some(tty.slave.as_fd()),
        w.as_fd(),
        &mut stop,
    )
    .unwrap();
    assert!(was_raw);
    let after = tcgetattr(tty.slave.as_fd()).unwrap();
    assert_eq!(before.local_flags, after.local_flags);
    assert_eq!(before.input_flags, after.input_flags);
    assert_eq!(get_size(target.slave.as_fd()).unwrap(), (30, 100));
}
