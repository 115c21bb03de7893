//! Shell completions (`ward completion bash|zsh|fish`) and man pages (`ward man DIR`), both
//! generated from the clap definitions, so they never drift from the real command line.
//! `make install` writes them where bash-completion, zsh, fish and man look.

use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Directory to write ward.8 and one ward-<command>.8 per command into.
    pub dir: PathBuf,
}

/// Prints the completion script for `shell` to stdout.
pub fn completion(a: &CompletionArgs) -> ward::Result<i32> {
    use std::io::Write;
    let mut cmd = super::help::command();
    // Into memory first: clap_complete panics on a failed write (e.g. `| head`).
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "ward", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(ward::Error::io("write", "stdout", e))
        }
        _ => Ok(0),
    }
}

/// Writes ward.8 and a page per visible subcommand (section 8, as runc's pages).
pub fn man(a: &ManArgs) -> ward::Result<i32> {
    std::fs::create_dir_all(&a.dir).map_err(|e| ward::Error::io("create", &a.dir, e))?;
    let mut cmd = super::help::command().name("ward");
    cmd.build();
    write_page(&a.dir.join("ward.8"), cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("ward-{}", sub.get_name());
        // build() named it `ward-<command>` (its display name), the page's title.
        write_page(&a.dir.join(format!("{name}.8")), sub.clone())?;
    }
    Ok(0)
}

fn write_page(path: &Path, cmd: clap::Command) -> ward::Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .render(&mut out)
        .map_err(|e| ward::Error::io("render man page", path, e))?;
    std::fs::write(path, out).map_err(|e| ward::Error::io("write", path, e))
}
