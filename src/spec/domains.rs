//! Egress by domain name in the spec: `allowedDomains`, `deniedDomains`, `deniedDomainReasons`
//! and `proxyEnv` of `process.interception.network` (or the same JSON in the annotation
//! `org.ward.interception`), with the names and meaning of @anthropic-ai/sandbox-runtime (srt),
//! so one policy reads the same in both. Patterns are parsed and validated here, and
//! `Domains::decide` is the decision ward's proxy will apply to a name and port.
//!
//! ward's proxy enforces them (`policy::proxy`, started by `container::egress`); the gVisor
//! tier, which has no proxy, refuses them (`refuse`).
//!
//! Pattern syntax (one entry): `example.com` (that name), `*.example.com` (any name below it,
//! not the name itself), an IPv4 address, a bracketed IPv6 address (`[::1]`), each with an
//! optional `:port` (1-65535; without one, any port). `*` (and `*:port`) only in deniedDomains:
//! deny every name. Names are compared after IDNA (UTS #46) normalisation to lower-case ASCII,
//! with one trailing dot dropped.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use psl::Psl;

use crate::error::{Error, Result};

pub mod http;
pub mod path;

/// Where the network policy's fields are named in errors when it came from the config field.
pub const FIELD: &str = "process.interception.network";

/// The longest reason accepted (it is shown to the workload in a 403 body and logged).
pub const REASON_MAX: usize = 1024;

/// The host part of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// `*`: every name and address (deniedDomains only).
    Any,
    /// An exact name: lower-case ASCII (IDNA), no trailing dot.
    Name(String),
    /// `*.base`: every name with at least one label before `base`, never `base` itself.
    Below(String),
    /// An address literal (an IPv4-mapped IPv6 address is kept as the IPv4 it carries).
    Ip(IpAddr),
}

/// One entry of `allowedDomains` or `deniedDomains`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    pub host: Host,
    /// `None`: any port.
    pub port: Option<u16>,
    /// The entry as written: reasons are keyed by it, decisions name it.
    pub text: String,
}

/// Which list an entry is in (the rules differ: `*` and wildcards over public suffixes are
/// refused only where they would allow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    Allowed,
    Denied,
}

impl List {
    pub fn field(self) -> &'static str {
        match self {
            List::Allowed => "allowedDomains",
            List::Denied => "deniedDomains",
        }
    }
}

/// What the proxy does with a connection to a name and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// `rule` names the allowedDomains entry that matched.
    Allow { rule: String },
    /// `rule` names the deniedDomains entry that matched, or says why nothing allowed it;
    /// `reason` is the entry's deniedDomainReasons text, if any.
    Deny {
        rule: String,
        reason: Option<String>,
    },
}

/// A validated domain policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Domains {
    pub allowed: Vec<Pattern>,
    pub denied: Vec<Pattern>,
    /// Keyed by a deniedDomains entry as written.
    pub reasons: BTreeMap<String, String>,
    pub proxy_env: bool,
    /// Method/path rules per host (`http`), set by `Network::domains`.
    pub http: http::HttpRules,
}

/// The rule of a denial that no entry made: with any domain rule, names default to deny.
pub const NOT_ALLOWED: &str = "not in allowedDomains";
/// The rule of a denial of something that is not a host name or address.
pub const NOT_A_NAME: &str = "not a valid host name";

impl Domains {
    /// Denied entries first (deny wins), then allowed ones, else deny. Never panics: a name
    /// that cannot be normalised is denied.
    pub fn decide(&self, name: &str, port: u16) -> Decision {
        let Some(host) = destination(name) else {
            return Decision::Deny {
                rule: NOT_A_NAME.into(),
                reason: None,
            };
        };
        if let Some((i, p)) = self
            .denied
            .iter()
            .enumerate()
            .find(|(_, p)| p.matches(&host, port))
        {
            return Decision::Deny {
                rule: format!("deniedDomains[{i}] {:?}", p.text),
                reason: self.reasons.get(&p.text).cloned(),
            };
        }
        if let Some((i, p)) = self
            .allowed
            .iter()
            .enumerate()
            .find(|(_, p)| p.matches(&host, port))
        {
            return Decision::Allow {
                rule: format!("allowedDomains[{i}] {:?}", p.text),
            };
        }
        Decision::Deny {
            rule: NOT_ALLOWED.into(),
            reason: None,
        }
    }
}

