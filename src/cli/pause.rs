#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

#[cfg(target_os = "linux")]
pub fn pause(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    ward::container::pause::set_paused(root, &a.id, true)?;
    Ok(0)
}

#[cfg(target_os = "linux")]
pub fn resume(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    ward::container::pause::set_paused(root, &a.id, false)?;
    Ok(0)
}
