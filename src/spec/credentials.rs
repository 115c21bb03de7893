//! Credentials that never enter the container (issue 17), in the spec: `credentials` in
//! `process.interception` (or the same JSON in the annotation `org.ward.interception`), in the
//! shape of @anthropic-ai/sandbox-runtime (srt) plus ward's `methods` and `paths` per binding:
//!
//! ```json
//! "credentials": {
//!   "envVars": [{"name": "ANTHROPIC_API_KEY", "mode": "mask",
//!                "injectHosts": ["api.anthropic.com"], "methods": ["POST"],
//!                "paths": ["/v1/messages"]}],
//!   "files": [{"path": "/root/.netrc", "mode": "mask", "extract": "password (\\S+)"}],
//!   "allowPlaintextInject": false,
//!   "onExtractNoMatch": "warn"
//! }
//! ```
//!
//! - `mode`: `mask` (the container gets a placeholder; ward's proxy swaps it for the secret in
//!   requests the binding allows) or `deny` (the env var is removed, the file is empty).
//! - `extract`: a regex whose group 1 spans are the secrets; the rest of the value or file
//!   stays byte-for-byte. Absent: the whole value is the secret.
//! - `injectHosts`: allowedDomains syntax; each must overlap an allowedDomains entry. Absent:
//!   every allowedDomains entry.
//! - `methods`, `paths`: as in `http` rules (upper-case tokens or `["*"]`; normal-form paths,
//!   `/a/*` below). Absent: any.
//! - `onExtractNoMatch`: `warn` (default: the whole value is masked, with a warning) or `deny`
//!   (create fails).
//!
//! The values themselves are read by `container::credentials` at create, from the config's
//! `process.env` and from files inside the container's rootfs (or a bind mount the config
//! names); nothing here reads the host.

use std::path::{Component, Path, PathBuf};

use regex::bytes::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::domains::http::{HttpMatch, PathPattern};
use crate::spec::domains::{parse_pattern, Domains, List, Pattern};

/// What happens to a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A placeholder in the container, the secret swapped in by the proxy.
    Mask,
    /// Withheld: the env var removed, the file empty.
    Deny,
}

/// `onExtractNoMatch`: an `extract` that matches nothing (or only empty spans).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoMatch {
    /// Mask the whole value, and say so.
    #[default]
    Warn,
    /// Refuse to create the container.
    Deny,
}

/// One entry of `envVars`, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inject_hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

/// One entry of `files`, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct File {
    pub path: String,
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inject_hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

/// `process.interception.credentials`, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    #[serde(default)]
    pub env_vars: Vec<EnvVar>,
    #[serde(default)]
    pub files: Vec<File>,
    #[serde(default)]
    pub allow_plaintext_inject: bool,
    #[serde(default)]
    pub on_extract_no_match: NoMatch,
}

/// Where a credential's value is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A variable of `process.env`.
    Env(String),
    /// A file as the container sees it (absolute, no `.`/`..`).
    File(PathBuf),
}

/// One validated entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The entry's field, for errors (`process.interception.credentials.envVars[0]`).
    pub field: String,
    /// The binding's name in logs and refusals: `credentials.envVars[0] (ANTHROPIC_API_KEY)`.
    pub label: String,
    pub source: Source,
    pub mode: Mode,
    /// Group 1 of each match is a secret; `None`: the whole value.
    pub extract: Option<Regex>,
    pub hosts: Vec<Pattern>,
    pub methods: Option<Vec<String>>,
    pub paths: Option<Vec<PathPattern>>,
}

/// The validated `credentials`.
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    pub entries: Vec<Entry>,
    pub allow_plaintext_inject: bool,
    pub on_extract_no_match: NoMatch,
}

impl Compiled {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The fields common to both kinds of entry.
struct Common<'a> {
    mode: Option<Mode>,
    extract: Option<&'a str>,
    inject_hosts: Option<&'a [String]>,
    methods: Option<&'a [String]>,
    paths: Option<&'a [String]>,
}

/// Validates `credentials` (errors named under `at`, e.g.
/// `process.interception.credentials`) against the domain policy it narrows (`None`: the
/// config has no allowedDomains, which credentials need).
pub fn compile(c: &Credentials, domains: Option<&Domains>, at: &str) -> Result<Compiled> {
    let mut entries = Vec::new();
    if c.env_vars.is_empty() && c.files.is_empty() {
        return Ok(Compiled::default());
    }
    let domains = domains.filter(|d| !d.allowed.is_empty()).ok_or_else(|| {
        Error::spec(
            at,
            "needs allowedDomains in network (with them every name not allowed is denied and \
             every byte goes through ward's proxy, which swaps the placeholders)",
        )
    })?;
    let label_root = at.rsplit_once(": ").map_or_else(
        || at.trim_start_matches("process.interception.").to_string(),
        |(_, tail)| tail.to_string(),
    );
    for (i, e) in c.env_vars.iter().enumerate() {
        let field = format!("{at}.envVars[{i}]");
        check_env_name(&e.name).map_err(|why| Error::spec(format!("{field}.name"), why))?;
        if let Some(j) = c.env_vars[..i].iter().position(|o| o.name == e.name) {
            return Err(Error::spec(
                format!("{field}.name"),
                format!("{:?} is already envVars[{j}]", e.name),
            ));
        }
        let common = Common {
            mode: e.mode,
            extract: e.extract.as_deref(),
            inject_hosts: e.inject_hosts.as_deref(),
            methods: e.methods.as_deref(),
            paths: e.paths.as_deref(),
        };
        let label = format!("{label_root}.envVars[{i}] ({})", e.name);
        entries.push(entry(
            &common,
            field,
            label,
            Source::Env(e.name.clone()),
            domains,
        )?);
    }
    for (i, f) in c.files.iter().enumerate() {
        let field = format!("{at}.files[{i}]");
        let path = check_path(&f.path)
            .map_err(|why| Error::spec(format!("{field}.path"), format!("{:?}: {why}", f.path)))?;
        if let Some(j) = c.files[..i]
            .iter()
            .position(|o| check_path(&o.path).ok().as_ref() == Some(&path))
        {
            return Err(Error::spec(
                format!("{field}.path"),
                format!("{:?} is already files[{j}]", f.path),
            ));
        }
        let common = Common {
            mode: f.mode,
            extract: f.extract.as_deref(),
            inject_hosts: f.inject_hosts.as_deref(),
            methods: f.methods.as_deref(),
            paths: f.paths.as_deref(),
        };
        let label = format!("{label_root}.files[{i}] ({})", path.display());
        entries.push(entry(&common, field, label, Source::File(path), domains)?);
    }
    Ok(Compiled {
        entries,
        allow_plaintext_inject: c.allow_plaintext_inject,
        on_extract_no_match: c.on_extract_no_match,
    })
}

