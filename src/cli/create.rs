use super::CreateFlags;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub flags: CreateFlags,
}

#[cfg(target_os = "linux")]
pub fn run(root: &std::path::Path, a: &Args, global: &super::Cli) -> ward::Result<i32> {
    // init outlives us: it is reparented to our caller (containerd's shim is a subreaper).
    ward::container::create::create(&a.flags.opts(root, false, global)?)?;
    Ok(0)
}
