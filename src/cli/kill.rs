#[derive(clap::Args, Debug)]
pub struct Args {
    /// Send the signal to every process of the container.
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[cfg(target_os = "linux")]
pub fn run(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    ward::container::kill::kill(root, &a.id, &a.signal, a.all)?;
    Ok(0)
}
