//! Resource values the kernel would refuse, clamp or read as "unlimited": refused up front,
//! naming the field, before any cgroup exists (and before `update` writes anything).
//!
//! 0 stays "unset" for the fields engines send zeros for (see `unset_zeros`), -1 "unlimited".
//! runc 1.1.5 lets the kernel decide: it fails on negative memory values and clamped shares
//! too, but runs a negative cpu quota or pids limit as unlimited, which ward refuses.

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

/// cpu.shares the kernel keeps as written (v1 `cpu.shares`; v2 weights convert from it).
const SHARES: std::ops::RangeInclusive<u64> = 2..=262_144;
/// CFS period and smallest quota, in microseconds (1 ms to 1 s).
const PERIOD: std::ops::RangeInclusive<u64> = 1_000..=1_000_000;
const MIN_QUOTA: i64 = 1_000;

fn at_least_minus_one(field: &str, v: Option<i64>, what: &str) -> Result<()> {
    match v {
        Some(v) if v < -1 => Err(Error::spec(
            field,
            format!("{v} is out of range: {what}, or -1 for unlimited"),
        )),
        _ => Ok(()),
    }
}

pub fn check(res: &LinuxResources) -> Result<()> {
    if let Some(m) = res.memory() {
        let bytes = "a size in bytes";
        at_least_minus_one("linux.resources.memory.limit", m.limit(), bytes)?;
        at_least_minus_one("linux.resources.memory.reservation", m.reservation(), bytes)?;
        at_least_minus_one("linux.resources.memory.swap", m.swap(), bytes)?;
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0 && !SHARES.contains(s)) {
            return Err(Error::spec(
                "linux.resources.cpu.shares",
                format!(
                    "{s} is out of range {}-{} (the kernel would change it), or 0 for unset",
                    SHARES.start(),
                    SHARES.end()
                ),
            ));
        }
        if let Some(p) = c.period().filter(|p| *p != 0 && !PERIOD.contains(p)) {
            return Err(Error::spec(
                "linux.resources.cpu.period",
                format!(
                    "{p} is out of range {}-{} microseconds",
                    PERIOD.start(),
                    PERIOD.end()
                ),
            ));
        }
        let quota = "a time in microseconds per period";
        at_least_minus_one("linux.resources.cpu.quota", c.quota(), quota)?;
        if let Some(q) = c.quota().filter(|q| (1..MIN_QUOTA).contains(q)) {
            return Err(Error::spec(
                "linux.resources.cpu.quota",
                format!("{q} is below the kernel's minimum of {MIN_QUOTA} microseconds"),
            ));
        }
    }
    if let Some(p) = res.pids() {
        at_least_minus_one(
            "linux.resources.pids.limit",
            Some(p.limit()),
            "a number of tasks",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn refused(json: &str, field: &str) {
        let err = check(&res(json)).unwrap_err().to_string();
        assert!(err.contains(field), "{json}: {err}");
    }

    #[test]
    fn unset_unlimited_and_ordinary_values_pass() {
        for ok in [
            r#"{"memory":{"limit":0,"reservation":0,"swap":0}}"#,
            r#"{"memory":{"limit":-1,"swap":-1}}"#,
            r#"{"memory":{"limit":67108864,"swap":134217728}}"#,
            r#"{"cpu":{"shares":0,"quota":0,"period":0}}"#,
            r#"{"cpu":{"shares":2,"quota":-1,"period":1000}}"#,
            r#"{"cpu":{"shares":262144,"quota":50000}}"#,
            r#"{"pids":{"limit":-1}}"#,
            r#"{"pids":{"limit":0}}"#,
        ] {
            check(&res(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        refused(r#"{"memory":{"limit":-2}}"#, "memory.limit");
        refused(r#"{"memory":{"reservation":-3}}"#, "memory.reservation");
        refused(r#"{"memory":{"swap":-5}}"#, "memory.swap");
        refused(r#"{"cpu":{"shares":1}}"#, "cpu.shares");
        refused(r#"{"cpu":{"shares":262145}}"#, "cpu.shares");
        refused(r#"{"cpu":{"period":999}}"#, "cpu.period");
        refused(r#"{"cpu":{"period":1000001}}"#, "cpu.period");
        refused(r#"{"cpu":{"quota":-2}}"#, "cpu.quota");
        refused(r#"{"cpu":{"quota":999}}"#, "cpu.quota");
        refused(r#"{"pids":{"limit":-5}}"#, "pids.limit");
    }
}
