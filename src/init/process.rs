//! The container process itself: user, environment, cwd, scheduling attributes, LSM labels,
//! and the final execve.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Process, User};

use crate::error::{Error, Result, SysContext};

/// The environment init executes with: process.env plus HOME from the container's /etc/passwd
/// when unset (runc's behaviour). Call after pivot_root.
pub fn environment(p: &Process) -> Vec<String> {
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home =
            crate::sys::passwd::by_uid(p.user().uid()).map_or_else(|| "/".into(), |e| e.home);
        env.push(format!("HOME={home}"));
    }
    env
}

/// Finds `args[0]` in the container (after pivot_root), using the PATH of `env`.
/// The error wording is runc's, which engines show to users.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
            .unwrap_or(false)
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        if is_exec(&p) {
            return Ok(p);
        }
        return Err(Error::Init(format!(
            "exec: {arg0:?}: stat {arg0}: no such file or directory or not executable"
        )));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if is_exec(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::Init(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

/// Switches to the process user: supplementary groups, gid, then uid. Capabilities survive the
/// switch (PR_SET_KEEPCAPS) so `capabilities::apply` can install the spec's sets afterwards.
pub fn switch_user(user: &User) -> Result<()> {
    nix::sys::prctl::set_keepcaps(true).sys("prctl", "PR_SET_KEEPCAPS")?;
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&groups) {
        Ok(()) => {}
        // A user namespace whose setgroups is "deny" keeps the groups it has.
        Err(nix::errno::Errno::EPERM) if groups.is_empty() => {}
        // Rootless with only the caller's own gid mapped, the kernel requires "deny": runc
        // skips the additional groups then, and so does ward, saying so.
        Err(nix::errno::Errno::EPERM) if setgroups_denied() => {
            tracing::warn!(
                "process.user.additionalGids {:?} not set: setgroups is denied in this user \
                 namespace (only the caller's own gid is mapped; map more with newgidmap)",
                user.additional_gids()
            );
        }
        Err(e) => {
            return Err(Error::sys(
                "setgroups",
                format!("{:?}", user.additional_gids()),
                e,
            ))
        }
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).sys("setresgid", user.gid().to_string())?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).sys("setresuid", user.uid().to_string())?;
    nix::sys::prctl::set_keepcaps(false).sys("prctl", "PR_SET_KEEPCAPS")?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        user.umask().unwrap_or(0o022),
    ));
    Ok(())
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// Changes into process.cwd (creating it, as runc does). Runs after pivot_root with every host
/// fd closed or CLOEXEC, so the path can only resolve inside the container (CVE-2024-21626).
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    let root = crate::sys::safepath::open_root(Path::new("/"))?;
    let fd = crate::sys::safepath::mkdir_all(std::os::fd::AsFd::as_fd(&root), cwd)?;
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .sys("fchdir", cwd.display().to_string())
}

