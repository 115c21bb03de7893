#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

#[cfg(target_os = "linux")]
pub fn run(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    ward::container::start::start(root, &a.id)?;
    Ok(0)
}
