//! Which walls this kernel gives an unprivileged sandbox, checked before anything is made: a
//! missing one refuses the sandbox, naming it and how to get it, unless `--allow-weaker`
//! gives it up (Landlock and seccomp can be; the user namespace cannot, since without it an
//! unprivileged caller can mount nothing).

use crate::error::{Error, Result};

use super::Weaker;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Why unprivileged user namespaces are unavailable, if they are.
pub fn userns_missing() -> Option<String> {
    // SAFETY: geteuid has no failure mode.
    if unsafe { libc::geteuid() } == 0 {
        return None;
    }
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some("user namespaces are disabled (user.max_user_namespaces = 0)".into());
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"
                .into(),
        );
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some("AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)".into());
    }
    None
}

pub fn landlock_missing() -> Option<String> {
    (crate::policy::landlock::kernel_abi() < 1)
        .then(|| "this kernel has no Landlock (CONFIG_SECURITY_LANDLOCK, lsm= on the kernel command line)".into())
}

pub fn seccomp_missing() -> Option<String> {
    read("/proc/sys/kernel/seccomp/actions_avail")
        .filter(|a| a.split_whitespace().any(|w| w == "errno"))
        .is_none()
        .then(|| "this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)".into())
}

/// Refuses when a wall is missing and not given up; returns a warning per wall given up.
pub fn check(weaker: Weaker) -> Result<Vec<String>> {
    decide(
        weaker,
        userns_missing(),
        landlock_missing(),
        seccomp_missing(),
    )
}

/// `check` on what the probes found (each `Some(why)` when missing).
fn decide(
    weaker: Weaker,
    userns: Option<String>,
    landlock: Option<String>,
    seccomp: Option<String>,
) -> Result<Vec<String>> {
    if let Some(why) = userns {
        return Err(Error::Host(format!(
            "ward sandbox needs unprivileged user namespaces: {why}"
        )));
    }
    let mut warnings = Vec::new();
    for (name, missing, given_up) in [
        ("landlock", landlock, weaker.landlock),
        ("seccomp", seccomp, weaker.seccomp),
    ] {
        match (missing, given_up) {
            (Some(why), false) => {
                return Err(Error::Host(format!(
                    "ward sandbox: {why}; run with --allow-weaker {name} to go on without it"
                )))
            }
            (_, true) => warnings.push(format!("running without {name} (--allow-weaker {name})")),
            (None, false) => {}
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_wall_is_refused_by_name_unless_given_up() {
        let none = Weaker::default();
        let e = decide(none, None, Some("no Landlock".into()), None).unwrap_err();
        assert!(e.to_string().contains("--allow-weaker landlock"), "{e}");
        let w = decide(
            Weaker {
                landlock: true,
                seccomp: false,
            },
            None,
            Some("no Landlock".into()),
            None,
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("without landlock"));
        let e = decide(none, None, None, Some("no seccomp".into())).unwrap_err();
        assert!(e.to_string().contains("--allow-weaker seccomp"), "{e}");
        // The user namespace cannot be given up.
        let all = Weaker {
            landlock: true,
            seccomp: true,
        };
        let e = decide(all, Some("disabled".into()), None, None).unwrap_err();
        assert!(e.to_string().contains("user namespaces"), "{e}");
        assert!(decide(none, None, None, None).unwrap().is_empty());
    }
}
