#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_: &Args) -> ward::Result<i32> {
    #[cfg(target_os = "linux")]
    let doc = ward::container::features::document();
    #[cfg(not(target_os = "linux"))]
    let doc = ward::platform::features(super::host::OS);
    let text = serde_json::to_string_pretty(&doc).map_err(|e| ward::Error::Init(e.to_string()))?;
    println!("{text}");
    Ok(0)
}
