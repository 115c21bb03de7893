#[cfg(target_os = "linux")]
#[cfg(target_os = "linux")]
use std::process::Command;

#[cfg(target_os = "linux")]
use ward::container::state::ContainerDir;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// table or json.
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    pub id: String,
    /// Options for ps(1) (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[cfg(target_os = "linux")]
pub fn run(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    let dir = ContainerDir::open(root, &a.id)?;
    let stored = dir.load()?;
    let pids = ward::container::kill::container_pids(&stored);
    if a.format == "json" {
        if !a.ps_args.is_empty() {
            return Err(ward::Error::spec(
                "ps",
                "ps options cannot be combined with --format json",
            ));
        }
        println!(
            "{}",
            serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into())
        );
        return Ok(0);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| ward::Error::io("run", "ps", e))?;
    if !out.status.success() {
        return Err(ward::Error::Init(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| ward::Error::Init("ps output has no PID column".into()))?;
    println!("{header}");
    for line in lines {
        if let Some(pid) = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&pid) {
                println!("{line}");
            }
        }
    }
    Ok(0)
}
