//! `process.rlimits`: applied to init before it drops privileges (raising a hard limit needs
//! CAP_SYS_RESOURCE), inherited across execve.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType as T};

use crate::error::{Error, Result};

fn resource(t: T) -> libc::__rlimit_resource_t {
    match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn apply(limits: &[PosixRlimit]) -> Result<()> {
    for (i, l) in limits.iter().enumerate() {
        if l.soft() > l.hard() {
            return Err(Error::spec(
                format!("process.rlimits[{i}]"),
                format!(
                    "{}: soft limit {} is above hard limit {}",
                    l.typ(),
                    l.soft(),
                    l.hard()
                ),
            ));
        }
        let lim = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: `lim` is a valid rlimit; a null old-limit pointer is allowed by prlimit(2).
        let rc = unsafe { libc::prlimit(0, resource(l.typ()), &lim, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(Error::sys(
                "prlimit",
                format!("{} soft={} hard={}", l.typ(), l.soft(), l.hard()),
                nix::errno::Errno::last(),
            ));
        }
    }
    Ok(())
}
