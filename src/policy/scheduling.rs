//! process.scheduler, process.ioPriority, linux.personality and process.execCPUAffinity.

use nix::errno::Errno;
use nix::sched::CpuSet;
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P, Scheduler,
};

use crate::error::{Error, Result};

/// `struct sched_attr` (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

pub fn set_scheduler(s: &Scheduler) -> Result<()> {
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: `attr` is a properly sized, initialised sched_attr; the kernel only reads it.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    Errno::result(rc).map(drop).map_err(|e| {
        Error::sys(
            "sched_setattr",
            format!("process.scheduler {:?}", s.policy()),
            e,
        )
    })
}

pub fn set_io_priority(p: &LinuxIOPriority) -> Result<()> {
    let class: i64 = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(Error::spec(
            "process.ioPriority.priority",
            "must be between 0 and 7",
        ));
    }
    let value = (class << 13) | p.priority();
    // SAFETY: ioprio_set takes plain integers (IOPRIO_WHO_PROCESS = 1, pid 0 = self).
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, value) };
    Errno::result(rc)
        .map(drop)
        .map_err(|e| Error::sys("ioprio_set", format!("{value:#x}"), e))
}

pub fn set_personality(p: &LinuxPersonality) -> Result<()> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::spec(
            "linux.personality.flags",
            "no personality flags are supported",
        ));
    }
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality(2) takes a plain integer.
    let rc = unsafe { libc::personality(persona) };
    Errno::result(rc)
        .map(drop)
        .map_err(|e| Error::sys("personality", format!("{:?}", p.domain()), e))
}

/// Parses a cpu list such as "0-3,7".
pub fn parse_cpu_list(list: &str) -> Result<CpuSet> {
    let bad = || {
        Error::spec(
            "process.execCPUAffinity",
            format!("invalid cpu list {list:?}"),
        )
    };
    let mut set = CpuSet::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                a.parse::<usize>().map_err(|_| bad())?,
                b.parse::<usize>().map_err(|_| bad())?,
            ),
            None => {
                let n = part.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if a > b {
            return Err(bad());
        }
        for cpu in a..=b {
            set.set(cpu).map_err(|_| bad())?;
        }
    }
    Ok(set)
}

pub fn set_affinity(list: &str) -> Result<()> {
    let set = parse_cpu_list(list)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| Error::sys("sched_setaffinity", list.to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let s = parse_cpu_list("0-2,5").unwrap();
        for (cpu, on) in [(0, true), (1, true), (2, true), (3, false), (5, true)] {
            assert_eq!(s.is_set(cpu).unwrap(), on);
        }
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }
}
