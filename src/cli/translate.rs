//! `ward translate --to seatbelt|hcs --bundle B`: print what ward would hand to macOS's
//! sandbox-exec (an SBPL profile) or to Windows's HCS (ComputeSystem documents), on any OS.

use std::io::Write;
use std::path::{Path, PathBuf};

use ward::platform::{self, Context, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// seatbelt (macOS) or hcs (Windows).
    #[arg(long, value_name = "seatbelt|hcs")]
    pub to: String,
    /// Path to the bundle (default: current directory).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// The container id the output is written for (tags, per-container paths).
    #[arg(long, default_value = "translate")]
    pub id: String,
}

pub fn run(root: &Path, a: &Args) -> ward::Result<i32> {
    let target: Target = a.to.parse()?;
    let bundle = platform::bundle_path(&a.bundle);
    let spec = platform::load_spec(&bundle, target)?;
    let ctx = Context {
        id: a.id.clone(),
        bundle,
        state_dir: root.join(&a.id),
        loopback_ports: Vec::new(),
    };
    let text = platform::translate(target, &spec, &ctx)?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", text.trim_end()) {
        // `ward translate ... | head` is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(ward::Error::Init(format!("write stdout: {e}")))
        }
        _ => Ok(0),
    }
}
