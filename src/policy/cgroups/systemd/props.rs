//! `linux.resources` as systemd unit properties, with runc's conversions (so a unit made by
//! ward reads as one made by runc): cpu shares -> CPUWeight and blkio weight -> IOWeight
//! linearly, memory+swap -> MemorySwapMax (swap - limit), the quota as CPUQuotaPerSecUSec
//! rounded up to 10 ms, cpu and node lists as little-endian bitmasks, device rules as
//! DevicePolicy/DeviceAllow. Pure: no D-Bus here (`dbus` sends the list).

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};
use crate::policy::cgroups::{v2, Rule};

/// A property's value, as its D-Bus type wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prop {
    /// `t`
    U64(u64),
    /// `s`
    Str(String),
    /// `b`
    Bool(bool),
    /// `ay`
    Bytes(Vec<u8>),
    /// `au`
    Pids(Vec<u32>),
    /// `a(ss)`: (device, access)
    Devices(Vec<(String, String)>),
}

pub type Props = Vec<(&'static str, Prop)>;

/// systemd's "infinity" for the `t` limits.
const INFINITY: u64 = u64::MAX;

fn limit(v: i64) -> u64 {
    if v < 0 {
        INFINITY
    } else {
        v as u64
    }
}

/// runc 1.1's cpu shares (2..262144) -> CPUWeight / cpu.weight (1..10000), linear.
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + (s - 2) * 9999 / 262_142
}

/// blkio weight (10..1000) -> IOWeight / io.weight (1..10000), as the v2 driver writes it.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (w.max(10) as u64 - 10) * 9999 / 990
}

/// runc's CPUQuotaPerSecUSec: quota per second of wall time, rounded up to systemd's 10 ms
/// granularity (systemd would round down, giving less than asked); -1 = no limit.
pub fn quota_per_sec(quota: Option<i64>, period: Option<u64>) -> u64 {
    match quota {
        Some(q) if q > 0 => {
            let period = period.filter(|p| *p > 0).unwrap_or(100_000);
            let per_sec = (q as u64) * 1_000_000 / period;
            per_sec.div_ceil(10_000) * 10_000
        }
        _ => INFINITY,
    }
}

/// A cpuset list (`0-3,8`) as systemd's AllowedCPUs/AllowedMemoryNodes byte array: bit n of
/// byte n/8 for cpu n.
pub fn list_to_bits(field: &str, list: &str) -> Result<Vec<u8>> {
    let bad = || Error::spec(field, format!("{list:?} is not a cpu/node list"));
    let mut bits: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let a: usize = a.parse().map_err(|_| bad())?;
        let b: usize = b.parse().map_err(|_| bad())?;
        if a > b || b >= 1 << 16 {
            return Err(bad());
        }
        if bits.len() <= b / 8 {
            bits.resize(b / 8 + 1, 0);
        }
        for n in a..=b {
            bits[n / 8] |= 1 << (n % 8);
        }
    }
    if bits.is_empty() {
        return Err(bad());
    }
    Ok(bits)
}

/// The resource properties of `res` (only what it sets: an update changes nothing else).
pub fn resources(res: &LinuxResources) -> Result<Props> {
    let mut p = Props::new();
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit() {
            p.push(("MemoryMax", Prop::U64(limit(l))));
        }
        if let Some(r) = m.reservation() {
            p.push(("MemoryLow", Prop::U64(limit(r))));
        }
        if let Some(s) = m.swap() {
            if let Some(v) = v2::swap_max(s, m.limit())? {
                let v = if v == "max" {
                    INFINITY
                } else {
                    v.parse().unwrap_or(INFINITY)
                };
                p.push(("MemorySwapMax", Prop::U64(v)));
            }
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares().filter(|s| *s > 0) {
            p.push(("CPUWeight", Prop::U64(shares_to_weight(s))));
        }
        if let Some(period) = c.period().filter(|p| *p > 0) {
            p.push(("CPUQuotaPeriodUSec", Prop::U64(period)));
        }
        if c.quota().is_some() || c.period().is_some() {
            p.push((
                "CPUQuotaPerSecUSec",
                Prop::U64(quota_per_sec(c.quota(), c.period())),
            ));
        }
        if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            let bits = list_to_bits("linux.resources.cpu.cpus", v)?;
            p.push(("AllowedCPUs", Prop::Bytes(bits)));
        }
        if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            let bits = list_to_bits("linux.resources.cpu.mems", v)?;
            p.push(("AllowedMemoryNodes", Prop::Bytes(bits)));
        }
    }
    if let Some(pids) = res.pids() {
        let v = if pids.limit() > 0 {
            pids.limit() as u64
        } else {
            INFINITY
        };
        p.push(("TasksMax", Prop::U64(v)));
    }
    if let Some(w) = res.block_io().as_ref().and_then(|b| b.weight()) {
        p.push(("IOWeight", Prop::U64(blkio_to_io_weight(w))));
    }
    Ok(p)
}

