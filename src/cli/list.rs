#[cfg(unix)]
use std::os::unix::fs::MetadataExt;
#[cfg(unix)]
use std::path::Path;

#[cfg(target_os = "linux")]
use ward::container::state::{list_ids, ContainerDir};
#[cfg(unix)]
use ward::sys::stateroot::Report;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// table or json.
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Only print the ids.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The owner's name of a container's state directory (runc's `owner`).
#[cfg(unix)]
pub fn owner_of(path: &Path) -> String {
    let Ok(meta) = std::fs::metadata(path) else {
        return String::new();
    };
    ward::sys::passwd::by_uid(meta.uid()).map_or_else(|| format!("#{}", meta.uid()), |e| e.name)
}

#[cfg(target_os = "linux")]
pub fn run(root: &Path, a: &Args) -> ward::Result<i32> {
    let ids = list_ids(root)?;
    // Each container costs a few file opens the kernel walks paths for (state.json,
    // /proc/<pid>/stat, the freezer state): with many containers they are spread over the CPUs,
    // in id order.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let chunk = ids.len().div_ceil(workers).max(128);
    let found: Vec<(Report, Option<u32>)> = if ids.len() <= chunk {
        ids.iter().filter_map(|id| examine(root, id)).collect()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = ids
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .filter_map(|id| examine(root, id))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };
    // One passwd lookup per owner, not per container.
    let mut owners: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
    let mut reports = Vec::with_capacity(found.len());
    for (mut r, uid) in found {
        if let Some(uid) = uid {
            r.owner = owners
                .entry(uid)
                .or_insert_with(|| owner_of(&root.join(&r.id)))
                .clone();
        }
        reports.push(r);
    }
    print(&reports, a)
}

/// One container's report and the uid owning its state directory; None when it went away
/// while we listed (a container deleted meanwhile is simply not listed).
#[cfg(target_os = "linux")]
fn examine(root: &Path, id: &str) -> Option<(Report, Option<u32>)> {
    let dir = ContainerDir::listed(root, id);
    let stored = dir.load().ok()?;
    let mut r = match stored.tier {
        ward::container::tier::Tier::Gvisor => ward::container::tier::report(root, &dir, &stored),
        ward::container::tier::Tier::Native => dir.report(&stored),
    };
    r.owner = String::new();
    let uid = std::fs::metadata(&dir.path).ok().map(|m| m.uid());
    Some((r, uid))
}

/// Print the reports as runc does: ids only, JSON (`null` for none) or a table.
#[cfg(unix)]
pub fn print(reports: &[Report], a: &Args) -> ward::Result<i32> {
    if a.quiet {
        for r in reports {
            println!("{}", r.id);
        }
    } else if a.format == "json" {
        let text = if reports.is_empty() {
            "null".to_string()
        } else {
            serde_json::to_string(reports).map_err(|e| ward::Error::Init(e.to_string()))?
        };
        println!("{text}");
    } else {
        let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
            .map(String::from)
            .to_vec()];
        for r in reports {
            rows.push(vec![
                r.id.clone(),
                r.pid.to_string(),
                r.status.to_string(),
                r.bundle.display().to_string(),
                r.created.clone(),
                r.owner.clone(),
            ]);
        }
        print!("{}", table(&rows));
    }
    Ok(0)
}

/// Columns as Go's tabwriter (minwidth 12, padding 3) lays out runc's list.
#[cfg(unix)]
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, |r| r.len());
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(all(test, unix))]
mod tests {
    #[test]
    fn table_pads_like_tabwriter() {
        let rows = vec![
            vec!["ID".to_string(), "PID".to_string()],
            vec!["a-very-long-container-id".to_string(), "1".to_string()],
        ];
        let t = super::table(&rows);
        assert_eq!(t.lines().next().unwrap(), format!("{:<27}PID", "ID"));
    }
}
