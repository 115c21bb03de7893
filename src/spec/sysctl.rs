//! Which `linux.sysctl` keys a container may set: only those that live in a namespace of the
//! container's own, so a write can never reach the host (runc's rules, checked before anything
//! is created).
//!
//! - `net.*`: a new network namespace, or a joined one that is not the runtime's own;
//! - `kernel.msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced`, `fs.mqueue.*`:
//!   an IPC namespace of the container's own;
//! - `kernel.hostname`, `kernel.domainname`: a UTS namespace of the container's own
//!   (`kernel.hostname` not beside the `hostname` field: runc refuses it always);
//! - anything else is refused, naming the key.
//!
//! Keys are dotted (`net.ipv4.ip_forward`) or slashed (`net/ipv4/conf/eth0.100/forwarding`).
//!
//! runc checks only the network namespace against the host's; ward checks a joined IPC or UTS
//! namespace the same way (joining the runtime's own namespaces by path would reach the host).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oci_spec::runtime::LinuxNamespaceType as Ns;

use crate::error::{Error, Result};

/// The IPC sysctls the kernel keeps per IPC namespace (besides `fs.mqueue.*`).
const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The components of a key: separated by dots, or by slashes if it has any (then dots are
/// part of names, as in `net/ipv4/conf/eth0.100/forwarding`; sysctl.d's rule, runc accepts both).
fn components(key: &str) -> Option<Vec<&str>> {
    let sep = if key.contains('/') { '/' } else { '.' };
    let parts: Vec<&str> = key.split(sep).collect();
    let bad = |c: &&str| c.is_empty() || *c == "." || *c == "..";
    (parts.len() > 1 && !parts.iter().any(bad)).then_some(parts)
}

/// Where `key` is written, relative to /proc (`sys/net/ipv4/ip_forward`).
pub fn proc_path(key: &str) -> Option<String> {
    components(key).map(|c| format!("sys/{}", c.join("/")))
}

/// The namespace a key lives in, or why it may never be set.
fn namespace_of(key: &str) -> std::result::Result<Ns, &'static str> {
    let Some(parts) = components(key) else {
        return Err("is not a valid sysctl name");
    };
    let dotted = parts.join(".");
    if parts[0] == "net" {
        Ok(Ns::Network)
    } else if IPC_KEYS.contains(&dotted.as_str()) || dotted.starts_with("fs.mqueue.") {
        Ok(Ns::Ipc)
    } else if dotted == "kernel.hostname" || dotted == "kernel.domainname" {
        Ok(Ns::Uts)
    } else {
        Err("is not in a separate kernel namespace: it would change the host")
    }
}

/// Checks every key of `sysctl` against the container's namespaces: `namespaces` as in
/// `linux.namespaces` (type, path to join), `is_host` says whether a joined path is one of the
/// runtime's own namespaces.
/// `hostname` says whether the config's `hostname` field is set: `kernel.hostname` would
/// contradict it (runc refuses that sysctl even without the field; ward only then).
pub fn validate<'a>(
    sysctl: impl IntoIterator<Item = &'a String>,
    namespaces: &[(Ns, Option<std::path::PathBuf>)],
    hostname: bool,
    is_host: impl Fn(Ns, &Path) -> Result<bool>,
) -> Result<()> {
    // Sorted, so the error names the same key on every run.
    let mut keys: Vec<&String> = sysctl.into_iter().collect();
    keys.sort();
    for key in keys {
        let field = || format!("linux.sysctl.{key}");
        let ns = namespace_of(key).map_err(|why| Error::spec(field(), why))?;
        if hostname && components(key).is_some_and(|c| c == ["kernel", "hostname"]) {
            return Err(Error::spec(
                field(),
                "conflicts with the config's hostname field",
            ));
        }
        let own = match namespaces.iter().find(|(t, _)| *t == ns) {
            None => false,
            Some((_, None)) => true,
            Some((_, Some(path))) => !is_host(ns, path)?,
        };
        if !own {
            return Err(Error::spec(
                field(),
                format!("needs a {ns} namespace of the container's own, not the host's"),
            ));
        }
    }
    Ok(())
}

