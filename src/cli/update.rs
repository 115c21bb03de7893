#[cfg(target_os = "linux")]
#[cfg(target_os = "linux")]
use std::io::Read;
use std::path::PathBuf;

#[cfg(target_os = "linux")]
use serde_json::{json, Map, Value};
#[cfg(target_os = "linux")]
use ward::container::update::parse_size;

/// Negative numbers are values (`--memory -1`, `--cpu-quota -1`: unlimited), as runc takes them.
#[derive(clap::Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct Args {
    /// A LinuxResources JSON file, or - for stdin (what containerd sends).
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

#[cfg(target_os = "linux")]
fn set(obj: &mut Value, section: &str, key: &str, v: Value) {
    if !obj[section].is_object() {
        obj[section] = Value::Object(Map::new());
    }
    obj[section][key] = v;
}

#[cfg(target_os = "linux")]
pub fn run(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        return Err(ward::Error::Unsupported(
            "Intel RDT (--l3-cache-schema, --mem-bw-schema)".into(),
        ));
    }
    let mut res: Value = match &a.resources {
        Some(p) => {
            let mut text = String::new();
            if p.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| ward::Error::io("read", "stdin", e))?;
            } else {
                text = std::fs::read_to_string(p).map_err(|e| ward::Error::io("read", p, e))?;
            }
            ward::spec::parse_json(&text, "resources")?
        }
        None => json!({}),
    };
    if let Some(w) = a.blkio_weight {
        set(&mut res, "blockIO", "weight", json!(w));
    }
    let cpu = [
        ("period", a.cpu_period.map(|v| json!(v))),
        ("quota", a.cpu_quota.map(|v| json!(v))),
        ("burst", a.cpu_burst.map(|v| json!(v))),
        ("shares", a.cpu_share.map(|v| json!(v))),
        ("realtimePeriod", a.cpu_rt_period.map(|v| json!(v))),
        ("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v))),
        ("idle", a.cpu_idle.map(|v| json!(v))),
        ("cpus", a.cpuset_cpus.clone().map(Value::from)),
        ("mems", a.cpuset_mems.clone().map(Value::from)),
    ];
    for (k, v) in cpu {
        if let Some(v) = v {
            set(&mut res, "cpu", k, v);
        }
    }
    for (k, v) in [
        ("limit", &a.memory),
        ("reservation", &a.memory_reservation),
        ("swap", &a.memory_swap),
    ] {
        if let Some(v) = v {
            set(&mut res, "memory", k, json!(parse_size(v)?));
        }
    }
    if let Some(p) = a.pids_limit {
        set(&mut res, "pids", "limit", json!(p));
    }
    let res: oci_spec::runtime::LinuxResources = ward::spec::from_value(&res, "resources")?;
    ward::container::update::update(root, &a.id, &res)?;
    Ok(0)
}