impl Pattern {
    /// Whether the normalised destination `host` (a `Name` or an `Ip`) and `port` match.
    pub(crate) fn matches(&self, host: &Host, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (&self.host, host) {
            (Host::Any, _) => true,
            (Host::Name(a), Host::Name(b)) => a == b,
            (Host::Below(base), Host::Name(b)) => {
                b.len() > base.len() + 1
                    && b.ends_with(base.as_str())
                    && b.as_bytes()[b.len() - base.len() - 1] == b'.'
            }
            (Host::Ip(a), Host::Ip(b)) => a == b,
            _ => false,
        }
    }
}

/// For tests: `allowed` and `denied` compiled as a config's would be (panics on a bad pattern).
#[cfg(test)]
pub fn for_tests(allowed: &[&str], denied: &[&str]) -> Domains {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (a, d) = (s(allowed), s(denied));
    compile(
        Fields {
            allowed: Some(&a),
            denied: Some(&d),
            reasons: &Default::default(),
            proxy_env: false,
        },
        "test",
    )
    .unwrap()
    .unwrap()
}

/// The domain fields of a network policy, as `spec::interception::Network` holds them.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    pub allowed: Option<&'a [String]>,
    pub denied: Option<&'a [String]>,
    pub reasons: &'a BTreeMap<String, String>,
    pub proxy_env: bool,
}

impl Fields<'_> {
    /// The first domain field present, if any (then a proxy is needed to honour them).
    pub fn first(&self) -> Option<&'static str> {
        if self.allowed.is_some() {
            Some("allowedDomains")
        } else if self.denied.is_some() {
            Some("deniedDomains")
        } else if !self.reasons.is_empty() {
            Some("deniedDomainReasons")
        } else if self.proxy_env {
            Some("proxyEnv")
        } else {
            None
        }
    }
}

/// Validates the domain fields (errors named under `at`, e.g. `FIELD`); `None` when there are
/// none.
pub fn compile(f: Fields<'_>, at: &str) -> Result<Option<Domains>> {
    if f.first().is_none() {
        return Ok(None);
    }
    let list = |entries: Option<&[String]>, which: List| -> Result<Vec<Pattern>> {
        entries
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, text)| {
                parse_pattern(text, which).map_err(|why| {
                    Error::spec(
                        format!("{at}.{}[{i}]", which.field()),
                        format!("{text:?}: {why}"),
                    )
                })
            })
            .collect()
    };
    let allowed = list(f.allowed, List::Allowed)?;
    let denied = list(f.denied, List::Denied)?;
    for (key, reason) in f.reasons {
        let field = format!("{at}.deniedDomainReasons[{key:?}]");
        if !f.denied.into_iter().flatten().any(|d| d == key) {
            return Err(Error::spec(
                field,
                "not an entry of deniedDomains (keys are entries exactly as written)",
            ));
        }
        check_reason(reason).map_err(|why| Error::spec(field, why))?;
    }
    if f.allowed.is_none() && f.denied.is_none() {
        return Err(Error::spec(
            format!("{at}.proxyEnv"),
            "needs allowedDomains or deniedDomains (the proxy it points to filters by name)",
        ));
    }
    Ok(Some(Domains {
        allowed,
        denied,
        reasons: f.reasons.clone(),
        proxy_env: f.proxy_env,
        http: Default::default(),
    }))
}

