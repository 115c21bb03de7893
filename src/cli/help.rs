//! Help and version in runc's shapes: `NAME:` / `USAGE:` / `COMMANDS:` / `GLOBAL OPTIONS:`
//! sections (clap parses, a template lays the text out as urfave/cli does), `ward help [topic]`
//! with runc's `No help topic for 'x'` (exit 3), and `ward version` beside `--version`.

use clap::{CommandFactory, FromArgMatches};

use super::Cli;

const ROOT_TEMPLATE: &str = "\
NAME:
   {name} - {about}

USAGE:
   {name} [global options] command [command options] [arguments...]

VERSION:
   {version}
COMMANDS:
{subcommands}

GLOBAL OPTIONS:
{options}
";

const SUB_TEMPLATE: &str = "\
NAME:
   ward NAME - {about}

USAGE:
   {usage}

{all-args}
";

/// runc's exit status for an unknown help topic (urfave/cli's).
const NO_TOPIC_EXIT: i32 = 3;

/// The clap command with runc's help layout on the root and every subcommand.
pub fn command() -> clap::Command {
    let text = super::version_text();
    // clap keeps &'static str without its `string` feature; built once per process.
    let version: &'static str = Box::leak(
        text.strip_prefix("ward version ")
            .unwrap_or(&text)
            .to_string()
            .into_boxed_str(),
    );
    Cli::command()
        .version(version)
        .help_template(ROOT_TEMPLATE)
        .mut_subcommands(|s| {
            let template = SUB_TEMPLATE.replace("NAME -", &format!("{} -", s.get_name()));
            s.help_template(template)
        })
}

/// Parses argv (exits with clap's message and status on a usage error, as before).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `ward help [topic]`: the root help, or the subcommand's; an unknown topic is an error.
pub fn help(topic: Option<&str>) -> i32 {
    let mut cmd = command();
    let Some(topic) = topic else {
        let _ = cmd.print_help();
        return 0;
    };
    cmd.build();
    match cmd.find_subcommand_mut(topic) {
        Some(sub) if !sub.is_hide_set() => {
            let _ = sub.print_help();
            0
        }
        _ => {
            eprintln!("No help topic for '{topic}'");
            NO_TOPIC_EXIT
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct HelpArgs {
    /// The command to show help for.
    pub topic: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_help_has_runcs_sections() {
        let text = command().render_help().to_string();
        for section in [
            "NAME:\n   ward - ",
            "USAGE:\n   ward [global options] command",
            "COMMANDS:",
            "GLOBAL OPTIONS:",
        ] {
            assert!(text.contains(section), "{section:?} in {text}");
        }
    }
}
