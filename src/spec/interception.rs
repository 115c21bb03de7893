//! Interception in the spec: ward's `process.interception` extension (or the same JSON in the
//! annotation `org.ward.interception`) — the egress `network` policy (address rules, socket
//! families, unix socket addresses) and the syscalls to `observe`. Types, parsing and
//! validation; `policy::egress` compiles the network policy into cgroup BPF programs and a
//! seccomp filter, `policy::observe` and `policy::supervisor` do the observing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const ANNOTATION: &str = "org.ward.interception";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    #[default]
    Allow,
    Deny,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    #[serde(default)]
    pub default: Verdict,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    /// Unix socket addresses the container may connect or send to; absent = not restricted,
    /// `[]` = none (see `unix`).
    pub allow_unix: Option<Vec<String>>,
    pub families: Option<Vec<String>>,
    /// Egress by domain name (`spec::domains`), enforced by ward's proxy
    /// (`container::egress`).
    pub allowed_domains: Option<Vec<String>>,
    pub denied_domains: Option<Vec<String>>,
    #[serde(default)]
    pub denied_domain_reasons: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub proxy_env: bool,
    /// Method/path rules per host (`spec::domains::http`), enforced by ward's proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Vec<crate::spec::domains::http::HttpEntry>>,
}

/// `process.interception`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Interception {
    pub network: Option<Network>,
    #[serde(default)]
    pub observe: Vec<String>,
    /// Credentials the container holds only as placeholders (`spec::credentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<crate::spec::credentials::Credentials>,
}

/// One destination rule: an address prefix and a port range (host order, inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub addr: IpAddr,
    pub prefix: u8,
    pub ports: (u16, u16),
    pub verdict: Verdict,
}