fn check_reason(reason: &str) -> std::result::Result<(), String> {
    if reason.trim().is_empty() {
        return Err("the reason is empty".into());
    }
    if reason.len() > REASON_MAX {
        return Err(format!("the reason is longer than {REASON_MAX} bytes"));
    }
    if reason.chars().any(char::is_control) {
        return Err("the reason has control characters (it is one line of a 403 body)".into());
    }
    Ok(())
}

/// Refuses domain rules where ward cannot honour them (the gVisor tier), naming the first
/// domain field present under `at` (the config field's or the annotation's name).
pub fn refuse(f: Fields<'_>, at: &str, why: &str) -> Result<()> {
    match f.first() {
        None => Ok(()),
        Some(field) => Err(Error::spec(format!("{at}.{field}"), why)),
    }
}

/// Parses one entry; the error says what is wrong (the caller names the entry).
pub fn parse_pattern(text: &str, list: List) -> std::result::Result<Pattern, String> {
    if text.contains('/') {
        return Err("a pattern is a host name with an optional :port, not a URL or a path".into());
    }
    let (host, port) = split_port(text)?;
    let host = match host {
        Bare::V6(a) => Host::Ip(unmap(a)),
        Bare::Text("*") if list == List::Allowed => {
            return Err("`*` would allow every name: list the names to allow".into())
        }
        Bare::Text("*") => Host::Any,
        Bare::Text(t) => {
            let (wild, rest) = match t.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, t),
            };
            if wild && rest.is_empty() {
                return Err("empty label after `*.`".into());
            }
            if rest.contains('*') {
                return Err(
                    "a wildcard is only allowed as the whole first label, as in \
                            `*.example.com`"
                        .into(),
                );
            }
            match normalise(rest, false)? {
                Host::Ip(_) if wild => {
                    return Err("a wildcard cannot cover an IP address".into());
                }
                Host::Name(base) if wild => {
                    if list == List::Allowed {
                        if let Some(kind) = public_suffix(&base) {
                            return Err(format!(
                                "`{base}` is a public suffix ({kind}): `*.{base}` would allow \
                                 names of unrelated owners; list the domains to allow"
                            ));
                        }
                    }
                    Host::Below(base)
                }
                h => h,
            }
        }
    };
    Ok(Pattern {
        host,
        port,
        text: text.to_string(),
    })
}

/// An entry's host before normalisation.
enum Bare<'a> {
    Text(&'a str),
    V6(Ipv6Addr),
}

/// Splits `host[:port]` / `[v6][:port]`. Unbracketed text with two colons is refused rather
/// than guessed at (`::1:443` is itself an address).
fn split_port(text: &str) -> std::result::Result<(Bare<'_>, Option<u16>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or("unclosed [")?;
        if inner.contains('%') {
            return Err("an IPv6 zone id is not accepted".into());
        }
        let addr: Ipv6Addr = inner
            .parse()
            .map_err(|_| format!("{inner:?} in brackets is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            a => Some(port(a.strip_prefix(':').ok_or("only :port may follow ]")?)?),
        };
        return Ok((Bare::V6(addr), port));
    }
    match text.split_once(':') {
        None => Ok((Bare::Text(text), None)),
        Some((_, p)) if p.contains(':') => {
            Err("an IPv6 address is written in brackets: [::1] or [::1]:443".into())
        }
        Some((h, p)) => Ok((Bare::Text(h), Some(port(p)?))),
    }
}

/// A port: decimal, 1-65535, no sign or leading zero.
fn port(p: &str) -> std::result::Result<u16, String> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {p:?} is not a number 1-65535"));
    }
    if p.starts_with('0') {
        return Err(format!(
            "port {p:?} out of range 1-65535 (no leading zeros)"
        ));
    }
    match p.parse::<u16>() {
        Ok(n) => Ok(n),
        Err(_) => Err(format!("port {p} out of range 1-65535")),
    }
}

