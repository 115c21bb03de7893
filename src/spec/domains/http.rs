//! HTTP method/path rules (issue 17): `http` in `process.interception.network`, a list of
//! `{"host": PATTERN, "allow": [{"methods": [...], "paths": [...]}], "deny": [...]}`. A host
//! with rules gets only the requests an allow rule matches and no deny rule does (deny wins),
//! judged request by request by ward's proxy on the normalised path (`path`); what the proxy
//! cannot read there (TLS until it can terminate it, an `Upgrade`, opaque bytes) is refused.
//!
//! Semantics, decided here and documented in spec/README.md ("HTTP method and path rules"):
//! - `host`: an allowedDomains entry's syntax (`parse_pattern`, the allowed list's rules: no
//!   `*`, no wildcard over a public suffix), optional `:port`. It must overlap an allowedDomains
//!   entry: rules only narrow what allowedDomains allows. Every entry whose host matches a
//!   request applies: a deny of any of them denies, an allow of any of them allows.
//! - `methods`: RFC 9110 tokens in upper case (methods are case-sensitive; a request whose
//!   method has a lower-case letter is refused on these hosts, since servers differ on case),
//!   or `["*"]` for any; absent = any.
//! - `paths`: absolute, in normal form (as `path` writes it: no `.`/`..`/empty segments, escapes
//!   only where needed, hex in upper case), no query; `/a/b` is that path only, `/a/*` any path
//!   below `/a/` (`/a/`, `/a/b`, `/a/b/c`), `/*` every path. `*` nowhere else. Absent = any.
//!   Allow rules compare exactly (paths are case-sensitive); deny rules ignore ASCII case, so a
//!   case-insensitive server cannot be reached around them through `/V1/files`.
//! - A rule has `methods`, `paths` or both; a list may be empty (`"allow": []`: nothing).
//! - A request whose path has a quirk (`%2F`, `%5C`, `\`, `;`, an escaped control byte) or no
//!   path at all (CONNECT, `OPTIONS *`) is refused on these hosts.

use serde::{Deserialize, Serialize};

use super::path::{self, Normalized};
use super::{destination, parse_pattern, Domains, Host, List, Pattern};
use crate::error::{Error, Result};

/// One entry of `http` as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpEntry {
    pub host: String,
    #[serde(default)]
    pub allow: Vec<HttpMatch>,
    #[serde(default)]
    pub deny: Vec<HttpMatch>,
}

/// One rule of an entry's `allow` or `deny`, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

/// A path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPattern {
    /// That path only.
    Exact(String),
    /// Any path starting with this prefix (which ends in `/`).
    Below(String),
}

impl PathPattern {
    pub fn matches(&self, path: &str, fold_case: bool) -> bool {
        let eq = |a: &str, b: &str| {
            if fold_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match self {
            PathPattern::Exact(p) => eq(p, path),
            PathPattern::Below(prefix) => {
                path.len() >= prefix.len()
                    && path.is_char_boundary(prefix.len())
                    && eq(prefix, &path[..prefix.len()])
            }
        }
    }
}

/// A compiled rule: `None` = any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub methods: Option<Vec<String>>,
    pub paths: Option<Vec<PathPattern>>,
}

impl Rule {
    fn matches(&self, method: &str, path: &str, fold_case: bool) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == method))
            && self
                .paths
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|p| p.matches(path, fold_case)))
    }
}

/// One compiled entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRules {
    pub host: Pattern,
    pub allow: Vec<Rule>,
    pub deny: Vec<Rule>,
}

/// Every compiled entry, in the order written (rules name their index).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRules {
    pub entries: Vec<HostRules>,
}

/// What the proxy does with one request to a host with rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestDecision {
    /// `rule`: the allow rule that matched (`http[0].allow[1]`).
    Allow { rule: String },
    /// `rule`: the deny rule that matched, or what refused the request; `why`: for the
    /// workload and the log (method and path, never the query).
    Deny { rule: String, why: String },
}

/// The rule of a request no allow rule matched.
pub const NOT_ALLOWED: &str = "http: not allowed";
/// The rule of a request refused because the proxy cannot judge it the way the server reads it.
pub const UNCLEAR: &str = "http: ambiguous request";
/// The rule of a connection to a host with rules that is not plain HTTP (TLS, opaque bytes).
pub const NOT_INSPECTABLE: &str = "http: cannot inspect";
/// Why TLS to a host with rules is refused where the proxy has no CA (under the runc hook).
pub const TLS_REFUSED: &str =
    "host has http rules; no CA to terminate TLS here (a runtime hook cannot give the container one)";

