#[cfg(target_os = "linux")]
#[cfg(target_os = "linux")]
use ward::container::state::ContainerDir;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

#[cfg(target_os = "linux")]
pub fn run(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    let dir = ContainerDir::open(root, &a.id)?;
    let stored = dir.load()?;
    let mut report = match stored.tier {
        ward::container::tier::Tier::Gvisor => ward::container::tier::report(root, &dir, &stored),
        ward::container::tier::Tier::Native => dir.report(&stored),
    };
    report.owner = super::list::owner_of(&dir.path);
    let text =
        serde_json::to_string_pretty(&report).map_err(|e| ward::Error::Init(e.to_string()))?;
    println!("{text}");
    Ok(0)
}
