#[cfg(target_os = "linux")]
#[cfg(target_os = "linux")]
use std::time::Duration;

#[cfg(target_os = "linux")]
use serde_json::json;
#[cfg(target_os = "linux")]
use ward::container::state::{ContainerDir, Status};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Interval between stats reports (Go duration: 5s, 500ms, 1m).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Print the stats once and exit.
    #[arg(long)]
    pub stats: bool,
    pub id: String,
}

#[cfg(target_os = "linux")]
fn parse_duration(s: &str) -> ward::Result<Duration> {
    let bad = || {
        ward::Error::spec(
            "--interval",
            format!("{s:?} is not a duration like 5s or 500ms"),
        )
    };
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// OOM kills so far in the container's cgroup (v2 memory.events, v1 memory.oom_control).
#[cfg(target_os = "linux")]
fn oom_kills(cg: &ward::policy::cgroups::Cgroup) -> u64 {
    let files: Vec<std::path::PathBuf> = match cg.v2_dir() {
        Some(d) if cg.mode == ward::policy::cgroups::Mode::Unified => vec![d.join("memory.events")],
        _ => ward::policy::cgroups::v1::dirs(cg.place())
            .into_iter()
            .filter(|(h, _)| h.options.split(',').any(|o| o == "memory"))
            .map(|(_, d)| d.join("memory.oom_control"))
            .collect(),
    };
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
        .find_map(|l| {
            l.strip_prefix("oom_kill ")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
pub fn run(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    let interval = parse_duration(&a.interval)?;
    let dir = ContainerDir::open(root, &a.id)?;
    let stored = dir.load()?;
    if dir.status(&stored) == Status::Stopped {
        return Err(ward::Error::BadState("container not running".into()));
    }
    let cg = stored
        .cgroup
        .clone()
        .ok_or_else(|| ward::Error::BadState(format!("container {} has no cgroup", a.id)))?;
    let emit = |kind: &str, data: serde_json::Value| {
        let mut ev = json!({"type": kind, "id": a.id});
        if !data.is_null() {
            ev["data"] = data;
        }
        println!("{ev}");
    };
    if a.stats {
        emit("stats", cg.stats());
        return Ok(0);
    }
    let mut ooms = oom_kills(&cg);
    // ward's helpers that died while the container runs, each reported once as an error event.
    let mut dead_helpers = std::collections::BTreeSet::new();
    // Violation records the supervisor writes, streamed as they come (already JSON events).
    let log = dir.path.join(ward::policy::supervisor::LOG);
    let mut seen = 0usize;
    loop {
        if let Ok(text) = std::fs::read_to_string(&log) {
            for line in text.get(seen..).unwrap_or_default().lines() {
                println!("{line}");
            }
            seen = text.len();
        }
        let mut check_oom = || {
            let now = oom_kills(&cg);
            if now > ooms {
                emit("oom", serde_json::Value::Null);
                ooms = now;
            }
            if !ward::container::state::init_alive(&stored) {
                return;
            }
            for (name, state) in ward::container::state::helpers(&stored).unwrap_or_default() {
                if state == "exited" && dead_helpers.insert(name) {
                    emit(
                        "error",
                        json!({"helper": name, "message": format!(
                            "ward's {name} has exited: the container's walls fail closed until it is deleted"
                        )}),
                    );
                }
            }
        };
        check_oom();
        emit("stats", cg.stats());
        // OOM kills are reported as they happen (runc's come from an eventfd), not only once
        // per interval: the counter is read every 100ms while waiting.
        let until = std::time::Instant::now() + interval;
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(left.min(Duration::from_millis(100)));
            check_oom();
        }
        match ContainerDir::open(root, &a.id).and_then(|d| d.load().map(|s| d.status(&s))) {
            Ok(Status::Stopped) | Err(_) => {
                // The kill that ended the container may have come after the last look.
                check_oom();
                return Ok(0);
            }
            Ok(_) => {}
        }
    }
}
