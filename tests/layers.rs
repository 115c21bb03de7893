//! The layers of src/ (README "Layout"): every import points down, and no modules import each
//! other in a ring. Run by `make lint` (`cargo test --test layers`); needs nothing but the tree.
//!
//! Reads every `use crate::…`/`super::…`/`self::…` tree and every inline `crate::…`/`super::…`
//! path of the library's files (and of the binary's, src/main.rs and src/cli/), maps each to
//! the module file it names (the longest prefix that is a file), and fails on:
//! 1. an import a top-level module may not make (`LAYERS`: what each layer may import);
//! 2. a cycle among the children of any module, the crate root included: two sibling modules
//!    (with everything inside them) may not use each other, directly or around a ring. A module
//!    and its own parts may use each other (`mounts` and `mounts::cgroupfs`).
//!
//! Unit tests (`#[cfg(test)] mod …`, inline or in their own file) are left out: a test may
//! import anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module of the library may import, bottom to top. A new top-level module
/// must be added here (and to README's Layout).
const LAYERS: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("logging", &["error"]),
    ("spec", &["error"]),
    ("sys", &["error"]),
    ("policy", &["error", "logging", "spec", "sys"]),
    ("init", &["error", "logging", "spec", "sys", "policy"]),
    (
        "container",
        &["error", "logging", "spec", "sys", "policy", "init"],
    ),
    ("platform", &["error", "logging", "spec", "sys"]),
];

type Module = Vec<String>;

/// One import: the module whose file holds it, where, and the module it names.
#[derive(Debug)]
struct Edge {
    from: Module,
    to: Module,
    at: String,
}

