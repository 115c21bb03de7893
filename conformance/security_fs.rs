//! Escape classes where a mount target, a mask source, the console or a procfs write is
//! redirected through a symlink or a mount the image/config controls. Submodule of
//! security.rs (`#[path]`), so `cargo test --test conformance security` runs it.

use crate::harness::{Env, Out};
use serde_json::json;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

fn host_mountinfo_mentions(path: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(path)
}

/// A mount at `/mnt/evil`, an image symlink to `link` (HOSTDIR: the host dir sans `/`),
/// must land inside the rootfs at `inside`, leaving the host dir empty and unmounted.
fn assert_mount_symlink_contained(link: &str, inside: &str) {
    let mut env = Env::new();
    let hostdir = env.dir.join("hostdir");
    fs::create_dir_all(&hostdir).unwrap();
    let link = link.replace("HOSTDIR", &hostdir.to_string_lossy()[1..]);
    symlink(&link, env.rootfs().join("mnt/evil")).unwrap();
    env.mount(json!({"destination": "/mnt/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    let inside = inside.replace("HOSTDIR", &hostdir.to_string_lossy()[1..]);
    let mount_key = format!("mount:{inside}");
    let f = env.check(&[&mount_key, "write:/mnt/evil/marker"]);
    assert!(
        f.get(&mount_key).contains(" tmpfs "),
        "mount did not land inside the rootfs: {:?}",
        f.0
    );
    assert_eq!(f.get("write:/mnt/evil/marker"), "ok");
    assert_eq!(
        fs::read_dir(&hostdir).unwrap().count(),
        0,
        "host directory was written"
    );
    assert!(
        !host_mountinfo_mentions(hostdir.to_str().unwrap()),
        "host directory got a mount"
    );
    assert!(
        env.rootfs().join(&inside[1..]).is_dir(),
        "mountpoint should be created inside the rootfs"
    );
}

/// CVE-2021-30465 class (mount destinations resolved through image symlinks): an image
/// symlink at a mount destination pointing at an absolute host path is resolved inside the
/// rootfs: the mount lands in the rootfs and the host directory is untouched.
#[test]
fn cve_2021_30465_mount_destination_absolute_symlink_stays_in_rootfs() {
    assert_mount_symlink_contained("/HOSTDIR", "/HOSTDIR");
}

/// CVE-2021-30465 class, relative form: `/mnt/evil -> ../../../../../<host dir>` climbs past
/// the rootfs if resolved on the host; inside the rootfs `..` stops at `/`.
#[test]
fn cve_2021_30465_mount_destination_relative_symlink_stays_in_rootfs() {
    assert_mount_symlink_contained("../../../../../../../../HOSTDIR", "/HOSTDIR");
}

/// CVE-2025-31133 class (masked-path abuse): a masked path that the image made a symlink to
/// a host file must not mask (bind over) the host file or expose it.
#[test]
fn cve_2025_31133_masked_path_symlink_does_not_touch_host() {
    let mut env = Env::new();
    let secret = env.dir.join("hostsecret");
    fs::write(&secret, "host data").unwrap();
    let target = secret.to_str().unwrap().to_string();
    symlink(&target, env.rootfs().join("etc/masklink")).unwrap();
    env.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc/masklink"));
    env.config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc/masklink"));
    let f = env.check(&["read:/etc/masklink"]);
    assert_eq!(
        f.get("read:/etc/masklink"),
        "err",
        "the link must resolve inside the rootfs"
    );
    assert_eq!(fs::read_to_string(&secret).unwrap(), "host data");
    assert!(!host_mountinfo_mentions(&target), "host file got a mount");
    fs::write(&secret, "still writable").expect("host file must stay writable");
}

/// Replaces the config's /dev tmpfs by a bind mount of `<bundle>/devdir` (returned), which
/// the "image" controls; submounts get their mountpoints, `ptmx` links to `pts/ptmx`.
fn dev_from_bundle(env: &mut Env) -> PathBuf {
    let dev = env.bundle.join("devdir");
    for d in ["pts", "shm", "mqueue"] {
        fs::create_dir_all(dev.join(d)).unwrap();
    }
    symlink("pts/ptmx", dev.join("ptmx")).unwrap();
    let src = dev.to_str().unwrap().to_string();
    for m in env.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            *m = json!({"destination": "/dev", "type": "bind", "source": src, "options": ["rbind", "rw"]});
        }
    }
    dev
}

/// (content, mode, uid) of a file, to prove nothing wrote, chmod'ed or chown'ed it.
fn fingerprint(p: &Path) -> (String, u32, u32) {
    let m = fs::metadata(p).unwrap();
    (fs::read_to_string(p).unwrap(), m.mode(), m.uid())
}

/// /dev/null is `plant` (via `make`); the default maskedPaths are bound from "/dev/null".
/// The runtime must refuse, or mask with the real null device: /proc/timer_list (readable
/// and non-empty when unmasked) and /proc/keys read empty, and `victim` is unchanged.
fn assert_mask_not_redirected(make: impl FnOnce(&Path, &Path)) {
    let mut env = Env::new();
    let dev = dev_from_bundle(&mut env);
    let victim = env.dir.join("hostsecret");
    fs::write(&victim, "HOST-SECRET").unwrap();
    make(&dev.join("null"), &victim);
    let before = fingerprint(&victim);
    // No `2>/dev/null` here: the container must not write the planted null itself.
    env.args(&[
        "sh",
        "-c",
        "for p in /proc/timer_list /proc/keys; do c=$(head -c 40 $p) && echo \"$p=[$c]\" || echo \"$p=ERR\"; done",
    ]);
    let out: Out = env.run(&env.id());
    eprintln!("masking with a planted /dev/null: {out:?}");
    assert_eq!(fingerprint(&victim), before, "victim touched: {out:?}");
    assert!(
        !host_mountinfo_mentions(victim.to_str().unwrap()),
        "victim got a mount"
    );
    if out.code == 0 {
        for p in ["/proc/timer_list", "/proc/keys"] {
            assert!(
                out.stdout.contains(&format!("{p}=[]")),
                "{p} not masked by the real /dev/null: {out:?}"
            );
        }
    }
}

/// CVE-2025-31133: /dev/null (in a /dev the image controls) is a symlink to a host file.
/// A runtime that binds "/dev/null" without checking it is the null device masks /proc
/// files with the host file or, resolving it in the container to nothing, silently skips
/// masking (runc ignores ENOENT there). runc 1.1.5 passes only by failing earlier (it stats
/// /dev/null while setting up the user).
#[test]
fn cve_2025_31133_dev_null_symlink_to_host_file_not_used_for_masking() {
    assert_mask_not_redirected(|null, victim| symlink(victim, null).unwrap());
}

/// CVE-2025-31133: /dev/null is a regular file with attacker content; binding it over the
/// masked paths would replace them by that file. runc 1.1.5 FAILS this.
#[test]
fn cve_2025_31133_dev_null_regular_file_not_used_for_masking() {
    assert_mask_not_redirected(|null, _| fs::write(null, "NOT-NULL").unwrap());
}

/// CVE-2025-31133: /dev/null is a symlink to /proc/sys/kernel/core_pattern; following it
/// bind-mounts a writable core_pattern over every masked file (host escape via
/// core_pattern). Nothing here writes core_pattern. runc 1.1.5 FAILS this.
#[test]
fn cve_2025_31133_dev_null_symlink_to_procfs_not_used_for_masking() {
    let before = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert_mask_not_redirected(|null, _| symlink("/proc/sys/kernel/core_pattern", null).unwrap());
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
}

/// Reads the pty master until the slave side closes (EIO) or 10s pass.
fn read_all(master: OwnedFd) -> String {
    crate::console::read_until(master, "END").replace('\r', "")
}

/// terminal:true, /dev from the bundle with `console` a symlink to `link`, the process as
/// uid 1000 (so a chown through the link shows). Returns (create result, pty output of
/// `stat` on /dev/console and on `link` inside the container).
fn console_through_symlink(env: &mut Env, link: &str) -> (Out, String) {
    let dev = dev_from_bundle(env);
    let null = std::ffi::CString::new(dev.join("null").to_str().unwrap()).unwrap();
    // SAFETY: plain syscall on a valid C string: a real null device (1:3) for the masks.
    let rc = unsafe { libc::mknod(null.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(rc, 0, "mknod null: {}", std::io::Error::last_os_error());
    symlink(link, dev.join("console")).unwrap();
    env.config["process"]["terminal"] = true.into();
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let script = format!("stat -c '%n=%F %t:%T %u' /dev/console {link}; echo END");
    env.args(&["sh", "-c", &script]);
    let id = env.id();
    let (out, master) = crate::console::create_with_console(env, &id);
    if out.code != 0 {
        eprintln!("console through a symlink: refused: {out:?}");
        return (out, String::new());
    }
    let master = master.expect("pty master");
    env.start(&id).ok();
    let seen = read_all(master);
    eprintln!("console through a symlink: {out:?} {seen:?}");
    (out, seen)
}

/// CVE-2025-52565 (/dev/console bind-mount redirection): `console` in a /dev the image
/// controls is a symlink to a file (here a rootfs file, at the same path as a host file).
/// The runtime must refuse or mount the pty on a fresh /dev/console: the link's target
/// (inside and on the host) must stay a regular file with unchanged content/mode/owner.
/// runc 1.1.5 FAILS this: it mounts the pty over the rootfs file and chowns it to uid 1000.
#[test]
fn cve_2025_52565_dev_console_symlink_to_file_not_followed() {
    let mut env = Env::new();
    let host = env.dir.join("console-victim");
    let inside = env.rootfs().join(&host.to_str().unwrap()[1..]);
    fs::create_dir_all(inside.parent().unwrap()).unwrap();
    for p in [&host, &inside] {
        fs::write(p, "victim").unwrap();
    }
    let (h, i) = (fingerprint(&host), fingerprint(&inside));
    let (out, seen) = console_through_symlink(&mut env, host.to_str().unwrap());
    assert_eq!(fingerprint(&host), h, "host file touched: {out:?} {seen}");
    assert_eq!(
        fingerprint(&inside),
        i,
        "rootfs file touched: {out:?} {seen}"
    );
    assert!(
        !host_mountinfo_mentions(host.to_str().unwrap()),
        "host file got a mount"
    );
    if out.code == 0 {
        assert!(
            seen.contains("/dev/console=character special file 88:"),
            "{seen:?}"
        );
        let line = format!("{}=regular file 0:0 0", host.display());
        assert!(
            seen.contains(&line),
            "the link target became the console: {seen:?}"
        );
    }
}

/// CVE-2025-52565: `console` is a symlink to /proc/sys/kernel/core_pattern; following it
/// would mount the pty over core_pattern (and the chown/chmod of the console would hit it).
/// Inside, core_pattern must stay a procfs file; the host value is unchanged.
/// runc 1.1.5 FAILS this: the container's core_pattern becomes the pty (char 136:0).
#[test]
fn cve_2025_52565_dev_console_symlink_to_procfs_not_followed() {
    let before = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let mut env = Env::new();
    let (out, seen) = console_through_symlink(&mut env, "/proc/sys/kernel/core_pattern");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
    if out.code == 0 {
        assert!(
            seen.contains("/dev/console=character special file 88:"),
            "{seen:?}"
        );
        assert!(
            seen.contains("/proc/sys/kernel/core_pattern=regular empty file 0:0 0"),
            "core_pattern became the console: {seen:?}"
        );
    }
}

/// A bundle file with `0\n`, bind-mounted (after /proc) over the /proc file `dest`.
fn bind_over_proc(env: &mut Env, dest: &str) -> PathBuf {
    let decoy = env.bundle.join("decoy");
    fs::write(&decoy, "0\n").unwrap();
    let src = decoy.to_str().unwrap().to_string();
    env.mount(
        json!({"destination": dest, "type": "bind", "source": src, "options": ["bind", "rw"]}),
    );
    decoy
}

/// CVE-2025-52881 (procfs writes redirected by mounts): a config bind-mounts a bundle file
/// over /proc/sys/net/ipv4/ip_forward and sets sysctl net.ipv4.ip_forward=1. The sysctl
/// write must go to procfs (or the runtime refuses), never into the file mounted on top -
/// with a procfs file as the source that write would be e.g. a host core_pattern write.
/// (runc 1.1.5 refuses any mount inside /proc but its whitelist, so it passes.)
#[test]
fn cve_2025_52881_sysctl_write_not_redirected_by_bind_mount() {
    let mut env = Env::new();
    let decoy = bind_over_proc(&mut env, "/proc/sys/net/ipv4/ip_forward");
    env.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    env.args(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    let out = env.run(&env.id());
    eprintln!("sysctl over a bind mount: {out:?}");
    assert_eq!(
        fs::read_to_string(&decoy).unwrap(),
        "0\n",
        "sysctl written into the bind mount: {out:?}"
    );
}

/// CVE-2025-52881, oomScoreAdj: a bind mount of a bundle file over
/// /proc/self/oom_score_adj (resolved when mounted, i.e. to init's own pid dir) plus
/// `process.oomScoreAdj`: the value must not land in the bundle file. (runc refuses mounts
/// inside /proc; if the runtime cannot set the mount up, refusing passes.)
#[test]
fn cve_2025_52881_oom_score_adj_not_redirected_by_bind_mount() {
    let mut env = Env::new();
    let decoy = bind_over_proc(&mut env, "/proc/self/oom_score_adj");
    env.config["process"]["oomScoreAdj"] = 500.into();
    env.args(&["cat", "/proc/self/oom_score_adj"]);
    let out = env.run(&env.id());
    assert_eq!(
        fs::read_to_string(&decoy).unwrap(),
        "0\n",
        "oomScoreAdj written into the bind mount: {out:?}"
    );
    eprintln!("oomScoreAdj over a bind mount: {out:?}");
}
