//! Golden profiles (spec/golden/seatbelt), a structural check of every profile, and the refused
//! fields. Regenerate the goldens with `WARD_BLESS=1 cargo test platform::seatbelt`, then read
//! the diff.

use std::path::PathBuf;

use super::{plan, KNOWN_FILTERS, KNOWN_OPERATIONS};
use crate::platform::{Context, PlatformError};

fn ctx(name: &str) -> Context {
    Context {
        id: "golden".into(),
        bundle: PathBuf::from(format!("/bundles/{name}")),
        state_dir: PathBuf::from("/run/ward/golden"),
        loopback_ports: if name == "masked" {
            vec![5432]
        } else {
            Vec::new()
        },
    }
}

const CASES: &[(&str, &str, &str)] = &[
    (
        "default",
        include_str!("../../../spec/templates/config.json"),
        include_str!("../../../spec/golden/seatbelt/default.sb"),
    ),
    (
        "writable-root",
        include_str!("../../../spec/golden/seatbelt/writable-root.json"),
        include_str!("../../../spec/golden/seatbelt/writable-root.sb"),
    ),
    (
        "mounts",
        include_str!("../../../spec/golden/seatbelt/mounts.json"),
        include_str!("../../../spec/golden/seatbelt/mounts.sb"),
    ),
    (
        "masked",
        include_str!("../../../spec/golden/seatbelt/masked.json"),
        include_str!("../../../spec/golden/seatbelt/masked.sb"),
    ),
    (
        "host-network",
        include_str!("../../../spec/golden/seatbelt/host-network.json"),
        include_str!("../../../spec/golden/seatbelt/host-network.sb"),
    ),
    (
        "refused-allowed",
        include_str!("../../../spec/golden/seatbelt/refused-allowed.json"),
        include_str!("../../../spec/golden/seatbelt/refused-allowed.sb"),
    ),
];

fn profile_of(name: &str, config: &str) -> Result<String, PlatformError> {
    let spec = serde_json::from_str(config).expect("golden config parses");
    plan(&spec, &ctx(name)).map(|p| p.profile)
}

#[test]
fn golden_profiles() {
    let bless = std::env::var_os("WARD_BLESS").is_some();
    for (name, config, expected) in CASES {
        let got = profile_of(name, config).unwrap_or_else(|e| panic!("{name}: {e}"));
        if bless {
            let path = format!(
                "{}/spec/golden/seatbelt/{name}.sb",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::write(path, &got).expect("write golden");
        } else {
            assert_eq!(
                &got, expected,
                "{name}: profile differs from spec/golden/seatbelt/{name}.sb"
            );
        }
        check_structure(&got).unwrap_or_else(|e| panic!("{name}: {e}\n{got}"));
    }
}

/// An s-expression of the profile: atoms (symbols, numbers, strings) and lists.
#[derive(Debug)]
enum Sexp {
    Atom(String),
    Str(String),
    List(Vec<Sexp>),
}

fn parse(text: &str) -> Result<Vec<Sexp>, String> {
    let mut stack: Vec<Vec<Sexp>> = vec![Vec::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ';' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '(' => stack.push(Vec::new()),
            ')' => {
                let list = stack.pop().ok_or("unbalanced )")?;
                stack
                    .last_mut()
                    .ok_or("unbalanced )")?
                    .push(Sexp::List(list));
            }
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next().ok_or("unterminated string")? {
                        '\\' => s.push(chars.next().ok_or("dangling escape")?),
                        '"' => break,
                        c => s.push(c),
                    }
                }
                stack.last_mut().ok_or("no list")?.push(Sexp::Str(s));
            }
            c if c.is_whitespace() => {}
            c => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || n == '(' || n == ')' || n == '"' {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                stack.last_mut().ok_or("no list")?.push(Sexp::Atom(s));
            }
        }
        if stack.is_empty() {
            return Err("unbalanced )".into());
        }
    }
    if stack.len() != 1 {
        return Err(format!("{} unclosed (", stack.len() - 1));
    }
    Ok(stack.pop().unwrap_or_default())
}

/// Balanced, `(version 1)` first, then only allow/deny rules made of known operations and
/// known filters whose arguments are strings, symbols or nested filters.
fn check_structure(profile: &str) -> Result<(), String> {
    let forms = parse(profile)?;
    match forms.first() {
        Some(Sexp::List(v)) if matches!(v.as_slice(), [Sexp::Atom(a), Sexp::Atom(b)] if a == "version" && b == "1") =>
            {}
        other => return Err(format!("first form is not (version 1): {other:?}")),
    }
    for form in &forms[1..] {
        let Sexp::List(items) = form else {
            return Err(format!("top-level atom {form:?}"));
        };
        match items.first() {
            Some(Sexp::Atom(a)) if a == "allow" || a == "deny" => {}
            other => return Err(format!("not a rule: {other:?}")),
        }
        let (mut ops, mut filters) = (0, false);
        for item in &items[1..] {
            match item {
                Sexp::Atom(op) if !filters => {
                    if !KNOWN_OPERATIONS.contains(&op.as_str()) {
                        return Err(format!("unknown operation {op}"));
                    }
                    ops += 1;
                }
                Sexp::List(f) if ops > 0 => {
                    filters = true;
                    check_filter(f)?;
                }
                other => return Err(format!("misplaced {other:?}")),
            }
        }
        if ops == 0 {
            return Err("rule without operation".into());
        }
    }
    Ok(())
}

