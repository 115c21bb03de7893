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
//! - `onExtractNoMatch` (per entry as in srt, or for every entry at the block's level, a ward
//!   extension): `warn` (default: the whole value is masked, with a warning; srt leaves it
//!   readable, ward does not: a credential named is never handed over), `deny` (withheld, as
//!   `mode: "deny"`) or `error` (create fails).
//! - `awsPairs: [{accessKeyIdVar, secretAccessKeyVar, sessionTokenVar?}]`: envVars entries
//!   (mask, whole value) re-signed together (SigV4); `AWS_ACCESS_KEY_ID`/
//!   `AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` pair without it. `sigv4: {streaming,
//!   presigned}`: only `"deny"` (what ward cannot re-sign is refused).
//! - srt's `decode: "jwt"`, `maskClaims` and `maskDuplicates` are refused with a reason.
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
    /// Withhold the value (as `mode: "deny"`).
    Deny,
    /// Refuse to create the container.
    Error,
}

/// One entry of `awsPairs`, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsPairConfig {
    pub access_key_id_var: String,
    pub secret_access_key_var: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token_var: Option<String>,
}

/// `sigv4`, as written: what to do with SigV4 shapes ward cannot re-sign.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sigv4Config {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streaming: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presigned: Option<String>,
}

/// An AWS pair by the names of its envVars entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsPairNames {
    pub key_id: String,
    pub secret_key: String,
    pub session_token: Option<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_extract_no_match: Option<NoMatch>,
    /// srt's JWT claim masking: refused (ward masks whole values or `extract` spans).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_claims: Option<serde_json::Value>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_extract_no_match: Option<NoMatch>,
    /// srt's JWT claim masking and directory duplicates: refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_claims: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_duplicates: Option<serde_json::Value>,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_pairs: Vec<AwsPairConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<Sigv4Config>,
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
    /// The entry's `onExtractNoMatch`, else the block's.
    pub no_match: NoMatch,
}

/// The validated `credentials`.
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    pub entries: Vec<Entry>,
    pub allow_plaintext_inject: bool,
    pub on_extract_no_match: NoMatch,
    /// `awsPairs` as written (validated: masked whole-value envVars entries).
    pub aws_pairs: Vec<AwsPairNames>,
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
    no_match: NoMatch,
    /// srt fields ward refuses, and whether each is set.
    unsupported: [(&'static str, bool); 3],
}

/// Validates `credentials` (errors named under `at`, e.g.
/// `process.interception.credentials`) against the domain policy it narrows (`None`: the
/// config has no allowedDomains, which credentials need).
pub fn compile(c: &Credentials, domains: Option<&Domains>, at: &str) -> Result<Compiled> {
    let mut entries = Vec::new();
    if c.env_vars.is_empty() && c.files.is_empty() && c.aws_pairs.is_empty() {
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
            no_match: e.on_extract_no_match.unwrap_or(c.on_extract_no_match),
            unsupported: [
                ("decode", e.decode.is_some()),
                ("maskClaims", e.mask_claims.is_some()),
                ("maskDuplicates", false),
            ],
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
            no_match: f.on_extract_no_match.unwrap_or(c.on_extract_no_match),
            unsupported: [
                ("decode", f.decode.is_some()),
                ("maskClaims", f.mask_claims.is_some()),
                ("maskDuplicates", f.mask_duplicates.is_some()),
            ],
        };
        let label = format!("{label_root}.files[{i}] ({})", path.display());
        entries.push(entry(&common, field, label, Source::File(path), domains)?);
    }
    check_sigv4(c.sigv4.as_ref(), at)?;
    let aws_pairs = aws_pairs(c, at)?;
    Ok(Compiled {
        entries,
        allow_plaintext_inject: c.allow_plaintext_inject,
        on_extract_no_match: c.on_extract_no_match,
        aws_pairs,
    })
}

/// `sigv4`: only `"deny"` (ward refuses what it cannot re-sign; srt's `"passthrough"` would
/// forward a request signed with a placeholder).
fn check_sigv4(c: Option<&Sigv4Config>, at: &str) -> Result<()> {
    let Some(c) = c else { return Ok(()) };
    for (name, v) in [("streaming", &c.streaming), ("presigned", &c.presigned)] {
        match v.as_deref() {
            None | Some("deny") => {}
            Some(other) => {
                return Err(Error::spec(
                    format!("{at}.sigv4.{name}"),
                    format!(
                        "{other:?}: ward supports \"deny\" only (what it cannot re-sign is refused)"
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// `awsPairs`: each variable an envVars entry masked whole (no `extract`), in one slot only.
fn aws_pairs(c: &Credentials, at: &str) -> Result<Vec<AwsPairNames>> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for (i, p) in c.aws_pairs.iter().enumerate() {
        let slots = [
            ("accessKeyIdVar", Some(&p.access_key_id_var)),
            ("secretAccessKeyVar", Some(&p.secret_access_key_var)),
            ("sessionTokenVar", p.session_token_var.as_ref()),
        ];
        for (slot, name) in slots {
            let Some(name) = name else { continue };
            let field = format!("{at}.awsPairs[{i}].{slot}");
            let ok = c
                .env_vars
                .iter()
                .any(|e| &e.name == name && e.mode == Some(Mode::Mask) && e.extract.is_none());
            if !ok {
                return Err(Error::spec(
                    field,
                    format!(
                        "{name:?} is not an envVars entry with \"mode\": \"mask\" and no extract"
                    ),
                ));
            }
            if seen.contains(&name.as_str()) {
                return Err(Error::spec(
                    field,
                    format!("{name:?} is in more than one awsPairs slot"),
                ));
            }
            seen.push(name);
        }
        out.push(AwsPairNames {
            key_id: p.access_key_id_var.clone(),
            secret_key: p.secret_access_key_var.clone(),
            session_token: p.session_token_var.clone(),
        });
    }
    Ok(out)
}

fn entry(
    c: &Common<'_>,
    field: String,
    label: String,
    source: Source,
    domains: &Domains,
) -> Result<Entry> {
    if let Some((name, _)) = c.unsupported.iter().find(|(_, set)| *set) {
        return Err(Error::spec(
            format!("{field}.{name}"),
            "srt's JWT claim masking is not supported by ward: mask the whole value, or the \
             spans of an extract",
        ));
    }
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
        no_match: c.no_match,
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
mod fuzz;
#[cfg(test)]
mod tests;