/// Gives the process's stdio to its user (the uid; the group stays), as runc does, so that a
/// non-root process can reopen `/dev/stdout` and owns its terminal. Skipped for stdio that is
/// /dev/null or already the user's, and where the owner cannot be changed (an unmapped owner
/// in a user namespace, a read-only filesystem). Runs while the process is still root.
pub fn give_stdio_to(uid: u32) -> Result<()> {
    use nix::sys::stat::{fstat, stat};
    // A root without /dev (no mount namespace, nothing mounted) has no /dev/null to skip.
    let null_rdev = stat("/dev/null").map_or(0, |st| st.st_rdev);
    for fd in 0..3 {
        let Ok(st) = fstat(fd) else {
            continue;
        };
        if st.st_uid == uid || (st.st_rdev == null_rdev && st.st_rdev != 0) {
            continue;
        }
        match nix::unistd::fchown(fd, Some(Uid::from_raw(uid)), None) {
            Ok(()) => {}
            Err(
                nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM | nix::errno::Errno::EROFS,
            ) => {}
            Err(e) => {
                return Err(Error::sys(
                    "fchown",
                    format!("stdio fd {fd} to uid {uid}"),
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// The second try of runc's cwd rule, as the process user once the first (as the runtime's
/// user) was refused. The filter may be loaded by now, so this is the classic chdir(2); the
/// root is the container's and init closed every host fd first, and getcwd(2) must then
/// name a path under the root.
pub fn chdir_as_user(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).sys("chdir", cwd.display().to_string())?;
    // As runc's verifyCwd: a cwd the root cannot reach (an fd's magic link) has no path.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::spec(
            "process.cwd",
            format!("{} is outside the container's root", cwd.display()),
        )),
    }
}

/// oomScoreAdj, written for init itself (children inherit it).
pub fn set_oom_score_adj(v: i32) -> Result<()> {
    crate::sys::procfs::write("self/oom_score_adj", &v.to_string())
}

/// Refuses an LSM label the host cannot apply (runc's behaviour), applies it otherwise.
pub fn apply_lsm(p: &Process) -> Result<()> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .map(|s| s.trim() == "Y")
            .unwrap_or(false);
        if !enabled {
            return Err(Error::spec(
                "process.apparmorProfile",
                format!("{profile:?} requested but AppArmor is not enabled on this host"),
            ));
        }
        crate::sys::procfs::write("self/attr/apparmor/exec", &format!("exec {profile}"))
            .or_else(|_| crate::sys::procfs::write("self/attr/exec", &format!("exec {profile}")))?;
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        if !Path::new("/sys/fs/selinux/enforce").exists() {
            return Err(Error::spec(
                "process.selinuxLabel",
                format!("{label:?} requested but SELinux is not enabled on this host"),
            ));
        }
        crate::sys::procfs::write("self/attr/exec", label)?;
    }
    Ok(())
}

/// Closes every fd from 3 up but the `preserve` ones right after stdio and those in `keep`:
/// what the caller of ward had open must not reach (or be held by) a process that becomes the
/// container's, even while it waits for `start`.
pub fn close_fds_except(preserve: u32, keep: &[std::os::fd::RawFd]) -> Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = 3 + preserve;
    for k in keep {
        if k < from {
            continue;
        }
        if k > from {
            close_range(from, k - 1)?;
        }
        from = k + 1;
    }
    close_range(from, u32::MAX)
}

fn close_range(first: u32, last: u32) -> Result<()> {
    // SAFETY: close_range only closes fds of this process; nothing of ours refers to the fds
    // in the range (the caller names every fd it still uses in its keep list).
    let rc = unsafe { libc::close_range(first, last, 0) };
    if rc != 0 {
        return Err(Error::sys(
            "close_range",
            format!("{first}..={last}"),
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

/// The socket-activation fds passed to ward (systemd's LISTEN_FDS, meant for ward's pid): they
/// go to the container right after stdio, before --preserve-fds, as runc passes them.
pub fn listen_fds() -> u32 {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    if !for_us {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Marks every fd from `first` up close-on-exec, and clears it on the fds below that the
/// caller passed with --preserve-fds.
pub fn close_fds_on_exec(preserve: u32) -> Result<()> {
    let first = 3 + preserve;
    // SAFETY: close_range only changes fd flags; no memory is involved.
    let rc = unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) };
    if rc != 0 {
        return Err(Error::sys(
            "close_range",
            format!("{first}.."),
            nix::errno::Errno::last(),
        ));
    }
    for fd in 3..first {
        nix::fcntl::fcntl(
            fd as i32,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .sys("fcntl", format!("preserved fd {fd}"))?;
    }
    Ok(())
}

/// execve; returns only on failure.
pub fn exec(path: &Path, args: &[String], env: &[String]) -> Error {
    let cs = |s: &str| {
        CString::new(s)
            .map_err(|_| Error::spec("process.args", format!("{s:?} contains a NUL byte")))
    };
    let run = || -> Result<std::convert::Infallible> {
        let path_c = cs(&path.to_string_lossy())?;
        let args_c = args.iter().map(|a| cs(a)).collect::<Result<Vec<_>>>()?;
        let env_c = env.iter().map(|a| cs(a)).collect::<Result<Vec<_>>>()?;
        nix::unistd::execve(&path_c, &args_c, &env_c).sys("execve", path.display().to_string())
    };
    match run() {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_in_path_and_reports_missing() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_executable("sh", &env).is_ok());
        let err = find_executable("no-such-binary-ward", &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("executable file not found in $PATH"), "{err}");
    }
}
