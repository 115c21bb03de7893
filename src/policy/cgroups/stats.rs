//! `ward events --stats`: the cgroup's counters in runc's `types.Stats` JSON shape, which
//! `runc events` consumers (and ward's tests) read.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn num(p: &Path) -> u64 {
    read(p)
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// "max" or a number, as a u64 ("max" = u64::MAX, as runc reports an unlimited v2 value).
fn num_or_max(p: &Path) -> u64 {
    match read(p).as_deref().map(str::trim) {
        Some("max") => u64::MAX,
        Some(s) => s.parse().unwrap_or(0),
        None => 0,
    }
}

/// `key value` lines (memory.stat, cpu.stat, ...).
fn kv(p: &Path) -> BTreeMap<String, u64> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

fn v1_dir(at: super::Place, controller: &str) -> std::path::PathBuf {
    super::v1::dirs(at)
        .into_iter()
        .find(|(h, _)| h.options.split(',').any(|o| o == controller))
        .map(|(_, d)| d)
        .unwrap_or_default()
}

/// Go's `omitempty`, which runc's JSON has on these fields: zero numbers and empty lists
/// are left out.
fn omit_empty(v: &mut Value, at: &[&str], keys: &[&str]) {
    let mut cur = v;
    for k in at {
        match cur.get_mut(*k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.retain(|k, val| {
            !keys.contains(&k.as_str())
                || !(val == &json!(0) || val.as_array().is_some_and(|a| a.is_empty()))
        });
    }
}

/// Applies runc's omitempty fields to a stats document.
fn runc_shape(mut v: Value) -> Value {
    omit_empty(
        &mut v,
        &["cpu", "usage"],
        &["total", "percpu", "percpu_kernel", "percpu_user"],
    );
    omit_empty(
        &mut v,
        &["cpu", "throttling"],
        &["periods", "throttled_periods", "throttled_time"],
    );
    omit_empty(&mut v, &["memory"], &["cache"]);
    for part in ["usage", "swap", "kernel", "kernelTCP"] {
        omit_empty(&mut v, &["memory", part], &["usage", "max"]);
    }
    omit_empty(&mut v, &["pids"], &["current", "limit"]);
    v["intel_rdt"] = json!({});
    v["network_interfaces"] = Value::Null;
    v
}

/// A cpu/mem list ("0-2,4") as runc's int list.
fn list(p: &Path) -> Vec<u64> {
    let text = read(p).unwrap_or_default();
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|s| !s.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u64>().ok()),
        }
    }
    out
}

pub fn v1(at: super::Place) -> Value {
    let acct = v1_dir(at, "cpuacct");
    let cpu = v1_dir(at, "cpu");
    let mem = v1_dir(at, "memory");
    let pids = v1_dir(at, "pids");
    let percpu: Vec<u64> = read(&acct.join("cpuacct.usage_percpu"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // cpuacct.usage_all: `cpu user system` per line, nanoseconds (runc's percpu_user/kernel).
    let modes: Vec<(u64, u64)> = read(&acct.join("cpuacct.usage_all"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[1], f[2]))
        })
        .collect();
    let percpu_user: Vec<u64> = modes.iter().map(|m| m.0).collect();
    let percpu_kernel: Vec<u64> = modes.iter().map(|m| m.1).collect();
    // cpuacct.stat is in USER_HZ ticks (100/s); runc reports nanoseconds.
    let ticks = kv(&acct.join("cpuacct.stat"));
    let ns = |k: &str| ticks.get(k).copied().unwrap_or(0) * 10_000_000;
    let throttle = kv(&cpu.join("cpu.stat"));
    let entry = |prefix: &str| {
        json!({
            "usage": num(&mem.join(format!("{prefix}.usage_in_bytes"))),
            "max": num(&mem.join(format!("{prefix}.max_usage_in_bytes"))),
            "limit": num(&mem.join(format!("{prefix}.limit_in_bytes"))),
            "failcnt": num(&mem.join(format!("{prefix}.failcnt"))),
        })
    };
    let cpuset = v1_dir(at, "cpuset");
    let cs = |f: &str| num(&cpuset.join(format!("cpuset.{f}")));
    runc_shape(json!({
        "cpuset": {
            "cpus": list(&cpuset.join("cpuset.cpus")),
            "mems": list(&cpuset.join("cpuset.mems")),
            "cpu_exclusive": cs("cpu_exclusive"),
            "mem_exclusive": cs("mem_exclusive"),
            "mem_hardwall": cs("mem_hardwall"),
            "memory_migrate": cs("memory_migrate"),
            "memory_pressure": cs("memory_pressure"),
            "memory_spread_page": cs("memory_spread_page"),
            "memory_spread_slab": cs("memory_spread_slab"),
            "sched_load_balance": cs("sched_load_balance"),
            "sched_relax_domain_level": cs("sched_relax_domain_level"),
        },
        "cpu": {
            "usage": {
                "total": num(&acct.join("cpuacct.usage")),
                "percpu": percpu,
                "percpu_kernel": percpu_kernel,
                "percpu_user": percpu_user,
                "kernel": ns("system"),
                "user": ns("user"),
            },
            "throttling": {
                "periods": throttle.get("nr_periods").copied().unwrap_or(0),
                "throttled_periods": throttle.get("nr_throttled").copied().unwrap_or(0),
                "throttled_time": throttle.get("throttled_time").copied().unwrap_or(0),
            }
        },
        "memory": {
            "cache": kv(&mem.join("memory.stat")).get("cache").copied().unwrap_or(0),
            "usage": entry("memory"),
            "swap": entry("memory.memsw"),
            "kernel": entry("memory.kmem"),
            "kernelTCP": entry("memory.kmem.tcp"),
            "raw": kv(&mem.join("memory.stat")),
        },
        "pids": {
            "current": num(&pids.join("pids.current")),
            "limit": num_or_max(&pids.join("pids.max")),
        },
        "blkio": {},
        "hugetlb": {},
    }))
}

pub fn v2(dir: &Path) -> Value {
    let cpu = kv(&dir.join("cpu.stat"));
    let c = |k: &str| cpu.get(k).copied().unwrap_or(0);
    let mem = kv(&dir.join("memory.stat"));
    let events = kv(&dir.join("memory.events"));
    runc_shape(json!({
        "cpuset": {
            "cpus": list(&dir.join("cpuset.cpus.effective")),
            "mems": list(&dir.join("cpuset.mems.effective")),
        },
        "cpu": {
            "usage": {
                "total": c("usage_usec") * 1000,
                "kernel": c("system_usec") * 1000,
                "user": c("user_usec") * 1000,
            },
            "throttling": {
                "periods": c("nr_periods"),
                "throttled_periods": c("nr_throttled"),
                "throttled_time": c("throttled_usec") * 1000,
            }
        },
        "memory": {
            "cache": mem.get("file").copied().unwrap_or(0),
            "usage": {
                "usage": num(&dir.join("memory.current")),
                "max": num(&dir.join("memory.peak")),
                "limit": num_or_max(&dir.join("memory.max")),
                "failcnt": events.get("max").copied().unwrap_or(0),
            },
            "swap": {
                "usage": num(&dir.join("memory.swap.current")),
                "limit": num_or_max(&dir.join("memory.swap.max")),
            },
            "raw": mem,
        },
        "pids": {
            "current": num(&dir.join("pids.current")),
            "limit": num_or_max(&dir.join("pids.max")),
        },
        "blkio": {},
        "hugetlb": {},
    }))
}
