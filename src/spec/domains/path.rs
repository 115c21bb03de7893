//! The normalised request path that method/path rules match (issue 17; `http`), so that
//! `/v1/./files`, `/v1//files`, `/v1/%66iles` and `/v1/files` are one path.
//!
//! 1. The query (from the first `?`) is split off and kept as sent.
//! 2. Percent-escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`, RFC 3986 2.3) are decoded:
//!    every server reads `%66` as `f`, and `%2E` as the `.` of a dot-segment. Every other escape
//!    stays, with its hex digits in upper case; a `%` not followed by two hex digits becomes
//!    `%25`; a byte that may not stand in a path (space, `"`, `\`, `#`, non-ASCII, controls, ...)
//!    is escaped. The result is one spelling per path.
//! 3. `.` and `..` segments are resolved (RFC 3986 5.2.4; `..` never climbs above the root),
//!    and empty segments (`//`) are dropped; a trailing `/` is kept (`/v1/files/` is not
//!    `/v1/files` to most servers). Case is kept: paths are case-sensitive.
//!
//! Encoded separators stay encoded: `%2F` is not decoded to `/` (nor `%5C` to `\`). Decoding
//! would change which segments the path has, and so where `..` leads, in a way servers do not
//! agree on: most route `/repos/a%2Fb` as one segment `a/b` (GitLab's project ids, S3 keys), some
//! decode first, some refuse. Kept encoded, a rule written with `/` never matches across one,
//! and `quirks.encoded_separator` tells the proxy that the server might see a different path: a
//! host with path rules should refuse such a request rather than guess (the same for a raw `\`,
//! which some servers read as `/`, and for `;`, after which Java servers drop a path parameter).

/// A normalised request target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Normalized {
    /// Starts with `/`; no empty, `.` or `..` segment; escapes canonical.
    pub path: String,
    /// What followed the first `?`, as sent (`Some("")` for a bare `?`).
    pub query: Option<String>,
    pub quirks: Quirks,
}

/// Spellings that servers read differently; a host with path rules should refuse them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    /// `%2F` or `%5C`: a server that decodes before routing sees another segment structure.
    pub encoded_separator: bool,
    /// A raw `\` (escaped as `%5C` in `path`): read as `/` by some servers.
    pub backslash: bool,
    /// `;` or `%3B`: Java servers drop `;params` from a segment (`/..;/` is `/../` to Tomcat).
    pub semicolon: bool,
    /// An escaped control byte (`%00`..`%1F`, `%7F`): some servers cut the path there.
    pub encoded_control: bool,
}

impl Quirks {
    pub fn any(&self) -> bool {
        self.encoded_separator || self.backslash || self.semicolon || self.encoded_control
    }
}

/// The normalised path of an origin-form target (or of an absolute-form target's path part).
pub fn normalize_path(target: &str) -> String {
    normalize(target).path
}

