//! Terminals: pty allocation, runc's `--console-socket` fd passing, the
//! controlling-terminal setup inside the container, and the foreground
//! stdin/stdout <-> pty-master proxy used by `ward run`. No threads.

use std::fs::OpenOptions;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, recvmsg, sendmsg, socket, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::unistd::{dup2, isatty, setsid};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("open pty multiplexer {}: {source} (is devpts mounted with ptmxmode=0666?)", path.display())]
    OpenPtmx {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("open pty slave {}: {source}", path.display())]
    OpenSlave {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("connect to console socket {}: {source} (is the --console-socket listener running?)", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error(
        "console socket: received {bytes} bytes but no file descriptor (SCM_RIGHTS); 0 bytes means the peer hung up"
    )]
    NoFd { bytes: usize },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: Errno,
    },
}

/// Kept whole inside ward's `Error` (which cannot name this type: it sits below this module).
impl From<ConsoleError> for crate::error::Error {
    fn from(e: ConsoleError) -> Self {
        crate::error::Error::Console(Box::new(e))
    }
}

fn sys(op: &'static str) -> impl FnOnce(Errno) -> ConsoleError {
    move |source| ConsoleError::Sys { op, source }
}

nix::ioctl_write_ptr_bad!(tiocsptlck, libc::TIOCSPTLCK, libc::c_int);
nix::ioctl_read_bad!(tiocgptn, libc::TIOCGPTN, libc::c_uint);
nix::ioctl_write_int_bad!(tiocgptpeer, libc::TIOCGPTPEER);
nix::ioctl_write_int_bad!(tiocsctty, libc::TIOCSCTTY);
nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

/// A freshly allocated, unlocked pty pair (all fds O_CLOEXEC, O_NOCTTY).
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// e.g. "/dev/pts/3": the pts directory next to `ptmx` (or containing it).
    pub slave_path: PathBuf,
}

/// Opens a pty via `ptmx`, unlocks it, opens the slave and applies
/// `size` = (rows/height, cols/width) when given.
pub fn open_pty(ptmx: &Path, size: Option<(u16, u16)>) -> Result<Pty, ConsoleError> {
    let master: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(ptmx)
        .map_err(|source| ConsoleError::OpenPtmx {
            path: ptmx.to_path_buf(),
            source,
        })?
        .into();
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one c_int from a valid pointer; master is an open fd.
    unsafe { tiocsptlck(master.as_raw_fd(), &unlock) }
        .map_err(sys("ioctl(TIOCSPTLCK) unlock pty"))?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one c_uint to a valid pointer.
    unsafe { tiocgptn(master.as_raw_fd(), &mut n) }
        .map_err(sys("ioctl(TIOCGPTN) get pty number"))?;
    let dir = ptmx.parent().unwrap_or(Path::new("/dev"));
    let pts = if dir.file_name().is_some_and(|f| f == "pts") {
        dir.to_path_buf()
    } else {
        dir.join("pts")
    };
    let slave_path = pts.join(n.to_string());

    // TIOCGPTPEER opens the peer through the master's own devpts mount, which
    // is immune to path games; fall back to the path on old kernels.
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes an int flags argument and returns a new fd.
    let slave = match unsafe { tiocgptpeer(master.as_raw_fd(), flags) } {
        // SAFETY: the ioctl returned a new fd that nothing else owns.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(Errno::EINVAL | Errno::ENOTTY) => OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(&slave_path)
            .map_err(|source| ConsoleError::OpenSlave {
                path: slave_path.clone(),
                source,
            })?
            .into(),
        Err(e) => {
            return Err(ConsoleError::Sys {
                op: "ioctl(TIOCGPTPEER) open pty slave",
                source: e,
            })
        }
    };
    if let Some((rows, cols)) = size {
        set_size(master.as_fd(), rows, cols)?;
    }
    Ok(Pty {
        master,
        slave,
        slave_path,
    })
}

/// Sets the window size (rows, cols) of a terminal fd.
pub fn set_size(fd: BorrowedFd, rows: u16, cols: u16) -> Result<(), ConsoleError> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
    unsafe { tiocswinsz(fd.as_raw_fd(), &ws) }
        .map_err(sys("ioctl(TIOCSWINSZ) set console size"))?;
    Ok(())
}

/// Returns the window size (rows, cols) of a terminal fd.
pub fn get_size(fd: BorrowedFd) -> Result<(u16, u16), ConsoleError> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize to a valid pointer.
    unsafe { tiocgwinsz(fd.as_raw_fd(), &mut ws) }
        .map_err(sys("ioctl(TIOCGWINSZ) get console size"))?;
    Ok((ws.ws_row, ws.ws_col))
}

/// Copies the window size of `tty` to `master` (call on start and on SIGWINCH).
pub fn resize_from(tty: BorrowedFd, master: BorrowedFd) -> Result<(), ConsoleError> {
    let (rows, cols) = get_size(tty)?;
    set_size(master, rows, cols)
}

