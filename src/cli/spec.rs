use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Bundle directory to write config.json into.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// A config for running without root (user namespace, no network namespace).
    #[arg(long)]
    pub rootless: bool,
}

#[cfg(unix)]
pub fn run(a: &Args) -> ward::Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(ward::Error::Init(format!(
            "File {} exists. Remove it first",
            path.display()
        )));
    }
    let cfg = ward::spec::template::config(
        a.rootless,
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let text = serde_json::to_string_pretty(&cfg).map_err(|e| ward::Error::Init(e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| ward::Error::io("write", &path, e))?;
    Ok(0)
}