/// The normalised path, the query kept separately, and the quirks seen.
pub fn normalize(target: &str) -> Normalized {
    let (raw, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    let mut quirks = Quirks::default();
    let escaped = canonical_escapes(raw.as_bytes(), &mut quirks);
    Normalized {
        path: resolve_segments(&escaped),
        query,
        quirks,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Bytes a path segment may hold unescaped besides unreserved ones (RFC 3986 3.3), and `/`.
fn is_path_char(b: u8) -> bool {
    is_unreserved(b) || b"!$&'()*+,;=:@/".contains(&b)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn push_escaped(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 15) as usize] as char);
}

/// Step 2: one spelling for every byte of the path.
fn canonical_escapes(raw: &[u8], quirks: &mut Quirks) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let decoded = match (b, raw.get(i + 1).copied(), raw.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) => hex(h).zip(hex(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match decoded {
            Some(d) => {
                i += 3;
                if is_unreserved(d) {
                    out.push(d as char);
                    continue;
                }
                quirks.encoded_separator |= d == b'/' || d == b'\\';
                quirks.semicolon |= d == b';';
                quirks.encoded_control |= d < 0x20 || d == 0x7f;
                push_escaped(&mut out, d);
            }
            None => {
                i += 1;
                quirks.backslash |= b == b'\\';
                quirks.semicolon |= b == b';';
                if is_path_char(b) {
                    out.push(b as char);
                } else {
                    push_escaped(&mut out, b); // a stray `%` becomes %25
                }
            }
        }
    }
    out
}

/// Step 3: dot-segments resolved, empty segments dropped, the trailing slash kept.
fn resolve_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing = false;
    for seg in path.split('/') {
        trailing = matches!(seg, "" | "." | "..");
        match seg {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for seg in &kept {
        out.push('/');
        out.push_str(seg);
    }
    if trailing || kept.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_17_spellings_are_one_path() {
        for t in [
            "/v1/files",
            "/v1/./files",
            "/v1//files",
            "/v1/%66iles",
            "/v1/%66%69%6c%65%73",
            "/v1/x/../files",
            "/v1/x/%2e%2E/files",
            "/v1/%2E/files",
            "//v1///files",
            "/../v1/files",
            "/v1/files?x=1",
            "v1/files",
        ] {
            assert_eq!(normalize_path(t), "/v1/files", "{t}");
        }
        assert_eq!(normalize_path("/V1/files"), "/V1/files", "case is kept");
    }

    #[test]
    fn normalisation_table() {
        #[rustfmt::skip]
        let table: &[(&str, &str)] = &[
            ("", "/"), ("/", "/"), ("//", "/"), (".", "/"), ("..", "/"), ("/..", "/"),
            ("/../..", "/"), ("/./", "/"), ("/a/", "/a/"), ("/a//", "/a/"), ("/a/.", "/a/"),
            ("/a/..", "/"), ("/a/b/..", "/a/"), ("/a/b/../", "/a/"), ("/a/b/../../..", "/"),
            ("/a/...", "/a/..."), ("/a/..b", "/a/..b"), ("/a/.b/", "/a/.b/"),
            ("/a%2Fb", "/a%2Fb"), ("/a%2fb", "/a%2Fb"), ("/a%2F..%2Fb", "/a%2F..%2Fb"),
            ("/a/%2E%2E%2Fb", "/a/..%2Fb"), ("/%7euser", "/~user"), ("/%41%5a%30%2D%5F", "/AZ0-_"),
            ("/a%20b", "/a%20b"), ("/a b", "/a%20b"), ("/a%zzb", "/a%25zzb"), ("/a%", "/a%25"),
            ("/a%4", "/a%254"), ("/a%25", "/a%25"), ("/a%2541", "/a%2541"),
            ("/a%3bb", "/a%3Bb"), ("/a;b", "/a;b"), ("/a\\b", "/a%5Cb"), ("/a#b", "/a%23b"),
            ("/é", "/%C3%A9"), ("/%c3%a9", "/%C3%A9"), ("/a%00b", "/a%00b"),
            ("/!$&'()*+,=:@", "/!$&'()*+,=:@"), ("/a?b/../c", "/a"), ("/%3F", "/%3F"),
        ];
        for (t, want) in table {
            assert_eq!(normalize_path(t), *want, "{t}");
        }
    }

    #[test]
    fn the_query_is_split_off_and_kept_as_sent() {
        let n = normalize("/v1/./files?a=%41&b=../x?y");
        assert_eq!(n.path, "/v1/files");
        assert_eq!(n.query.as_deref(), Some("a=%41&b=../x?y"));
        assert_eq!(normalize("/a?").query.as_deref(), Some(""));
        assert_eq!(normalize("/a").query, None);
    }

    #[test]
    fn quirks_name_what_servers_read_differently() {
        let q = |t: &str| normalize(t).quirks;
        assert!(!q("/v1/./files/%66?x=%2F;").any());
        assert!(q("/v1/a%2Fb").encoded_separator);
        assert!(q("/v1/a%5cb").encoded_separator);
        assert!(q("/v1/a\\b").backslash);
        assert!(q("/v1/..;/files").semicolon);
        assert!(q("/v1/a%3Bb").semicolon);
        assert!(q("/v1/a%00").encoded_control);
        assert!(q("/v1/a%7F").encoded_control);
        assert!(q("/v1/a%2F").any());
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for t in [
            "/a/%2e%2e/%2541/b%2f/./c//",
            "/x%zz/%E9/..;/~",
            "a/../../b/",
        ] {
            let once = normalize_path(t);
            assert_eq!(normalize_path(&once), once, "{t}");
        }
    }
}
