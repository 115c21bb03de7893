#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill a running container, then delete it.
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

#[cfg(target_os = "linux")]
pub fn run(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    match ward::container::delete::delete(root, &a.id, a.force) {
        // runc: deleting a container that is already gone with --force is not an error.
        Err(ward::Error::NotExist(_)) if a.force => Ok(0),
        r => r.map(|()| 0),
    }
}
