//! Help and version in runc's shapes: `NAME:` / `USAGE:` / `COMMANDS:` / `GLOBAL OPTIONS:`
//! sections (clap parses, a template lays the text out as urfave/cli does), `ward help [topic]`
//! with runc's `No help topic for 'x'` (exit 3), and `ward version` beside `--version`.

use std::ffi::OsString;

use clap::{Args, CommandFactory, FromArgMatches};

use super::{Cli, Globals};

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
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(cli) = parse_hot(&args) {
        return cli;
    }
    let matches = command().get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The subcommands engines call once or more per container, most of them before and after
/// every container's life (see `parse_hot`).
const HOT: [&str; 11] = [
    "create", "start", "state", "kill", "delete", "exec", "run", "pause", "resume", "update", "ps",
];

/// One hot subcommand built alone, from the same `Args` the full tree uses.
fn hot_subcommand(name: &'static str) -> Option<clap::Command> {
    use super::{create, delete, exec, kill, pause, ps, run, start, state, update};
    let c = clap::Command::new(name);
    Some(match name {
        "create" => create::Args::augment_args(c),
        "start" => start::Args::augment_args(c),
        "state" => state::Args::augment_args(c),
        "kill" => kill::Args::augment_args(c),
        "delete" => delete::Args::augment_args(c),
        "exec" => exec::Args::augment_args(c),
        "run" => run::Args::augment_args(c),
        "pause" | "resume" => pause::Args::augment_args(c),
        "update" => update::Args::augment_args(c),
        "ps" => ps::Args::augment_args(c),
        _ => return None,
    })
}

/// The usual command line without building the whole command tree: clap builds the ~20
/// subcommands and every flag of each on every start (a quarter of `ward state`'s instructions),
/// while a line names one. The first argument that names a hot subcommand picks it; the root
/// gets the global flags and that subcommand alone, and clap parses as always. Only a success
/// counts: any error (a typo, `--help`, that word being the value of a global flag and the real
/// subcommand another) falls back to the full tree, which prints exactly what it always did.
/// A success is the full tree's result too: the full tree has this subcommand with the same
/// flags, and the pruned one only lacks others, which a successful parse did not meet.
fn parse_hot(args: &[OsString]) -> Option<Cli> {
    let name = args.iter().skip(1).find_map(|a| {
        let a = a.to_str()?;
        HOT.iter().find(|h| **h == a).copied()
    })?;
    let root = Globals::augment_args(
        clap::Command::new("ward")
            .disable_version_flag(true)
            .disable_help_subcommand(true),
    )
    .subcommand(hot_subcommand(name)?);
    let matches = root.try_get_matches_from(args).ok()?;
    Cli::from_arg_matches(&matches).ok()
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

    fn argv(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    fn full(line: &str) -> Result<Cli, clap::Error> {
        let m = command().try_get_matches_from(argv(line))?;
        Cli::from_arg_matches(&m)
    }

    #[test]
    fn every_hot_name_is_the_full_trees_subcommand_with_the_same_flags() {
        let mut tree = command();
        tree.build();
        for name in HOT {
            let mut alone = hot_subcommand(name).unwrap();
            alone.build();
            let ids = |c: &clap::Command| {
                let mut v: Vec<String> =
                    c.get_arguments().map(|a| a.get_id().to_string()).collect();
                v.sort();
                v
            };
            let sub = tree
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("{name} not in the tree"));
            assert_eq!(ids(&alone), ids(sub), "{name}");
        }
        assert!(hot_subcommand("list").is_none());
    }

    #[test]
    fn hot_lines_parse_as_the_full_tree_parses_them() {
        for line in [
            "ward state c1",
            "ward --root /r --log-format json --debug create --bundle /b --pid-file /p c1",
            "ward --root create create --bundle create create",
            "ward --log /l exec -d --env A=1 -t c1 sh -c true",
            "ward exec c1 ls -la --help",
            "ward kill c1 KILL",
            "ward --root /r kill --all c1 9",
            "ward delete -f c1",
            "ward run -d --bundle . c1",
            "ward update --memory 1M c1",
            "ward ps --format json c1 -- -ef",
            "ward -v state c1",
            "ward resume c1",
        ] {
            let fast = parse_hot(&argv(line)).unwrap_or_else(|| panic!("no fast parse of {line}"));
            let slow = full(line).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{line}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_full_tree() {
        for line in [
            "ward list",
            "ward ls",
            "ward --version",
            "ward state",
            "ward state --help",
            "ward create -h",
            "ward --root state start c1",
            "ward --bogus state c1",
            "ward state c1 extra",
            "ward help state",
            "ward features",
        ] {
            assert!(parse_hot(&argv(line)).is_none(), "{line}");
        }
        // And the full tree still answers these as before.
        assert_eq!(
            full("ward --root state start c1").unwrap().root_flag,
            Some("state".into())
        );
        assert!(full("ward state c1 extra").is_err());
    }

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