/// IPv4-mapped IPv6 connects to the IPv4 address it carries, so it is spelled as that.
fn unmap(a: Ipv6Addr) -> IpAddr {
    match a.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(a),
    }
}

/// What IDNA may not let through: the WHATWG URL's forbidden domain code points, plus `*`
/// (wildcards are handled before), plus spaces and controls.
const DENY: AsciiDenyList = AsciiDenyList::new(true, "%#/:<>?@[\\]^|*");

/// A name or dotted IPv4 address as compared: IDNA (UTS #46) to lower-case ASCII, one trailing
/// dot dropped, labels non-empty and within DNS lengths. A name ending in a number is an IPv4
/// address: in a pattern it must be written a.b.c.d; at decision time (`lenient`) the forms
/// resolvers accept (`0x7f.1`, `2130706433`) are read as the address they mean.
fn normalise(raw: &str, lenient: bool) -> std::result::Result<Host, String> {
    if raw.is_empty() {
        return Err("empty name".into());
    }
    let ascii = Uts46::new()
        .to_ascii(raw.as_bytes(), DENY, Hyphens::Allow, DnsLength::Ignore)
        .map_err(|_| "not a valid domain name (IDNA, UTS #46)".to_string())?;
    let name = ascii.strip_suffix('.').unwrap_or(&ascii);
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return Err("empty label".into());
    }
    if let Some(long) = name.split('.').find(|l| l.len() > 63) {
        return Err(format!("label {long:?} is longer than 63 bytes"));
    }
    if name.len() > 253 {
        return Err("longer than 253 bytes".into());
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.bytes().all(|b| b.is_ascii_digit()) || ipv4_number(last).is_some() {
        let addr = if lenient {
            whatwg_ipv4(name)
        } else {
            name.parse::<Ipv4Addr>().ok()
        };
        return addr
            .map(|a| Host::Ip(IpAddr::V4(a)))
            .ok_or_else(|| "ends in a number but is not an IPv4 address a.b.c.d".into());
    }
    Ok(Host::Name(name.to_string()))
}

/// The destination as the proxy will see it (SNI, Host, CONNECT, SOCKS): a name, an address
/// literal (IPv6 bracketed or not), normalised as patterns are. `None` if it is neither.
pub fn destination(name: &str) -> Option<Host> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    if bare.contains(':') {
        return bare.parse::<Ipv6Addr>().ok().map(|a| Host::Ip(unmap(a)));
    }
    if bare.len() != name.len() {
        return None;
    }
    normalise(name, true).ok()
}

/// Whether `base` is a public suffix (ICANN or private section of the list, or a single label
/// the list's default rule makes one): the kind, for the error.
fn public_suffix(base: &str) -> Option<&'static str> {
    let s = psl::List.suffix(base.as_bytes())?;
    if s.as_bytes() != base.as_bytes() {
        return None;
    }
    Some(match s.typ() {
        Some(psl::Type::Icann) => "public suffix list, ICANN section",
        Some(psl::Type::Private) => "public suffix list, private section",
        None => "a top-level label",
    })
}

/// One part of an IPv4 address as resolvers read it: decimal, `0x` hex or `0` octal.
fn ipv4_number(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(h) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (h, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() {
        return (radix == 16).then_some(0);
    }
    if digits.len() > 12 || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// The WHATWG URL IPv4 parser (1 to 4 parts, the last filling the remaining bytes).
fn whatwg_ipv4(name: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u64> = name
        .split('.')
        .map(ipv4_number)
        .collect::<Option<Vec<_>>>()?;
    let (last, head) = parts.split_last()?;
    if head.len() > 3 || head.iter().any(|&p| p > 255) {
        return None;
    }
    let room = 8 * (4 - head.len() as u32);
    if *last >= 1u64 << room {
        return None;
    }
    let mut v = *last;
    for (i, p) in head.iter().enumerate() {
        v += p << (24 - 8 * i as u32);
    }
    u32::try_from(v).ok().map(Ipv4Addr::from)
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;
