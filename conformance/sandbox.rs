//! `ward sandbox` (issue 18): the regressions of its walls that a shell script would prove
//! less precisely — a terminal the command does not own cannot be typed into (TIOCSTI),
//! ward's own state is out of sight, signals reach the command past the reaper, and a run
//! leaves nothing behind. Run as root (the sandbox keeps uid 0, no capabilities); the
//! unprivileged cases are integration/sandbox/ward.sh's. ward only: runc has no sandbox.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::runtime_is_runc;
use crate::require;

fn ward() -> &'static str {
    env!("CARGO_BIN_EXE_ward")
}

/// A private state root and working directory for one test, under /var/tmp (outside /tmp,
/// which the sandbox replaces with its own: what is there would be hidden anyway).
struct Place {
    dir: Dir,
}

struct Dir(std::path::PathBuf);

impl Dir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Place {
    fn new() -> Place {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::path::PathBuf::from(format!("/var/tmp/ward-sbx-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Place { dir: Dir(dir) }
    }
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }
    fn work(&self) -> std::path::PathBuf {
        let w = self.dir.path().join("work");
        std::fs::create_dir_all(&w).unwrap();
        w
    }
    fn sandbox(&self, args: &[&str]) -> Command {
        let mut c = Command::new(ward());
        c.arg("--root").arg(self.root()).arg("sandbox");
        c.args(args).current_dir(self.work());
        c
    }
    /// Nothing of a sandbox left under the state root: no container, no work directory.
    fn assert_nothing_left(&self) {
        let root = self.root();
        let left: Vec<String> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "@cache" && n != ".sandbox")
            .collect();
        assert!(left.is_empty(), "left in {}: {left:?}", root.display());
        let work = root.join(".sandbox");
        let left: Vec<_> = std::fs::read_dir(&work)
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        assert!(left.is_empty(), "left in {}: {left:?}", work.display());
    }
}

fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The command's stdin is the caller's terminal when its stdout is not (no pty of its own):
/// TIOCSTI would type into the caller's shell after the sandbox exits. Refused: init leads a
/// session of its own (setsid), so that terminal is not the command's controlling one.
#[test]
fn sandbox_cannot_type_into_the_callers_terminal() {
    require!(!runtime_is_runc(), "runc has no sandbox");
    require!(
        has("script") && has("python3"),
        "needs script(1) and python3"
    );
    let p = Place::new();
    let out = p.dir.path().join("out");
    let inner = format!(
        "{} --root {} sandbox -- python3 -c 'import fcntl, termios\ntry:\n    fcntl.ioctl(0, termios.TIOCSTI, b\"x\"); print(\"injected\")\nexcept OSError as e:\n    print(\"refused\", e.errno)' > {} 2>&1",
        ward(),
        p.root().display(),
        out.display()
    );
    let st = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .current_dir(p.work())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(st.success(), "script failed: {text}");
    assert!(
        text.contains("refused 1"),
        "TIOCSTI was not refused: {text}"
    );
    p.assert_nothing_left();
}

/// ward's state root (every container's state, this sandbox's own) is masked inside.
#[test]
fn sandbox_cannot_read_wards_state() {
    require!(!runtime_is_runc(), "runc has no sandbox");
    let p = Place::new();
    std::fs::create_dir_all(p.root()).unwrap();
    std::fs::write(p.root().join("marker"), "state").unwrap();
    let script = format!(
        "ls -A {}; cat {}/marker",
        p.root().display(),
        p.root().display()
    );
    let out = p.sandbox(&["--", "sh", "-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("marker") && !stdout.contains("state"),
        "{stdout}"
    );
    std::fs::remove_file(p.root().join("marker")).unwrap();
    p.assert_nothing_left();
}

/// pid 1 of a pid namespace ignores signals it has no handler for: the reaper passes them on,
/// so `kill -INT` of ward ends a command that never set a handler, with 128+2.
#[test]
fn sandbox_signals_reach_the_command() {
    require!(!runtime_is_runc(), "runc has no sandbox");
    let p = Place::new();
    let mut child = p
        .sandbox(&["--", "sleep", "100"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(130), "{st:?}");
    p.assert_nothing_left();
}

/// Exit statuses pass through; a command killed inside reports 128+9.
#[test]
fn sandbox_exit_status_passes_through() {
    require!(!runtime_is_runc(), "runc has no sandbox");
    let p = Place::new();
    for (script, want) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 255", 255),
        ("kill -KILL $$", 137),
    ] {
        let st = p.sandbox(&["--", "sh", "-c", script]).status().unwrap();
        assert_eq!(st.code(), Some(want), "{script}");
    }
    p.assert_nothing_left();
}

/// srt's protected files stay read-only under a writable tree (a git hook written inside
/// would run outside); the rest of the tree is writable.
#[test]
fn sandbox_protects_git_hooks_under_a_writable_tree() {
    require!(!runtime_is_runc(), "runc has no sandbox");
    let p = Place::new();
    let hooks = p.work().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let out = p
        .sandbox(&[
            "--",
            "sh",
            "-c",
            "echo x > .git/hooks/pre-commit && echo hooked; echo y > file && echo wrote",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("wrote") && !stdout.contains("hooked"),
        "{stdout}"
    );
    assert!(!Path::new(&hooks.join("pre-commit")).exists());
    p.assert_nothing_left();
}
