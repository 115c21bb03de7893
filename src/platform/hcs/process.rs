//! HcsCreateProcess's ProcessParameters: the container's first process.

use oci_spec::runtime::Spec;
use serde_json::{json, Map, Value};

use crate::platform::{PlatformError, Result};

/// HcsCreateProcess's ProcessParameters for `process`.
pub(super) fn parameters(spec: &Spec) -> Result<Value> {
    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| PlatformError::spec("process", "missing"))?;
    let command_line = match p.command_line().as_ref().filter(|c| !c.is_empty()) {
        Some(c) => c.clone(),
        None => p
            .args()
            .iter()
            .flatten()
            .map(|a| escape_arg(a))
            .collect::<Vec<_>>()
            .join(" "),
    };
    if command_line.is_empty() {
        return Err(PlatformError::spec("process.args", "must name a program"));
    }
    let env: Map<String, Value> = p
        .env()
        .iter()
        .flatten()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), json!(v))))
        .collect();
    let terminal = p.terminal() == Some(true);
    let mut doc = json!({
        "CommandLine": command_line,
        "WorkingDirectory": p.cwd().to_string_lossy(),
        "Environment": env,
        "EmulateConsole": terminal,
        "CreateStdInPipe": true,
        "CreateStdOutPipe": true,
        "CreateStdErrPipe": !terminal,
    });
    if let Some(user) = p.user().username().as_ref().filter(|u| !u.is_empty()) {
        doc["User"] = json!(user);
    }
    if let Some(size) = p.console_size() {
        doc["ConsoleSize"] = json!([size.height(), size.width()]);
    }
    Ok(doc)
}

/// One argument of a Windows command line (CommandLineToArgvW's rules, as Go's EscapeArg).
pub(super) fn escape_arg(a: &str) -> String {
    if !a.is_empty() && !a.contains([' ', '\t', '"']) {
        return a.to_string();
    }
    let mut out = String::from("\"");
    let mut slashes = 0;
    for c in a.chars() {
        match c {
            '\\' => slashes += 1,
            '"' => {
                out.extend(std::iter::repeat_n('\\', slashes * 2 + 1));
                slashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', slashes));
                slashes = 0;
            }
        }
        if c != '\\' {
            out.push(c);
        }
    }
    out.extend(std::iter::repeat_n('\\', slashes * 2));
    out.push('"');
    out
}