impl HttpRules {
    /// The indices of the entries whose host matches (`host` as the proxy sees it).
    fn applying(&self, host: &str, port: u16) -> Vec<usize> {
        let Some(h) = destination(host) else {
            return Vec::new();
        };
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.host.matches(&h, port))
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether requests to `host:port` are judged by rules (then only plain HTTP passes).
    pub fn applies(&self, host: &str, port: u16) -> bool {
        !self.applying(host, port).is_empty()
    }

    /// The decision for one request, `None` when no entry names the host (then the domain
    /// decision alone holds). `target`: the normalised path (`None`: CONNECT, `OPTIONS *`).
    pub fn decide(
        &self,
        host: &str,
        port: u16,
        method: &str,
        target: Option<&Normalized>,
    ) -> Option<RequestDecision> {
        let applying = self.applying(host, port);
        if applying.is_empty() {
            return None;
        }
        Some(decide_request(self, &applying, method, target))
    }
}

/// The decision over the entries `applying` (indices into `rules.entries`): quirks and case
/// first, then deny (any entry), then allow (any entry), else deny.
pub fn decide_request(
    rules: &HttpRules,
    applying: &[usize],
    method: &str,
    target: Option<&Normalized>,
) -> RequestDecision {
    let deny = |rule: &str, why: String| RequestDecision::Deny {
        rule: rule.to_string(),
        why,
    };
    if method.bytes().any(|b| b.is_ascii_lowercase()) || !is_token(method) {
        return deny(
            UNCLEAR,
            format!("method {method:?} is not an upper-case token (servers differ on case)"),
        );
    }
    let Some(n) = target else {
        return deny(
            NOT_ALLOWED,
            format!("{method} without a path (CONNECT or OPTIONS *) on a host with http rules"),
        );
    };
    let shown = format!("{method} {}", n.path);
    if n.quirks.any() {
        return deny(
            UNCLEAR,
            format!(
                "{shown}: the path has {} that servers read differently",
                quirk_names(n)
            ),
        );
    }
    for &i in applying {
        let Some(e) = rules.entries.get(i) else {
            continue;
        };
        if let Some(j) = e.deny.iter().position(|r| r.matches(method, &n.path, true)) {
            let rule = format!("http[{i}].deny[{j}]");
            return deny(&rule, format!("{shown} denied by {rule}"));
        }
    }
    for &i in applying {
        let Some(e) = rules.entries.get(i) else {
            continue;
        };
        if let Some(j) = e
            .allow
            .iter()
            .position(|r| r.matches(method, &n.path, false))
        {
            return RequestDecision::Allow {
                rule: format!("http[{i}].allow[{j}]"),
            };
        }
    }
    let hosts: Vec<String> = applying
        .iter()
        .filter_map(|&i| {
            let e = rules.entries.get(i)?;
            Some(format!("http[{i}] {:?}", e.host.text))
        })
        .collect();
    deny(
        NOT_ALLOWED,
        format!("{shown} matches no allow rule of {}", hosts.join(", ")),
    )
}

fn quirk_names(n: &Normalized) -> String {
    let q = &n.quirks;
    let mut v = Vec::new();
    if q.encoded_separator {
        v.push("an encoded separator (%2F, %5C)");
    }
    if q.backslash {
        v.push("a backslash");
    }
    if q.semicolon {
        v.push("a semicolon");
    }
    if q.encoded_control {
        v.push("an encoded control byte");
    }
    v.join(" and ")
}

/// RFC 9110 5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Compiles `http` (errors named under `at`, e.g. `process.interception.network`), checking
/// each host against `domains` (it must overlap an allowedDomains entry).
pub fn compile(entries: &[HttpEntry], domains: &Domains, at: &str) -> Result<HttpRules> {
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let field = format!("{at}.http[{i}]");
        let host = parse_pattern(&e.host, List::Allowed)
            .map_err(|why| Error::spec(format!("{field}.host"), format!("{:?}: {why}", e.host)))?;
        if !domains.allowed.iter().any(|a| overlaps(&host, a)) {
            return Err(Error::spec(
                format!("{field}.host"),
                format!(
                    "{:?}: no allowedDomains entry allows this host (http rules narrow what \
                     allowedDomains allows; add the host there too)",
                    e.host
                ),
            ));
        }
        let rules = |list: &[HttpMatch], which: &str| -> Result<Vec<Rule>> {
            list.iter()
                .enumerate()
                .map(|(j, m)| rule(m, &format!("{field}.{which}[{j}]")))
                .collect()
        };
        out.push(HostRules {
            host,
            allow: rules(&e.allow, "allow")?,
            deny: rules(&e.deny, "deny")?,
        });
    }
    Ok(HttpRules { entries: out })
}