/// Sends `master` over the connected unix socket with SCM_RIGHTS; the data
/// payload is `name` (go-runc's receiver requires a non-empty one).
pub fn send_master(socket: BorrowedFd, master: BorrowedFd, name: &str) -> Result<(), ConsoleError> {
    let name = if name.is_empty() { "/dev/ptmx" } else { name };
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => {
                return Err(ConsoleError::Sys {
                    op: "sendmsg(SCM_RIGHTS) pty master on console socket",
                    source: e,
                })
            }
        }
    }
}

/// Receives one fd sent with SCM_RIGHTS (the payload is discarded).
/// The fd is O_CLOEXEC; any extra fds in the message are closed.
pub fn recv_fd(socket: BorrowedFd) -> Result<OwnedFd, ConsoleError> {
    let mut data = [0u8; 4096];
    let mut cmsg_buf = nix::cmsg_space!([RawFd; 4]);
    loop {
        let mut iov = [IoSliceMut::new(&mut data)];
        let msg = match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                return Err(ConsoleError::Sys {
                    op: "recvmsg(SCM_RIGHTS) on console socket",
                    source: e,
                })
            }
        };
        let bytes = msg.bytes;
        let mut received: Vec<OwnedFd> = Vec::new();
        let cmsgs = msg
            .cmsgs()
            .map_err(sys("recvmsg: control message truncated"))?;
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: the kernel just installed these fds in our table; we are their only owner.
                received.extend(
                    fds.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let mut fds = received.into_iter();
        return fds.next().ok_or(ConsoleError::NoFd { bytes });
    }
}

/// Connects to the `--console-socket` path (AF_UNIX, SOCK_STREAM, CLOEXEC).
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd, ConsoleError> {
    let err = |source| ConsoleError::Connect {
        path: path.to_path_buf(),
        source,
    };
    let addr = UnixAddr::new(path).map_err(err)?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(sys("socket(AF_UNIX) for console socket"))?;
    loop {
        match connect(sock.as_raw_fd(), &addr) {
            Ok(()) => return Ok(sock),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(err(e)),
        }
    }
}

/// Makes `slave` the controlling terminal and fds 0, 1, 2 of the caller:
/// setsid() (EPERM ignored: already a session leader), TIOCSCTTY, dup2.
/// Async-signal-safe (no allocation on the success or error path).
pub fn make_controlling_terminal(slave: BorrowedFd) -> Result<(), ConsoleError> {
    take_terminal(slave)?;
    attach_stdio(slave)
}

/// A new session whose controlling terminal is `tty` (setsid, then TIOCSCTTY).
pub fn take_terminal(tty: BorrowedFd) -> Result<(), ConsoleError> {
    match setsid() {
        Ok(_) | Err(Errno::EPERM) => {}
        Err(e) => {
            return Err(ConsoleError::Sys {
                op: "setsid",
                source: e,
            })
        }
    }
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal from another session).
    unsafe { tiocsctty(tty.as_raw_fd(), 0) }
        .map_err(sys("ioctl(TIOCSCTTY) set controlling terminal"))?;
    Ok(())
}

/// The pty slave as stdin, stdout and stderr.
pub fn attach_stdio(slave: BorrowedFd) -> Result<(), ConsoleError> {
    for target in 0..=2 {
        if slave.as_raw_fd() == target {
            // dup2(fd, fd) is a no-op that would keep O_CLOEXEC: clear it instead.
            fcntl(target, FcntlArg::F_SETFD(FdFlag::empty()))
                .map_err(sys("fcntl(F_SETFD) clear cloexec on stdio"))?;
        } else {
            dup2(slave.as_raw_fd(), target).map_err(sys("dup2 console onto stdio"))?;
        }
    }
    Ok(())
}

/// Puts a terminal in raw mode; restores the saved settings on drop.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> Result<Self, ConsoleError> {
        let saved = tcgetattr(fd).map_err(sys("tcgetattr on stdin"))?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).map_err(sys("tcsetattr(raw) on stdin"))?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        if let Err(e) = tcsetattr(self.fd, SetArg::TCSANOW, &self.saved) {
            tracing::warn!(error = %e, "failed to restore terminal settings");
        }
    }
}

/// Sets O_NONBLOCK on an fd; restores the previous file status flags on drop.
struct NonBlocking<'a> {
    fd: BorrowedFd<'a>,
    saved: OFlag,
}

impl<'a> NonBlocking<'a> {
    fn set(fd: BorrowedFd<'a>) -> Result<Self, ConsoleError> {
        let saved = OFlag::from_bits_retain(
            fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)
                .map_err(sys("fcntl(F_GETFL) on pty master"))?,
        );
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(saved | OFlag::O_NONBLOCK))
            .map_err(sys("fcntl(F_SETFL) on pty master"))?;
        Ok(NonBlocking { fd, saved })
    }
}

