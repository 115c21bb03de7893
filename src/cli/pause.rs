#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn pause(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    ward::container::pause::set_paused(root, &a.id, true)?;
    Ok(0)
}

pub fn resume(root: &std::path::Path, a: &Args) -> ward::Result<i32> {
    ward::container::pause::set_paused(root, &a.id, false)?;
    Ok(0)
}
