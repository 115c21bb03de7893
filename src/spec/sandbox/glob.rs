//! srt's path globs as its Linux back end reads them: compiled to a regular expression over the
//! whole path and expanded once, against the filesystem, into the entries that exist now.
//!
//! Syntax (srt's README, "Path Syntax"): `*` any run of characters but `/`, `**` any run
//! including `/` (`**/` also none at all: zero or more directories), `?` one character but
//! `/`, `[abc]`/`[a-z]` one character of the set (no negation: `!` and `^` are members), an
//! unclosed `[` a literal. Case-sensitive, as on Linux.
//!
//! The walk lists the pattern's static directory (what comes before the first wildcard) and
//! below it only as deep as the pattern can reach (everything, with a `**`). Symbolic links
//! are matched as entries and never descended (srt descends them for denyRead; here a link
//! that matches is reported and the runtime denies where it leads). A directory that cannot
//! be listed is reported in `unlisted` (a denyRead hides it whole, as srt does).

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use regex::bytes::Regex;

/// Characters that make a spelling a pattern (srt: the same four on Linux).
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', ']'])
}

/// The most entries one expansion may visit; past it the pattern is refused, never truncated
/// (a truncated deny would silently leave paths readable).
pub const VISIT_MAX: usize = 500_000;

/// The pattern's static directory: before the first wildcard, up to its last `/`. `None`
/// when that is `/` or nothing (srt skips such a pattern on Linux: nothing to start from).
pub fn base_dir(pattern: &str) -> Option<&str> {
    let first = pattern.find(['*', '?', '[', ']']).unwrap_or(pattern.len());
    let prefix = &pattern[..first];
    let base = &prefix[..prefix.rfind('/')?];
    (!base.is_empty()).then_some(base)
}

/// `pattern` as an anchored regular expression over a whole path.
pub fn to_regex(pattern: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < pattern.len() {
        let rest = &pattern[i..];
        if rest.starts_with("**/") {
            re.push_str("(?:(?s-u:.)*/)?");
            i += 3;
        } else if rest.starts_with("**") {
            re.push_str("(?s-u:.)*");
            i += 2;
        } else if b[i] == b'*' {
            re.push_str("(?-u:[^/])*");
            i += 1;
        } else if b[i] == b'?' {
            re.push_str("(?-u:[^/])");
            i += 1;
        } else if b[i] == b'[' {
            match rest[1..].find(']') {
                Some(end) if end > 0 => {
                    re.push('[');
                    for c in rest[1..=end].chars() {
                        if c == '-' {
                            re.push('-');
                        } else {
                            re.push_str(&regex::escape(&c.to_string()));
                        }
                    }
                    re.push(']');
                    i += end + 2;
                }
                _ => {
                    re.push_str(r"\[");
                    i += 1;
                }
            }
        } else {
            let c = rest.chars().next().unwrap_or_default();
            re.push_str(&regex::escape(&c.to_string()));
            i += c.len_utf8();
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| format!("not a valid pattern: {e}"))
}

/// What one expansion found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Entries the whole pattern matches.
    pub matches: Vec<PathBuf>,
    /// Directories (or links to one) the directory form (`dir_form`) matches, each with
    /// whether something beneath it matches the whole pattern.
    pub dir_matches: Vec<(PathBuf, bool)>,
    /// Directories under the base that could not be listed (the base itself included).
    pub unlisted: Vec<PathBuf>,
}

