#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_: &Args) -> ward::Result<i32> {
    let text = serde_json::to_string_pretty(&ward::features::document())
        .map_err(|e| ward::Error::Init(e.to_string()))?;
    println!("{text}");
    Ok(0)
}