/// Device rules (in order, a later one overriding) as DevicePolicy + DeviceAllow: after the
/// last "all" rule, an allowing one leaves systemd's policy `auto` (no filter), a denying one
/// (or none) makes it `strict` with the allow rules after it as entries. A specific device is
/// `/dev/char/M:m`, a whole major the group /proc/devices names (`char-pts`), a wildcard
/// major `char-*`/`block-*`. No rules: no device properties at all.
pub fn devices(rules: &[Rule], proc_devices: &str) -> Props {
    if rules.is_empty() {
        return Props::new();
    }
    let is_all = |r: &Rule| r.kind == 'a' && r.major.is_none() && r.minor.is_none();
    let start = rules.iter().rposition(is_all);
    if let Some(i) = start {
        if rules[i].allow {
            return vec![
                ("DevicePolicy", Prop::Str("auto".into())),
                ("DeviceAllow", Prop::Devices(Vec::new())),
            ];
        }
    }
    let after = &rules[start.map_or(0, |i| i + 1)..];
    let mut allow: Vec<(String, String)> = Vec::new();
    for r in after {
        let Some(entry) = device_entry(r, proc_devices) else {
            continue;
        };
        allow.retain(|(d, _)| *d != entry);
        if r.allow {
            allow.push((entry, r.access.clone()));
        }
    }
    vec![
        ("DevicePolicy", Prop::Str("strict".into())),
        ("DeviceAllow", Prop::Devices(allow)),
    ]
}

fn device_entry(r: &Rule, proc_devices: &str) -> Option<String> {
    let (kind, section) = match r.kind {
        'c' => ("char", "Character devices:"),
        'b' => ("block", "Block devices:"),
        _ => return None,
    };
    match (r.major, r.minor) {
        (None, None) => Some(format!("{kind}-*")),
        (Some(major), Some(minor)) => Some(format!("/dev/{kind}/{major}:{minor}")),
        (Some(major), None) => {
            let group = group_name(proc_devices, section, major);
            if group.is_none() {
                tracing::warn!("{kind} major {major} has no group in /proc/devices: skipped for systemd's DeviceAllow");
            }
            group.map(|g| format!("{kind}-{g}"))
        }
        (None, Some(_)) => {
            tracing::warn!(
                "device rule {} cannot be said to systemd: skipped",
                r.v1_line()
            );
            None
        }
    }
}

/// The name /proc/devices gives `major` in its `section`.
fn group_name(proc_devices: &str, section: &str, major: i64) -> Option<String> {
    let mut inside = false;
    for line in proc_devices.lines() {
        let line = line.trim();
        if line.ends_with(':') {
            inside = line == section;
            continue;
        }
        if !inside {
            continue;
        }
        let mut it = line.split_whitespace();
        if it.next().and_then(|m| m.parse::<i64>().ok()) == Some(major) {
            return it.next().map(str::to_string);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_conversions() {
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(quota_per_sec(Some(10_000), Some(100_000)), 100_000);
        assert_eq!(quota_per_sec(Some(12_345), Some(100_000)), 130_000);
        assert_eq!(quota_per_sec(Some(5_000), None), 50_000);
        assert_eq!(quota_per_sec(Some(-1), Some(100_000)), INFINITY);
    }

    #[test]
    fn cpu_lists_as_bitmasks() {
        assert_eq!(list_to_bits("f", "1").unwrap(), vec![0b10]);
        assert_eq!(list_to_bits("f", "0-1").unwrap(), vec![0b11]);
        assert_eq!(list_to_bits("f", "0,9-10").unwrap(), vec![1, 0b110]);
        assert!(list_to_bits("f", "3-1").is_err());
        assert!(list_to_bits("f", "x").is_err());
    }

    #[test]
    fn resources_to_properties() {
        let res: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":16777216,"reservation":8388608,"swap":50331648},
                "cpu":{"shares":512,"quota":10000,"period":100000,"cpus":"1","mems":"0"},
                "pids":{"limit":8},"blockIO":{"weight":500}}"#,
        )
        .unwrap();
        let p = resources(&res).unwrap();
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Prop::U64(16 << 20)));
        assert_eq!(get("MemoryLow"), Some(Prop::U64(8 << 20)));
        assert_eq!(get("MemorySwapMax"), Some(Prop::U64(32 << 20)));
        assert_eq!(get("CPUWeight"), Some(Prop::U64(20)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Prop::U64(100_000)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Prop::U64(100_000)));
        assert_eq!(get("AllowedCPUs"), Some(Prop::Bytes(vec![2])));
        assert_eq!(get("AllowedMemoryNodes"), Some(Prop::Bytes(vec![1])));
        assert_eq!(get("TasksMax"), Some(Prop::U64(8)));
        assert_eq!(get("IOWeight"), Some(Prop::U64(4950)));
        let unlimited: LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":-1},"pids":{"limit":-1}}"#).unwrap();
        let p = resources(&unlimited).unwrap();
        assert!(p.contains(&("MemoryMax", Prop::U64(INFINITY))));
        assert!(p.contains(&("TasksMax", Prop::U64(INFINITY))));
    }

    #[test]
    fn device_rules_as_allow_list() {
        let r = |allow, kind, major, minor, access: &str| Rule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        };
        let proc = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n";
        let rules = vec![
            r(false, 'a', None, None, "rwm"),
            r(true, 'c', Some(1), Some(3), "rwm"),
            r(true, 'b', None, None, "m"),
            r(true, 'c', Some(136), None, "rwm"),
            r(true, 'c', Some(1), Some(5), "rwm"),
            r(false, 'c', Some(1), Some(5), "rwm"),
        ];
        assert_eq!(
            devices(&rules, proc),
            vec![
                ("DevicePolicy", Prop::Str("strict".into())),
                (
                    "DeviceAllow",
                    Prop::Devices(vec![
                        ("/dev/char/1:3".into(), "rwm".into()),
                        ("block-*".into(), "m".into()),
                        ("char-pts".into(), "rwm".into()),
                    ])
                ),
            ]
        );
        let open = vec![r(true, 'a', None, None, "rwm")];
        assert_eq!(devices(&open, proc)[0].1, Prop::Str("auto".into()));
        assert!(devices(&[], proc).is_empty());
    }
}