/// A crate's files: module path -> (file name for messages, text).
type Files = BTreeMap<Module, (String, String)>;

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// Comments, string and char literals blanked (newlines kept, so line numbers stay right).
fn clean(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_at(&b, i) {
            // A raw string r"…", r#"…"#: ends at a quote followed by as many hashes.
            let mut j = i + 1;
            while b.get(j) == Some(&'#') {
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            j += 1;
            while j < b.len() && !(b[j] == '"' && (1..=hashes).all(|k| b.get(j + k) == Some(&'#')))
            {
                j += 1;
            }
            let end = (j + 1 + hashes).min(b.len());
            for &ch in &b[i..end] {
                blank(&mut out, ch);
            }
            i = end;
        } else if c == '"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != '"' {
                j += if b[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            for &ch in &b[i..end] {
                blank(&mut out, ch);
            }
            i = end;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\''), or else a lifetime, left as it is.
            let end = if next == Some('\\') {
                (i + 2..b.len()).find(|&j| b[j] == '\'' && j > i + 2)
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    for &ch in &b[i..=e] {
                        blank(&mut out, ch);
                    }
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether the character before `i` continues an identifier (so `b[i]` does not start a word).
fn ident_at(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// The text without `#[cfg(test)] mod name { … }` blocks, and the names of `#[cfg(test)] mod
/// name;` files.
fn without_tests(text: &str) -> (String, Vec<String>) {
    let mut out = text.to_string();
    let mut skipped = Vec::new();
    let mut from = 0;
    while let Some(pos) = out[from..].find("#[cfg(test)]").map(|p| p + from) {
        let rest = &out[pos + "#[cfg(test)]".len()..];
        let trimmed = rest.trim_start();
        let Some(after) = trimmed.strip_prefix("mod ") else {
            from = pos + 1;
            continue;
        };
        let ident: String = after
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let after_ident = after.trim_start()[ident.len()..].trim_start();
        if after_ident.starts_with(';') {
            skipped.push(ident);
            from = pos + 1;
            continue;
        }
        // Blank the block, keeping newlines.
        let open = pos + out[pos..].find('{').unwrap_or(0);
        let mut depth = 0;
        let mut end = out.len();
        for (k, ch) in out[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let blanked: String = out[pos..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(pos..end, &blanked);
        from = end;
    }
    (out, skipped)
}

/// Expands a use tree (`a::{b, c::d as e}`) into paths.
fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let mut parts = Vec::new();
    let (mut depth, mut cur) = (0, String::new());
    for ch in tree.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if ch == ',' && depth == 0 {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    parts.push(cur);
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if let (Some(open), true) = (part.find('{'), part.ends_with('}')) {
            let head = &part[..open];
            let mut p = prefix.to_vec();
            p.extend(segments(head));
            expand(&p, &part[open + 1..part.len() - 1], out);
        } else {
            let path = part.split(" as ").next().unwrap_or(part);
            let mut p = prefix.to_vec();
            p.extend(segments(path));
            out.push(p);
        }
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s != "*")
        .collect()
}

/// Every path (starting with crate, super or self) a cleaned file names, with its line.
fn paths(text: &str) -> Vec<(usize, Vec<String>)> {
    let b: Vec<char> = text.chars().collect();
    let line_of = |i: usize| b[..i].iter().filter(|c| **c == '\n').count() + 1;
    let word_at = |i: usize, w: &str| {
        !ident_at(&b, i)
            && b[i..].iter().take(w.len()).copied().eq(w.chars())
            && !matches!(b.get(i + w.len()), Some(c) if c.is_alphanumeric() || *c == '_')
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if word_at(i, "use") {
            let end = (i..b.len()).find(|&j| b[j] == ';').unwrap_or(b.len());
            let tree: String = b[i + 3..end].iter().collect();
            let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
            let mut found = Vec::new();
            expand(&[], &tree, &mut found);
            out.extend(
                found
                    .into_iter()
                    .filter(|p| {
                        p.first()
                            .is_some_and(|s| s == "crate" || s == "super" || s == "self")
                    })
                    .map(|p| (line_of(i), p)),
            );
            i = end;
        } else if word_at(i, "crate") || word_at(i, "super") {
            let mut j = i;
            while j < b.len() && (b[j].is_alphanumeric() || b[j] == '_' || b[j] == ':') {
                j += 1;
            }
            let path: String = b[i..j].iter().collect();
            if path.contains("::") {
                out.push((line_of(i), segments(&path)));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The module a path names: the longest prefix of it that is a file of the crate.
fn resolve(files: &Files, here: &[String], path: &[String]) -> Option<Module> {
    let (mut base, mut rest): (Module, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("self") => (here.to_vec(), &path[1..]),
        Some("super") => (here[..here.len().saturating_sub(1)].to_vec(), &path[1..]),
        _ => return None,
    };
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    (0..=base.len())
        .rev()
        .map(|k| base[..k].to_vec())
        .find(|m| files.contains_key(m))
}

fn edges(files: &Files) -> Vec<Edge> {
    let mut out = Vec::new();
    for (module, (file, text)) in files {
        for (line, path) in paths(text) {
            if let Some(to) = resolve(files, module, &path) {
                out.push(Edge {
                    from: module.clone(),
                    to,
                    at: format!("{file}:{line}"),
                });
            }
        }
    }
    out
}

/// Cycles among the children of every module; each as "a -> b (file:line) -> a (…)".
fn cycles(edges: &[Edge]) -> Vec<String> {
    // parent -> child -> child -> example import
    let mut graphs: BTreeMap<Module, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    for e in edges {
        let common = e.from.iter().zip(&e.to).take_while(|(a, b)| a == b).count();
        if common == e.from.len() || common == e.to.len() {
            continue; // a module and its own parts
        }
        graphs
            .entry(e.from[..common].to_vec())
            .or_default()
            .entry(e.from[common].clone())
            .or_default()
            .entry(e.to[common].clone())
            .or_insert_with(|| format!("{} uses {} at {}", name(&e.from), name(&e.to), e.at));
    }
    let mut found = Vec::new();
    for (parent, graph) in &graphs {
        let mut done = BTreeSet::new();
        for start in graph.keys() {
            let mut stack = vec![start.clone()];
            if let Some(ring) = ring(graph, &mut stack, &mut done) {
                let steps: Vec<&str> = ring
                    .windows(2)
                    .map(|w| graph[&w[0]][&w[1]].as_str())
                    .collect();
                found.push(format!(
                    "cycle in {}: {}\n    {}",
                    name(parent),
                    ring.join(" -> "),
                    steps.join("\n    ")
                ));
                done.extend(ring);
            }
        }
    }
    found
}

/// Depth-first search from the top of `stack`; a ring found is returned closed (a, b, a).
fn ring(
    graph: &BTreeMap<String, BTreeMap<String, String>>,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    let top = stack.last().cloned()?;
    if done.contains(&top) {
        return None;
    }
    for next in graph.get(&top).into_iter().flat_map(|m| m.keys()) {
        if let Some(k) = stack.iter().position(|s| s == next) {
            let mut r = stack[k..].to_vec();
            r.push(next.clone());
            return Some(r);
        }
        stack.push(next.clone());
        let r = ring(graph, stack, done);
        stack.pop();
        if r.is_some() {
            return r;
        }
    }
    done.insert(top);
    None
}

/// Imports across top-level modules that `LAYERS` does not allow.
fn upward(edges: &[Edge]) -> Vec<String> {
    let mut found = Vec::new();
    let mut unknown = BTreeSet::new();
    for e in edges {
        let (Some(from), Some(to)) = (e.from.first(), e.to.first()) else {
            continue;
        };
        if from == to {
            continue;
        }
        match LAYERS.iter().find(|(m, _)| m == from) {
            None => {
                unknown.insert(from.clone());
            }
            Some((_, allowed)) if !allowed.contains(&to.as_str()) => found.push(format!(
                "{} uses {} at {}: layer {from} may import only {allowed:?}",
                name(&e.from),
                name(&e.to),
                e.at
            )),
            Some(_) => {}
        }
    }
    found.extend(
        unknown
            .into_iter()
            .map(|m| format!("top-level module {m} is in no layer: add it to LAYERS and README")),
    );
    found
}

/// The files of one crate: `root` (lib.rs or main.rs) and the module files under `dirs`.
fn load(src: &Path, root: &str, include: &dyn Fn(&Path) -> bool) -> Files {
    let mut files = Files::new();
    let mut skipped: BTreeSet<Module> = BTreeSet::new();
    let mut todo = vec![src.to_path_buf()];
    let mut all: Vec<PathBuf> = Vec::new();
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                all.push(p);
            }
        }
    }
    all.sort();
    for p in all {
        let rel = p.strip_prefix(src).expect("under src");
        let is_root = rel == Path::new(root);
        if !is_root
            && (rel.parent() == Some(Path::new(""))
                && rel.file_stem().is_some_and(|s| s == "lib" || s == "main"))
        {
            continue;
        }
        if !is_root && !include(rel) {
            continue;
        }
        let mut module: Module = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if is_root {
            module.clear();
        } else if module.last().is_some_and(|s| s == "mod") {
            module.pop();
        }
        let text = std::fs::read_to_string(&p).expect("read source");
        let (text, tests) = without_tests(&clean(&text));
        for t in tests {
            let mut m = module.clone();
            m.push(t);
            skipped.insert(m);
        }
        files.insert(module, (format!("src/{}", rel.display()), text));
    }
    files.retain(|m, _| !skipped.iter().any(|s| m.starts_with(s)));
    files
}

fn check(files: &Files, layered: bool) -> Vec<String> {
    let e = edges(files);
    let mut problems = cycles(&e);
    if layered {
        problems.extend(upward(&e));
    }
    problems
}

#[test]
fn src_has_layers_and_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = load(&src, "lib.rs", &|rel| !rel.starts_with("cli"));
    let bin = load(&src, "main.rs", &|rel| rel.starts_with("cli"));
    // The parser must see the imports, or this test would pass on anything.
    let seen = edges(&lib).len();
    assert!(
        seen > 200,
        "only {seen} imports found in the library: the parser is broken"
    );
    assert!(lib.contains_key(&vec!["container".to_string(), "create".to_string()]));
    let mut problems = check(&lib, true);
    problems.extend(check(&bin, false));
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

fn tree(files: &[(&str, &str)]) -> Files {
    files
        .iter()
        .map(|(m, text)| {
            let module: Module = m
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            let (text, _) = without_tests(&clean(text));
            (module, (format!("{m}.rs"), text))
        })
        .collect()
}

#[test]
fn a_ring_of_siblings_is_found() {
    let files = tree(&[
        ("", "pub mod policy; pub mod sys;"),
        ("policy", "pub mod a; pub mod b;"),
        ("policy::a", "use crate::policy::b::{self, X};"),
        ("policy::b", "fn f() { super::c::g() }"),
        ("policy::c", "use super::a::Y;"),
        ("sys", ""),
    ]);
    let p = check(&files, true);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("cycle in policy: a -> b -> c -> a"),
        "{}",
        p[0]
    );
}

#[test]
fn an_upward_import_is_found_and_parts_may_use_their_module() {
    let files = tree(&[
        ("", ""),
        ("sys", "pub use crate::policy::seccomp as s; // crate::container\n"),
        ("policy", ""),
        ("policy::seccomp", "use super::*; const S: &str = \"crate::init\";"),
        ("policy::seccomp::bpf", "use crate::policy::seccomp::Asm;"),
        (
            "spec",
            "#[cfg(test)]\nmod tests { use crate::container::X; }\nfn f(c: char) -> bool { c == '\"' }",
        ),
        ("container", ""),
    ]);
    let p = check(&files, true);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("sys uses policy::seccomp at sys.rs:1"),
        "{}",
        p[0]
    );
}