impl Drop for NonBlocking<'_> {
    fn drop(&mut self) {
        let _ = fcntl(self.fd.as_raw_fd(), FcntlArg::F_SETFL(self.saved));
    }
}

fn is_tty(fd: BorrowedFd) -> bool {
    isatty(fd.as_raw_fd()).unwrap_or(false)
}

/// Writes all of `data` to `fd`, waiting with poll if the fd is non-blocking.
fn write_all(fd: BorrowedFd, mut data: &[u8], op: &'static str) -> Result<(), ConsoleError> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let _ = poll(
                    &mut [PollFd::new(fd, PollFlags::POLLOUT)],
                    PollTimeout::from(100u16),
                );
            }
            Err(e) => return Err(ConsoleError::Sys { op, source: e }),
        }
    }
    Ok(())
}

/// Copies what the non-blocking master has to `output`, at most `budget`
/// bytes. Returns false once the slave side is gone (EIO or EOF).
fn pump_master(
    master: BorrowedFd,
    output: BorrowedFd,
    budget: usize,
) -> Result<bool, ConsoleError> {
    let mut buf = [0u8; 8192];
    let mut copied = 0;
    while copied < budget {
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Ok(0) | Err(Errno::EIO) => return Ok(false),
            Ok(n) => {
                write_all(output, &buf[..n], "write console output")?;
                copied += n;
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => break,
            Err(e) => {
                return Err(ConsoleError::Sys {
                    op: "read from pty master",
                    source: e,
                })
            }
        }
    }
    Ok(true)
}

/// Foreground console proxy for `ward run` without `--console-socket`.
///
/// Copies `input` -> `master` and `master` -> `output` until the container
/// side closes the pty (EOF/EIO) or `should_stop()` returns true (checked
/// after every poll wakeup, at least every 100 ms; pending output is then
/// drained). Callers normally pass stdin and stdout; `input` may be None.
/// If `input` is a tty it is in raw mode for the duration (restored on every
/// exit path); the window size of `input` (else `output`) is copied to the
/// master at start. Input EOF stops reading input but output keeps flowing.
pub fn proxy(
    master: BorrowedFd,
    input: Option<BorrowedFd>,
    output: BorrowedFd,
    should_stop: &mut dyn FnMut() -> bool,
) -> Result<(), ConsoleError> {
    let size_src = input
        .filter(|fd| is_tty(*fd))
        .or(Some(output).filter(|fd| is_tty(*fd)));
    if let Some(tty) = size_src {
        if let Err(e) = resize_from(tty, master) {
            tracing::debug!(error = %e, "could not copy terminal size to the console");
        }
    }
    let _raw = match input.filter(|fd| is_tty(*fd)) {
        Some(fd) => Some(RawMode::enter(fd)?),
        None => None,
    };
    let _nonblock = NonBlocking::set(master)?;
    let mut input = input;
    let mut pending: Vec<u8> = Vec::new();
    let mut written = 0usize;
    let mut buf = [0u8; 4096];

    loop {
        let mut master_ev = PollFlags::POLLIN;
        if written < pending.len() {
            master_ev |= PollFlags::POLLOUT;
        }
        let want_input = input.filter(|_| written >= pending.len());
        let mut fds = vec![PollFd::new(master, master_ev)];
        if let Some(fd) = want_input {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                return Err(ConsoleError::Sys {
                    op: "poll on console",
                    source: e,
                })
            }
        }
        let m_rev = fds[0].revents().unwrap_or(PollFlags::empty());
        let i_rev = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        drop(fds);

        if m_rev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            && !pump_master(master, output, 64 * 1024)?
        {
            return Ok(());
        }
        if m_rev.contains(PollFlags::POLLNVAL) {
            return Err(ConsoleError::Sys {
                op: "poll on pty master",
                source: Errno::EBADF,
            });
        }
        if m_rev.contains(PollFlags::POLLOUT) && written < pending.len() {
            match nix::unistd::write(master, &pending[written..]) {
                Ok(n) => written += n,
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                // The slave side is gone; the next master read reports it.
                Err(Errno::EIO) => written = pending.len(),
                Err(e) => {
                    return Err(ConsoleError::Sys {
                        op: "write to pty master",
                        source: e,
                    })
                }
            }
        }
        if let Some(fd) = want_input {
            if i_rev.contains(PollFlags::POLLNVAL) {
                input = None;
            } else if !i_rev.is_empty() {
                match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(Errno::EIO) => input = None,
                    Ok(n) => {
                        pending.clear();
                        pending.extend_from_slice(&buf[..n]);
                        written = 0;
                    }
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    Err(e) => {
                        return Err(ConsoleError::Sys {
                            op: "read console input",
                            source: e,
                        })
                    }
                }
            }
        }
        if should_stop() {
            pump_master(master, output, 1 << 20)?;
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests;
