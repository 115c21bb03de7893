//! Filesystem view: root read-only-ness, mounts and their flags, masked and read-only paths,
//! default and configured device nodes.

use crate::harness::Env;
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};

/// A mount made on the host for one test; detached when dropped.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path) -> HostMount {
        fs::create_dir_all(at).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .expect("mount tmpfs on host");
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn opts(mount_line: &str) -> Vec<&str> {
    mount_line
        .split_whitespace()
        .next()
        .unwrap_or("")
        .split(',')
        .collect()
}

#[test]
fn readonly_root_and_writable_root() {
    let mut env = Env::new();
    let f = env.check(&["mount:/"]);
    assert_eq!(f.get("root_writable"), "no");
    assert!(
        opts(f.get("mount:/")).contains(&"ro"),
        "{}",
        f.get("mount:/")
    );

    env.config["root"]["readonly"] = false.into();
    let f = env.check(&["mount:/"]);
    assert_eq!(f.get("root_writable"), "yes");
    assert!(
        opts(f.get("mount:/")).contains(&"rw"),
        "{}",
        f.get("mount:/")
    );
}

#[test]
fn bind_mount_with_flags() {
    let mut env = Env::new();
    let src = env.dir.join("bindsrc");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("hello"), "from host").unwrap();
    env.mount(
        json!({"destination": "/data", "type": "bind", "source": src.to_str().unwrap(),
                     "options": ["bind", "ro", "nosuid", "nodev"]}),
    );
    let f = env.check(&["mount:/data", "read:/data/hello", "write:/data/new"]);
    let o = opts(f.get("mount:/data"));
    for flag in ["ro", "nosuid", "nodev"] {
        assert!(o.contains(&flag), "bind mount lacks {flag}: {o:?}");
    }
    assert_eq!(f.get("read:/data/hello"), "ok:from host");
    assert_eq!(f.get("write:/data/new"), "fail");
    assert!(!src.join("new").exists());
}

#[test]
fn tmpfs_with_size_and_mode() {
    let mut env = Env::new();
    env.mount(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                     "options": ["nosuid", "noexec", "size=1m", "mode=700"]}),
    );
    let f = env.check(&["mount:/scratch", "stat:/scratch", "write:/scratch/f"]);
    let line = f.get("mount:/scratch");
    assert!(
        line.contains(" tmpfs ") && line.contains("size=1024k"),
        "{line}"
    );
    assert!(
        opts(line).contains(&"noexec") && opts(line).contains(&"nosuid"),
        "{line}"
    );
    assert_eq!(f.get("stat:/scratch"), "directory 700 0 0 0 0");
    assert_eq!(f.get("write:/scratch/f"), "ok");
}

#[test]
fn recursive_readonly_bind_covers_submounts() {
    let mut env = Env::new();
    let src = env.dir.join("rrosrc");
    let _sub = HostMount::tmpfs(&src.join("sub"));
    env.mount(
        json!({"destination": "/rro", "type": "bind", "source": src.to_str().unwrap(),
                     "options": ["rbind", "rro"]}),
    );
    let f = env.check(&["mount:/rro", "mount:/rro/sub", "write:/rro/sub/f"]);
    assert!(
        opts(f.get("mount:/rro")).contains(&"ro"),
        "{}",
        f.get("mount:/rro")
    );
    assert!(
        opts(f.get("mount:/rro/sub")).contains(&"ro"),
        "submount not ro: {}",
        f.get("mount:/rro/sub")
    );
    assert_eq!(f.get("write:/rro/sub/f"), "fail");
}

#[test]
fn masked_paths_hide_files_and_dirs() {
    let mut env = Env::new();
    fs::write(env.rootfs().join("etc/secret"), "top secret").unwrap();
    fs::create_dir_all(env.rootfs().join("etc/secretdir")).unwrap();
    fs::write(env.rootfs().join("etc/secretdir/inner"), "x").unwrap();
    env.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .extend([json!("/etc/secret"), json!("/etc/secretdir")]);
    let f = env.check(&[
        "read:/etc/secret",
        "ls:/etc/secretdir",
        "read:/proc/keys",
        "ls:/sys/firmware",
        "read:/etc/passwd",
    ]);
    assert_eq!(f.get("read:/etc/secret"), "ok:");
    assert_eq!(f.get("ls:/etc/secretdir"), "");
    assert_eq!(f.get("read:/proc/keys"), "ok:");
    assert_eq!(f.get("ls:/sys/firmware"), "");
    assert!(
        f.get("read:/etc/passwd").starts_with("ok:root:x:0:0"),
        "unmasked files stay readable"
    );
}

#[test]
fn readonly_paths_refuse_writes() {
    let mut env = Env::new();
    env.config["root"]["readonly"] = false.into();
    fs::create_dir_all(env.rootfs().join("tmp/rodir")).unwrap();
    env.config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/tmp/rodir"));
    let f = env.check(&[
        "write:/tmp/rodir/f",
        "write:/tmp/f",
        "mount:/proc/sys",
        "write:/proc/sys/kernel/hostname",
    ]);
    assert_eq!(f.get("write:/tmp/rodir/f"), "fail");
    assert_eq!(
        f.get("write:/tmp/f"),
        "ok",
        "paths outside readonlyPaths stay writable"
    );
    assert!(opts(f.get("mount:/proc/sys")).contains(&"ro"));
    assert_eq!(f.get("write:/proc/sys/kernel/hostname"), "fail");
}

#[test]
fn default_devices() {
    let mut env = Env::new();
    let devs = [
        ("null", 3),
        ("zero", 5),
        ("full", 7),
        ("random", 8),
        ("urandom", 9),
    ];
    let mut directives: Vec<String> = devs.iter().map(|(d, _)| format!("stat:/dev/{d}")).collect();
    directives.extend(
        [
            "stat:/dev/tty",
            "link:/dev/ptmx",
            "link:/dev/fd",
            "link:/dev/stdin",
            "link:/dev/stdout",
            "link:/dev/stderr",
            "write:/dev/null",
            "mount:/dev/pts",
        ]
        .map(String::from),
    );
    let f = env.check(&directives.iter().map(String::as_str).collect::<Vec<_>>());
    for (d, minor) in devs {
        assert_eq!(
            f.get(&format!("stat:/dev/{d}")),
            format!("char 666 0 0 1 {minor}"),
            "/dev/{d}"
        );
    }
    assert_eq!(f.get("stat:/dev/tty"), "char 666 0 0 5 0");
    assert_eq!(f.get("link:/dev/ptmx"), "pts/ptmx");
    assert_eq!(f.get("link:/dev/fd"), "/proc/self/fd");
    assert_eq!(f.get("link:/dev/stdin"), "/proc/self/fd/0");
    assert_eq!(f.get("link:/dev/stdout"), "/proc/self/fd/1");
    assert_eq!(f.get("link:/dev/stderr"), "/proc/self/fd/2");
    assert_eq!(f.get("write:/dev/null"), "ok");
    assert!(
        f.get("mount:/dev/pts").contains(" devpts "),
        "{}",
        f.get("mount:/dev/pts")
    );
}

#[test]
fn configured_device_node() {
    let mut env = Env::new();
    env.config["linux"]["devices"] = json!([
        {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1000}
    ]);
    let f = env.check(&["stat:/dev/mydev"]);
    assert_eq!(f.get("stat:/dev/mydev"), "char 640 1000 1000 1 3");
}