/// Whether the namespace at `path` is the one this process (the runtime) is in.
pub fn is_runtime_namespace(ns: Ns, path: &Path) -> Result<bool> {
    let name = match ns {
        Ns::Network => "net",
        Ns::Ipc => "ipc",
        Ns::Uts => "uts",
        Ns::Mount => "mnt",
        Ns::Pid => "pid",
        Ns::User => "user",
        Ns::Cgroup => "cgroup",
        Ns::Time => "time",
    };
    let field = format!("linux.namespaces[{ns}].path");
    let theirs = std::fs::metadata(path)
        .map_err(|e| Error::spec(field.clone(), format!("{}: {e}", path.display())))?;
    let ours = format!("/proc/self/ns/{name}");
    let ours = std::fs::metadata(&ours).map_err(|e| Error::spec(field, format!("{ours}: {e}")))?;
    Ok((theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn check(key: &str, ns: &[(Ns, Option<PathBuf>)]) -> Result<()> {
        let host = PathBuf::from("/host");
        validate(&[key.to_string()], ns, false, |_, p| Ok(p == host))
    }

    const ALL_NEW: &[(Ns, Option<PathBuf>)] = &[
        (Ns::Network, None),
        (Ns::Ipc, None),
        (Ns::Uts, None),
        (Ns::Pid, None),
        (Ns::Mount, None),
    ];

    #[test]
    fn namespaced_keys_pass_with_their_namespace() {
        for key in [
            "net.ipv4.ip_forward",
            "kernel.shmmax",
            "kernel.sem",
            "fs.mqueue.msg_max",
            "kernel.domainname",
            "kernel.hostname",
        ] {
            check(key, ALL_NEW).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }

    #[test]
    fn keys_without_their_namespace_are_refused_by_name() {
        for (key, ns) in [
            ("net.ipv4.ip_forward", Ns::Network),
            ("kernel.shmmax", Ns::Ipc),
            ("fs.mqueue.queues_max", Ns::Ipc),
            ("kernel.domainname", Ns::Uts),
        ] {
            let without: Vec<_> = ALL_NEW.iter().filter(|(t, _)| *t != ns).cloned().collect();
            let err = check(key, &without).unwrap_err().to_string();
            assert!(err.contains(&format!("linux.sysctl.{key}")), "{err}");
        }
    }

    #[test]
    fn slash_separated_keys_keep_dots_in_names() {
        check("net/ipv4/conf/eth0.100/forwarding", ALL_NEW).unwrap();
        assert_eq!(
            proc_path("net/ipv4/conf/eth0.100/forwarding").as_deref(),
            Some("sys/net/ipv4/conf/eth0.100/forwarding")
        );
        assert_eq!(
            proc_path("net.ipv4.ip_forward").as_deref(),
            Some("sys/net/ipv4/ip_forward")
        );
        let without_net = &ALL_NEW[1..];
        assert!(check("net/ipv4/ip_forward", without_net).is_err());
    }

    #[test]
    fn kernel_hostname_conflicts_with_the_hostname_field() {
        let key = ["kernel.hostname".to_string()];
        let err = validate(&key, ALL_NEW, true, |_, _| Ok(false)).unwrap_err();
        assert!(err.to_string().contains("hostname field"), "{err}");
        validate(&key, ALL_NEW, false, |_, _| Ok(false)).unwrap();
    }

    #[test]
    fn joined_host_namespace_is_not_the_containers_own() {
        let host = [(Ns::Network, Some(PathBuf::from("/host")))];
        assert!(check("net.core.somaxconn", &host).is_err());
        let other = [(Ns::Network, Some(PathBuf::from("/run/netns/x")))];
        check("net.core.somaxconn", &other).unwrap();
    }

    #[test]
    fn global_and_malformed_keys_are_refused() {
        for key in [
            "kernel.pid_max",
            "kernel/pid_max",
            "vm.swappiness",
            "net",
            "net..x",
            "net/../kernel/pid_max",
            "net//x",
            "",
        ] {
            let err = check(key, ALL_NEW).unwrap_err().to_string();
            assert!(err.contains(&format!("linux.sysctl.{key}")), "{key}: {err}");
        }
    }
}