/// Parses `CIDR[:port|port-range]`; IPv6 with a port is written `[addr/len]:port`.
pub fn parse_rule(text: &str, verdict: Verdict) -> Result<Rule> {
    let bad = |why: &str| Error::spec("process.interception.network", format!("{text:?}: {why}"));
    let (net, ports) = if let Some(rest) = text.strip_prefix('[') {
        let (net, after) = rest.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        (net, after.strip_prefix(':'))
    } else if text.matches(':').count() > 1 {
        (text, None) // bare IPv6
    } else {
        match text.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (text, None),
        }
    };
    let (addr, prefix) = match net.split_once('/') {
        Some((a, l)) => (
            a,
            Some(l.parse::<u8>().map_err(|_| bad("bad prefix length"))?),
        ),
        None => (net, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    if prefix > max {
        return Err(bad("prefix length too long"));
    }
    let ports = match ports {
        None | Some("") => (0, u16::MAX),
        Some(p) => {
            let parse = |s: &str| s.parse::<u16>().map_err(|_| bad("bad port"));
            match p.split_once('-') {
                Some((lo, hi)) => (parse(lo)?, parse(hi)?),
                None => (parse(p)?, parse(p)?),
            }
        }
    };
    if ports.0 > ports.1 {
        return Err(bad("port range is reversed"));
    }
    Ok(Rule {
        addr,
        prefix,
        ports,
        verdict,
    })
}

impl Network {
    /// Every rule, deny before allow (at one prefix a deny range is tested first), plus the
    /// normalisations: IPv4 rules also as IPv4-mapped IPv6, and the unspecified address as the
    /// loopback it means for connect (0.0.0.0 and :: reach the local host).
    pub fn rules(&self) -> Result<Vec<Rule>> {
        let mut out = Vec::new();
        for (list, v) in [(&self.deny, Verdict::Deny), (&self.allow, Verdict::Allow)] {
            for text in list {
                let r = parse_rule(text, v)?;
                out.push(r);
                if let IpAddr::V4(a) = r.addr {
                    out.push(Rule {
                        addr: IpAddr::V6(a.to_ipv6_mapped()),
                        prefix: r.prefix + 96,
                        ..r
                    });
                }
                if covers(&r, IpAddr::V4(Ipv4Addr::LOCALHOST)) {
                    out.push(Rule {
                        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        prefix: 32,
                        ..r
                    });
                }
                if covers(&r, IpAddr::V6(Ipv6Addr::LOCALHOST)) {
                    out.push(Rule {
                        addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                        prefix: 128,
                        ..r
                    });
                }
            }
        }
        Ok(out)
    }
}

pub(crate) fn covers(r: &Rule, a: IpAddr) -> bool {
    let bits = |ip: IpAddr| -> u128 {
        match ip {
            IpAddr::V4(v) => u32::from(v) as u128,
            IpAddr::V6(v) => u128::from(v),
        }
    };
    if r.addr.is_ipv4() != a.is_ipv4() {
        return false;
    }
    let width = if a.is_ipv4() { 32 } else { 128 };
    if r.prefix == 0 {
        return true;
    }
    let shift = width - r.prefix as u32;
    bits(r.addr) >> shift == bits(a) >> shift
}

/// Reads the policy from the raw config or the annotation (both: an error naming both).
/// Parts not built yet are refused, never ignored.
pub fn from_config(raw: &serde_json::Value) -> Result<Option<Interception>> {
    read(raw).map_err(|e| named_for(raw, e))
}

/// A refusal of a policy given in the annotation, named after the annotation: the parts that
/// name their field as the config's (`parse_rule`, `address`, `numbers`, `validate_observe`,
/// which also serve where there is no config) would name `process.interception.…`, a field
/// the config does not have.
fn named_for(raw: &serde_json::Value, e: Error) -> Error {
    if raw.pointer("/process/interception").is_some() {
        return e;
    }
    match e {
        Error::Spec { field, msg } => match field.strip_prefix("process.interception.") {
            Some(part) => Error::spec(format!("annotations.{ANNOTATION}: {part}"), msg),
            None => Error::Spec { field, msg },
        },
        e => e,
    }
}

fn read(raw: &serde_json::Value) -> Result<Option<Interception>> {
    let field = raw.get("process").and_then(|p| p.get("interception"));
    let annotation = raw
        .get("annotations")
        .and_then(|a| a.get(ANNOTATION))
        .and_then(|v| v.as_str());
    let explicit_default = match (field, annotation) {
        (Some(v), _) => v.pointer("/network/default").cloned(),
        (None, Some(t)) => serde_json::from_str::<serde_json::Value>(t)
            .ok()
            .and_then(|v| v.pointer("/network/default").cloned()),
        _ => None,
    };
    let mut policy: Interception = match (field, annotation) {
        (Some(_), Some(_)) => {
            return Err(Error::spec(
                "process.interception",
                format!(
                    "both process.interception and the annotation {ANNOTATION} are set: keep one"
                ),
            ))
        }
        (Some(v), None) => crate::spec::json::from_value(v, "process.interception")?,
        (None, Some(t)) => crate::spec::json::parse_json(t, &format!("annotations.{ANNOTATION}"))?,
        (None, None) => return Ok(None),
    };
    validate_observe(&policy.observe)?;
    // A task can have only one seccomp listener: the supervisor's, or the spec's listenerPath.
    let listener_path = raw
        .pointer("/linux/seccomp/listenerPath")
        .is_some_and(|v| !v.is_null());
    if !policy.observe.is_empty() && listener_path {
        return Err(Error::spec(
            "process.interception.observe",
            "linux.seccomp.listenerPath is set too: a process can have only one seccomp listener",
        ));
    }
    if let Some(n) = &policy.network {
        for rule in n.allow_unix.iter().flatten() {
            address(rule)?;
        }
        n.rules()?;
        numbers(n)?;
        n.domains(&network_field(raw))?;
    }
    // With domain rules, what no rule allows is denied: names by the proxy, addresses by the
    // wall around it. An explicit `"default": "allow"` would contradict that.
    if let Some(n) = policy.network.as_mut() {
        if n.domain_fields().first().is_some() {
            if explicit_default == Some(serde_json::json!("allow")) {
                return Err(Error::spec(
                    format!("{}.default", network_field(raw)),
                    "\"allow\" cannot stand beside allowedDomains/deniedDomains: with domain \
                     rules everything not allowed is denied (remove default or set it to \"deny\")",
                ));
            }
            n.default = Verdict::Deny;
        }
    }
    policy.compiled_credentials(raw)?;
    policy.refuse_bypass(raw)?;
    Ok(Some(policy))
}

impl Interception {
    /// The validated `credentials` (errors named under the config field or the annotation);
    /// `None` when there are none.
    pub fn compiled_credentials(
        &self,
        raw: &serde_json::Value,
    ) -> Result<Option<crate::spec::credentials::Compiled>> {
        let Some(c) = &self.credentials else {
            return Ok(None);
        };
        let domains = match &self.network {
            Some(n) => n.domains(&network_field(raw))?,
            None => None,
        };
        let compiled =
            crate::spec::credentials::compile(c, domains.as_ref(), &field(raw, "credentials"))?;
        Ok((!compiled.is_empty()).then_some(compiled))
    }

    /// With credentials or http rules every byte must go through ward's proxy: names are
    /// denied unless allowed (domain rules make it so), and so are addresses, so an IP
    /// `allow` rule that reaches past the container's own loopback is refused (a client could
    /// reach a host with http rules by its address, around them, or carry a placeholder there).
    fn refuse_bypass(&self, raw: &serde_json::Value) -> Result<()> {
        let Some(n) = &self.network else {
            return Ok(());
        };
        let has_creds = self
            .credentials
            .as_ref()
            .is_some_and(|c| !c.env_vars.is_empty() || !c.files.is_empty());
        let what = match (has_creds, n.http.is_some()) {
            (true, _) => "credentials",
            (false, true) => "http rules",
            (false, false) => return Ok(()),
        };
        for (i, text) in n.allow.iter().enumerate() {
            let r = parse_rule(text, Verdict::Allow)?;
            if !loopback_only(&r) {
                return Err(Error::spec(
                    format!("{}.allow[{i}]", network_field(raw)),
                    format!(
                        "{text:?} lets bytes past ward's proxy: with {what} egress must be                          denied by default for names and addresses, so that every byte goes                          through the proxy (reach that host by name in allowedDomains instead)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a rule covers only loopback addresses (the container's own namespace).
fn loopback_only(r: &Rule) -> bool {
    match r.addr {
        IpAddr::V4(a) => r.prefix >= 8 && a.octets()[0] == 127,
        IpAddr::V6(a) => r.prefix == 128 && a == Ipv6Addr::LOCALHOST,
    }
}

/// How errors name a part of the policy (`network`, `credentials`): the config field, or the
/// annotation it came from.
pub fn field(raw: &serde_json::Value, part: &str) -> String {
    if raw.pointer("/process/interception").is_some() {
        format!("process.interception.{part}")
    } else {
        format!("annotations.{ANNOTATION}: {part}")
    }
}

impl Network {
    /// The egress-by-name fields, for `spec::domains`.
    pub fn domain_fields(&self) -> crate::spec::domains::Fields<'_> {
        crate::spec::domains::Fields {
            allowed: self.allowed_domains.as_deref(),
            denied: self.denied_domains.as_deref(),
            reasons: &self.denied_domain_reasons,
            proxy_env: self.proxy_env,
        }
    }

    /// The validated domain policy (errors named under `at`), `None` without domain fields.
    pub fn domains(&self, at: &str) -> Result<Option<crate::spec::domains::Domains>> {
        let Some(mut d) = crate::spec::domains::compile(self.domain_fields(), at)? else {
            if self.http.is_some() {
                return Err(Error::spec(
                    format!("{at}.http"),
                    "needs allowedDomains (http rules narrow the hosts it allows)",
                ));
            }
            return Ok(None);
        };
        if let Some(entries) = &self.http {
            d.http = crate::spec::domains::http::compile(entries, &d, at)?;
        }
        Ok(Some(d))
    }
}

/// How errors name the network policy: the config field, or the annotation it came from.
pub fn network_field(raw: &serde_json::Value) -> String {
    if raw.pointer("/process/interception").is_some() {
        crate::spec::domains::FIELD.into()
    } else {
        format!("annotations.{ANNOTATION}: network")
    }
}

/// Refuses a policy with domain rules where ward has no proxy (the gVisor tier), naming the
/// field where the config has it.
pub fn refuse_domains(i: &Interception, raw: &serde_json::Value, why: &str) -> Result<()> {
    match &i.network {
        Some(n) => crate::spec::domains::refuse(n.domain_fields(), &network_field(raw), why),
        None => Ok(()),
    }
}

/// Syscalls ward's supervisor knows how to describe.
pub const OBSERVABLE: &[&str] = &["execve", "execveat", "open", "openat", "openat2", "connect"];

/// Checks that ward can describe every name, naming the first it cannot.
pub fn validate_observe(names: &[String]) -> Result<()> {
    for (i, n) in names.iter().enumerate() {
        if !OBSERVABLE.contains(&n.as_str()) {
            return Err(Error::spec(
                format!("process.interception.observe[{i}]"),
                format!(
                    "{n:?} cannot be observed (known: {})",
                    OBSERVABLE.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The field unix socket rules are read from (errors name it).
pub const UNIX_FIELD: &str = "process.interception.network.allowUnix";
/// `sizeof(((struct sockaddr_un *)0)->sun_path)`.
pub const PATH_MAX: usize = 108;

/// The address bytes a rule names: `/path` as written, `@name` as a NUL then the name.
pub fn address(rule: &str) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::spec(UNIX_FIELD, format!("{rule:?}: {why}"));
    let bytes = if let Some(name) = rule.strip_prefix('@') {
        [&[0u8][..], name.as_bytes()].concat()
    } else if rule.starts_with('/') {
        rule.as_bytes().to_vec()
    } else {
        return Err(bad(
            "not an absolute path or an @abstract name (addresses are matched as written)",
        ));
    };
    if bytes[1..].contains(&0) {
        return Err(bad("contains a NUL byte"));
    }
    if bytes.len() > PATH_MAX {
        return Err(bad("longer than a unix socket address (108 bytes)"));
    }
    Ok(bytes)
}

/// Socket families allowed when the policy names none.
const DEFAULT_FAMILIES: &[&str] = &["inet", "inet6", "unix", "netlink"];

/// The number of an address family name.
fn family(name: &str) -> Option<u32> {
    Some(match name {
        "unix" => 1,
        "inet" => 2,
        "inet6" => 10,
        "netlink" => 16,
        "packet" => 17,
        "vsock" => 40,
        "can" => 29,
        "bluetooth" => 31,
        "alg" => 38,
        "xdp" => 44,
        _ => return None,
    })
}

/// The address family numbers the policy allows.
pub fn numbers(n: &Network) -> Result<Vec<u32>> {
    let names: Vec<String> = n
        .families
        .clone()
        .unwrap_or_else(|| DEFAULT_FAMILIES.iter().map(|s| s.to_string()).collect());
    names
        .iter()
        .enumerate()
        .map(|(i, f)| {
            family(f).ok_or_else(|| {
                Error::spec(
                    format!("process.interception.network.families[{i}]"),
                    format!("unknown family {f:?}"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_forms() {
        let r = parse_rule("10.0.0.0/8:443", Verdict::Allow).unwrap();
        assert_eq!((r.prefix, r.ports), (8, (443, 443)));
        let r = parse_rule("127.0.0.1:8000-8100", Verdict::Allow).unwrap();
        assert_eq!((r.prefix, r.ports), (32, (8000, 8100)));
        let r = parse_rule("[2001:db8::/32]:80", Verdict::Deny).unwrap();
        assert_eq!((r.prefix, r.ports), (32, (80, 80)));
        let r = parse_rule("::1", Verdict::Allow).unwrap();
        assert_eq!((r.prefix, r.ports), (128, (0, 65535)));
        for bad in [
            "10.0.0.0/33",
            "nope",
            "1.2.3.4:70000",
            "1.2.3.4:90-80",
            "[::1",
        ] {
            assert!(parse_rule(bad, Verdict::Allow).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalisation_adds_mapped_and_unspecified() {
        let n = Network {
            allow: vec!["127.0.0.1:80".into()],
            ..Default::default()
        };
        let rules = n.rules().unwrap();
        assert!(rules
            .iter()
            .any(|r| r.addr == "::ffff:127.0.0.1".parse::<IpAddr>().unwrap() && r.prefix == 128));
        assert!(rules
            .iter()
            .any(|r| r.addr == IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    }

    #[test]
    fn the_spec_example_is_accepted() {
        let example: serde_json::Value =
            serde_json::from_str(include_str!("../../spec/examples/interception.json")).unwrap();
        let raw = serde_json::json!({"process": {"interception": example}});
        let p = from_config(&raw).unwrap().unwrap();
        let n = p.network.unwrap();
        assert_eq!(n.allow_unix.unwrap().len(), 2);
        assert_eq!(n.default, Verdict::Deny);
    }

    /// Found by the fuzz target (issue 21): a policy given in the annotation was refused
    /// naming `process.interception.…`, a field the config does not have, for its address
    /// rules, allowUnix, families and observe.
    #[test]
    fn refusals_of_the_annotation_name_the_annotation() {
        for (policy, part) in [
            (r#"{"network": {"allow": ["10.0.0.0/33"]}}"#, "network"),
            (r#"{"network": {"deny": ["x"]}}"#, "network"),
            (
                r#"{"network": {"allowUnix": ["rel.sock"]}}"#,
                "network.allowUnix",
            ),
            (
                r#"{"network": {"families": ["ipx"]}}"#,
                "network.families[0]",
            ),
            (r#"{"observe": ["read"]}"#, "observe[0]"),
        ] {
            let raw = serde_json::json!({"annotations": {ANNOTATION: policy}});
            let e = from_config(&raw).unwrap_err();
            let Error::Spec { field, .. } = &e else {
                panic!("{policy}: {e:?}");
            };
            assert_eq!(
                field,
                &format!("annotations.{ANNOTATION}: {part}"),
                "{policy}"
            );
            // The config field keeps its own name.
            let raw = serde_json::json!({"process": {"interception":
                serde_json::from_str::<serde_json::Value>(policy).unwrap()}});
            let e = from_config(&raw).unwrap_err().to_string();
            assert!(e.contains(&format!("process.interception.{part}")), "{e}");
        }
    }

    #[test]
    fn conflicts_and_bad_rules_are_refused() {
        let raw = serde_json::json!({"process": {"interception": {"network": {"allowUnix": ["x.sock"]}}}});
        let e = from_config(&raw).unwrap_err().to_string();
        assert!(e.contains("allowUnix") && e.contains("x.sock"), "{e}");
        let two = serde_json::json!({"process": {"interception": {"observe": ["execve"]}},
            "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/l.sock"}}});
        assert!(from_config(&two)
            .unwrap_err()
            .to_string()
            .contains("only one seccomp listener"));
        let both =
            serde_json::json!({"process": {"interception": {}}, "annotations": {ANNOTATION: "{}"}});
        assert!(from_config(&both).unwrap_err().to_string().contains("both"));
    }
}