/// Lists `base` and below for `pattern` (and its directory form, the pattern without a
/// trailing `/**`, when `dir_form` is set). `Err` when the expansion passes `VISIT_MAX`.
pub fn walk(base: &str, pattern: &str, dir_form: Option<&str>) -> Result<Walk, String> {
    let full = to_regex(pattern)?;
    let dir_re = dir_form.map(to_regex).transpose()?;
    // Without `**` (or a class that could hold `/`), a match has as many components below
    // the base as the pattern has: nothing deeper is listed.
    let unbounded = pattern.contains("**") || pattern.contains("[/");
    let depth_max = pattern[base.len()..].matches('/').count();
    let mut out = Walk::default();
    let mut visited = 0usize;
    let mut stack = vec![(PathBuf::from(base), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if is_absence(&e) => continue,
            Err(_) => {
                out.unlisted.push(dir);
                continue;
            }
        };
        for entry in entries {
            let Ok(entry) = entry else {
                out.unlisted.push(dir.clone());
                break;
            };
            visited += 1;
            if visited > VISIT_MAX {
                return Err(format!(
                    "the pattern reaches more than {VISIT_MAX} entries under {base}: name \
                     the directories instead"
                ));
            }
            let path = dir.join(entry.file_name());
            let bytes = path.as_os_str().as_bytes();
            let ty = entry.file_type().ok();
            let is_dir = ty.is_some_and(|t| t.is_dir());
            let is_link = ty.is_some_and(|t| t.is_symlink());
            if full.is_match(bytes) {
                out.matches.push(path.clone());
            }
            if let Some(re) = &dir_re {
                let dir_like = is_dir || (is_link && path.is_dir());
                if dir_like && re.is_match(bytes) {
                    out.dir_matches.push((path.clone(), false));
                }
            }
            if is_dir && (unbounded || depth + 1 < depth_max) {
                stack.push((path, depth + 1));
            }
        }
    }
    for (dir, holds) in &mut out.dir_matches {
        *holds = out
            .matches
            .iter()
            .any(|m| m.parent() == Some(dir.as_path()));
    }
    out.matches.sort();
    out.dir_matches.sort();
    out.unlisted.sort();
    Ok(out)
}

/// An error that means there is nothing at that name (as opposed to something that could not
/// be looked at).
pub fn is_absence(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ENAMETOOLONG)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        to_regex(pattern).unwrap().is_match(path.as_bytes())
    }

    #[test]
    fn wildcards_mean_what_srt_documents() {
        assert!(m("/a/*.ts", "/a/foo.ts"));
        assert!(!m("/a/*.ts", "/a/b/foo.ts"));
        assert!(m("/a/**/*.ts", "/a/foo.ts"));
        assert!(m("/a/**/*.ts", "/a/b/c/foo.ts"));
        assert!(m("/a/**", "/a/b/c"));
        assert!(m("/a/file?.txt", "/a/file1.txt"));
        assert!(!m("/a/file?.txt", "/a/file/.txt"));
        assert!(m("/a/file[0-9].txt", "/a/file3.txt"));
        assert!(!m("/a/file[0-9].txt", "/a/filex.txt"));
        // No negation: `^` and `!` are members of the set.
        assert!(m("/a/[^x]", "/a/^"));
        assert!(m("/a/[!x]", "/a/!"));
        // An unclosed `[` and regex syntax are literal.
        assert!(m("/a/[b", "/a/[b"));
        assert!(m("/a/b.c+(d)", "/a/b.c+(d)"));
        assert!(!m("/a/b.c", "/a/bxc"));
        assert!(m("/a/.*", "/a/.env"));
    }

    #[test]
    fn base_is_the_static_directory() {
        assert_eq!(base_dir("/a/b/*.pem"), Some("/a/b"));
        assert_eq!(base_dir("/a/b/c*/d"), Some("/a/b"));
        assert_eq!(base_dir("/**/*.pem"), None);
        assert_eq!(base_dir("/opt*/keys"), None);
    }

    #[test]
    fn walk_lists_only_as_deep_as_the_pattern() {
        let t = tempdir();
        let d = t.as_path();
        std::fs::create_dir_all(d.join("x/certs/deep")).unwrap();
        std::fs::write(d.join("x/certs/a.pem"), "").unwrap();
        std::fs::write(d.join("x/certs/deep/b.pem"), "").unwrap();
        let base = d.to_str().unwrap();
        let w = walk(base, &format!("{base}/*/certs/*.pem"), None).unwrap();
        assert_eq!(w.matches, vec![d.join("x/certs/a.pem")]);
        let w = walk(base, &format!("{base}/**/*.pem"), None).unwrap();
        assert_eq!(
            w.matches,
            vec![d.join("x/certs/a.pem"), d.join("x/certs/deep/b.pem")]
        );
        let w = walk(
            base,
            &format!("{base}/**/certs/**"),
            Some(&format!("{base}/**/certs")),
        )
        .unwrap();
        assert_eq!(w.dir_matches, vec![(d.join("x/certs"), true)]);
        std::fs::remove_dir_all(d).unwrap();
    }

    pub(crate) fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ward-sandbox-glob-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}