fn entry(
    c: &Common<'_>,
    field: String,
    label: String,
    source: Source,
    domains: &Domains,
) -> Result<Entry> {
    let mode = c.mode.ok_or_else(|| {
        Error::spec(
            format!("{field}.mode"),
            "missing: \"mask\" (a placeholder in the container) or \"deny\" (withheld)",
        )
    })?;
    if mode == Mode::Deny {
        let extra = [
            ("extract", c.extract.is_some()),
            ("injectHosts", c.inject_hosts.is_some()),
            ("methods", c.methods.is_some()),
            ("paths", c.paths.is_some()),
        ];
        if let Some((name, _)) = extra.iter().find(|(_, set)| *set) {
            return Err(Error::spec(
                format!("{field}.{name}"),
                "only with \"mode\": \"mask\" (\"deny\" withholds the whole value)",
            ));
        }
    }
    let extract = c
        .extract
        .map(|re| compile_extract(re).map_err(|why| Error::spec(format!("{field}.extract"), why)))
        .transpose()?;
    let hosts = match c.inject_hosts {
        None => domains.allowed.clone(),
        Some([]) => {
            return Err(Error::spec(
                format!("{field}.injectHosts"),
                "empty: the secret could go nowhere (use \"mode\": \"deny\" to withhold it)",
            ))
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(k, text)| {
                let f = format!("{field}.injectHosts[{k}]");
                let p = parse_pattern(text, List::Allowed)
                    .map_err(|why| Error::spec(&f, format!("{text:?}: {why}")))?;
                if !domains
                    .allowed
                    .iter()
                    .any(|a| crate::spec::domains::http::overlaps(&p, a))
                {
                    return Err(Error::spec(
                        f,
                        format!(
                            "{text:?}: no allowedDomains entry allows this host (the secret is \
                             only sent where the container may go; add the host there too)"
                        ),
                    ));
                }
                Ok(p)
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let (methods, paths) = if c.methods.is_none() && c.paths.is_none() {
        (None, None)
    } else {
        let m = HttpMatch {
            methods: c.methods.map(<[String]>::to_vec),
            paths: c.paths.map(<[String]>::to_vec),
        };
        let r = crate::spec::domains::http::rule(&m, &field)?;
        (r.methods, r.paths)
    };
    Ok(Entry {
        field,
        label,
        source,
        mode,
        extract,
        hosts,
        methods,
        paths,
    })
}

/// The longest `extract` accepted (a pattern, not a program).
const EXTRACT_MAX: usize = 4096;

/// Compiles an `extract` regex: it must have a group 1 (the secret).
pub fn compile_extract(re: &str) -> std::result::Result<Regex, String> {
    if re.len() > EXTRACT_MAX {
        return Err(format!("longer than {EXTRACT_MAX} bytes"));
    }
    let r = regex::bytes::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("{re:?} is not a regex: {}", one_line(&e.to_string())))?;
    if r.captures_len() < 2 {
        return Err(format!(
            "{re:?} has no group: group 1 is the secret, as in \"token=(\\\\S+)\""
        ));
    }
    Ok(r)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An env var name: not empty, no `=`, no NUL.
fn check_env_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("empty".into());
    }
    if name.contains('=') || name.contains('\0') {
        return Err(format!("{name:?} is not an environment variable name"));
    }
    Ok(())
}

/// A file path as the container sees it: absolute, no `.`/`..`, not `/`, no NUL.
pub fn check_path(p: &str) -> std::result::Result<PathBuf, String> {
    if p.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    let path = Path::new(p);
    if p.split('/').any(|seg| seg == "." || seg == "..") {
        return Err("has a . or .. segment".into());
    }
    if !path.is_absolute() {
        return Err("not an absolute path (a path inside the container)".into());
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return Err("has a . or .. segment".into())
            }
        }
    }
    if out == Path::new("/") {
        return Err("names the root directory, not a file".into());
    }
    Ok(out)
}

/// The secret spans of `value` under `extract` (group 1 of each match, non-empty), in order;
/// `None` when nothing matched.
pub fn spans(extract: &Regex, value: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let v: Vec<_> = extract
        .captures_iter(value)
        .filter_map(|c| c.get(1))
        .filter(|m| !m.is_empty())
        .map(|m| m.range())
        .collect();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests;