pub(crate) fn rule(m: &HttpMatch, field: &str) -> Result<Rule> {
    if m.methods.is_none() && m.paths.is_none() {
        return Err(Error::spec(
            field,
            "a rule names methods, paths or both (an empty rule would match every request)",
        ));
    }
    let methods = match &m.methods {
        None => None,
        Some(ms) if ms.is_empty() => {
            return Err(Error::spec(
                format!("{field}.methods"),
                "empty: it would match nothing (leave it out for any method)",
            ))
        }
        Some(ms) if ms.iter().any(|x| x == "*") => {
            if ms.len() > 1 {
                return Err(Error::spec(
                    format!("{field}.methods"),
                    "`*` (any method) stands alone",
                ));
            }
            None
        }
        Some(ms) => {
            for (k, x) in ms.iter().enumerate() {
                check_method(x).map_err(|why| Error::spec(format!("{field}.methods[{k}]"), why))?;
            }
            Some(ms.clone())
        }
    };
    let paths = match &m.paths {
        None => None,
        Some(ps) if ps.is_empty() => {
            return Err(Error::spec(
                format!("{field}.paths"),
                "empty: it would match nothing (leave it out for any path)",
            ))
        }
        Some(ps) => Some(
            ps.iter()
                .enumerate()
                .map(|(k, p)| {
                    parse_path(p).map_err(|why| {
                        Error::spec(format!("{field}.paths[{k}]"), format!("{p:?}: {why}"))
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    Ok(Rule { methods, paths })
}

fn check_method(m: &str) -> std::result::Result<(), String> {
    if !is_token(m) {
        return Err(format!(
            "{m:?} is not an HTTP method (a token: letters, digits, !#$%&'*+-.^_`|~)"
        ));
    }
    if m.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(format!(
            "{m:?}: methods are case-sensitive and written in upper case ({:?})",
            m.to_ascii_uppercase()
        ));
    }
    Ok(())
}

/// One path pattern; the error says what is wrong (the caller names the entry).
pub fn parse_path(p: &str) -> std::result::Result<PathPattern, String> {
    if !p.starts_with('/') {
        return Err("a path starts with /".into());
    }
    if p.contains('?') {
        return Err("query rules are not supported: paths match the path without its query".into());
    }
    let (base, below) = match p.strip_suffix('*') {
        Some(b) if b.ends_with('/') => (b, true),
        _ => (p, false),
    };
    if base.contains('*') {
        return Err("`*` only as the whole last segment, as in /v1/messages/*".into());
    }
    let n = path::normalize(base);
    if n.quirks.any() {
        return Err(format!(
            "has {} that servers read differently: requests with it are refused on hosts \
             with http rules, so this would never match",
            quirk_names(&n)
        ));
    }
    if n.path != base {
        return Err(format!(
            "not in normal form (requests are matched after normalisation): write {:?}",
            if below {
                format!("{}*", n.path)
            } else {
                n.path
            }
        ));
    }
    Ok(if below {
        PathPattern::Below(base.to_string())
    } else {
        PathPattern::Exact(base.to_string())
    })
}

/// Whether some name or address matches both patterns (ports: one absent, or equal).
pub(crate) fn overlaps(a: &Pattern, b: &Pattern) -> bool {
    if let (Some(x), Some(y)) = (a.port, b.port) {
        if x != y {
            return false;
        }
    }
    let below = |name: &str, base: &str| {
        name.len() > base.len() + 1
            && name.ends_with(base)
            && name.as_bytes()[name.len() - base.len() - 1] == b'.'
    };
    match (&a.host, &b.host) {
        (Host::Any, _) | (_, Host::Any) => true,
        (Host::Name(x), Host::Name(y)) => x == y,
        (Host::Name(x), Host::Below(y)) | (Host::Below(y), Host::Name(x)) => below(x, y),
        (Host::Below(x), Host::Below(y)) => x == y || below(x, y) || below(y, x),
        (Host::Ip(x), Host::Ip(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