fn check_filter(f: &[Sexp]) -> Result<(), String> {
    let Some(Sexp::Atom(name)) = f.first() else {
        return Err(format!("filter without name {f:?}"));
    };
    if !KNOWN_FILTERS.contains(&name.as_str()) {
        return Err(format!("unknown filter {name}"));
    }
    for arg in &f[1..] {
        match arg {
            Sexp::List(inner) if name.starts_with("require-") => check_filter(inner)?,
            Sexp::List(_) => return Err(format!("nested list in {name}")),
            Sexp::Str(s) if s.chars().any(char::is_control) => {
                return Err("control character".into())
            }
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn structure_check_catches_breakage() {
    assert!(check_structure("(version 1)\n(allow file-read* (subpath \"/a\")").is_err());
    assert!(check_structure("(version 1)\n(allow file-frobnicate (subpath \"/a\"))").is_err());
    assert!(check_structure("(version 1)\n(allow file-read* (glob \"/a\"))").is_err());
    assert!(check_structure("(version 1)\n(allow file-read* (subpath \"/a\")))").is_err());
    assert!(check_structure("(version 1)\n(allow file-read* (subpath \"/a\"))").is_ok());
}

#[test]
fn quoted_paths_cannot_escape_their_literal() {
    let config = include_str!("../../../spec/golden/seatbelt/mounts.json");
    let profile = profile_of("mounts", config).expect("translates");
    let forms = parse(&profile).expect("parses");
    let mut all = Vec::new();
    forms.iter().for_each(|f| strings(f, &mut all));
    assert!(
        all.iter().any(|s| s == "/private/tmp/a \"quoted\" \\ dir"),
        "{all:?}"
    );
}

fn strings(f: &Sexp, out: &mut Vec<String>) {
    match f {
        Sexp::Str(s) => out.push(s.clone()),
        Sexp::List(l) => l.iter().for_each(|x| strings(x, out)),
        Sexp::Atom(_) => {}
    }
}

#[test]
fn refused_fields_fail_with_their_names() {
    let config = include_str!("../../../spec/golden/seatbelt/refused.json");
    let err = profile_of("refused", config).expect_err("refused");
    let mut fields = err.refused_fields();
    fields.sort_unstable();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "linux.devices",
            "linux.resources.devices",
            "linux.resources.memory",
            "linux.resources.pids",
            "linux.seccomp",
            "linux.uidMappings",
            "process.capabilities",
            "process.rlimits",
        ]
    );
    let msg = err.to_string();
    assert!(msg.contains("org.ward.darwin.allow-unenforced"), "{msg}");
    assert!(msg.contains("CAP_SYS_ADMIN"), "{msg}");
}

#[test]
fn unknown_fields_and_control_characters_are_refused() {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../../spec/templates/config.json")).expect("json");
    v["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_KILL"});
    let found = super::classify(&v);
    assert!(found.refused.iter().any(|(f, _)| f == "linux.seccomp"));
    v["root"]["path"] = serde_json::json!("root\nfs");
    v["linux"]["seccomp"] = serde_json::Value::Null;
    let spec = serde_json::from_value(v).expect("spec");
    let err = plan(&spec, &ctx("x")).expect_err("control character");
    assert!(err.to_string().contains("control character"), "{err}");
}

#[test]
fn every_table_row_is_documented() {
    let doc = include_str!("../../../spec/platforms.md");
    for (path, rule) in super::classify::TABLE {
        if matches!(rule, super::classify::Rule::Walk) {
            continue; // an object whose fields have their own rows
        }
        assert!(
            doc.contains(&format!("`{path}`")),
            "spec/platforms.md does not classify `{path}`"
        );
    }
}

#[test]
fn plan_moves_process_under_the_root() {
    let config = include_str!("../../../spec/golden/seatbelt/writable-root.json");
    let spec = serde_json::from_str(config).expect("spec");
    let p = plan(&spec, &ctx("writable-root")).expect("plan");
    assert_eq!(p.cwd, "/bundles/writable-root/rootfs/srv");
    assert!(p
        .env
        .iter()
        .any(|e| e.starts_with("PATH=/bundles/writable-root/rootfs/usr/local/sbin:")));
    assert_eq!(p.rlimits, vec![(8, 1024, 1024)]);
    assert_eq!(p.args, ["/bin/app", "--serve"]);
}
