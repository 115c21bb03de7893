//! srt's settings file on generated inputs (`crate::fuzzkit`): random bytes and JSON, srt's
//! README example and fuller files mutated as text and as structure, against a scratch tree
//! (home, and a project as the cwd, deep enough that `..` rarely climbs out of it: globs are
//! expanded against the filesystem). Properties: no panic, every call within the kit's bound,
//! every error names the file and its field (a key the file has, or one srt requires), and an
//! accepted file yields absolute paths and warnings that say they are settings warnings.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::parse;
use crate::error::Error;
use crate::fuzzkit::{file_text, run};
use crate::spec::fuzz::assert_names_field;

/// A scratch tree, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new() -> Tree {
        let root = std::env::temp_dir().join(format!("ward-fuzz-srt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let proj = "d/d/d/d/d/d/d/d/proj";
        for d in ["home/.ssh", "home/.aws"].iter().chain(&[proj]) {
            std::fs::create_dir_all(root.join(d)).expect("scratch dir");
        }
        for d in ["src/x", "build", "secrets"] {
            std::fs::create_dir_all(root.join(proj).join(d)).expect("scratch dir");
        }
        for f in ["home/.ssh/id", "home/.netrc"] {
            std::fs::write(root.join(f), "x").expect("scratch file");
        }
        for f in [".env", "src/x/a.rs", "secrets/k.pem", "build/out"] {
            std::fs::write(root.join(proj).join(f), "x").expect("scratch file");
        }
        let _ = std::os::unix::fs::symlink("/", root.join(proj).join("to-root"));
        let _ = std::os::unix::fs::symlink("src", root.join(proj).join("to-src"));
        Tree(std::fs::canonicalize(&root).expect("scratch root"))
    }
    fn home(&self) -> PathBuf {
        self.0.join("home")
    }
    fn cwd(&self) -> PathBuf {
        self.0.join("d/d/d/d/d/d/d/d/proj")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn samples() -> Vec<Value> {
    vec![
        json!({"network": {"allowedDomains": ["github.com", "*.npmjs.org"], "deniedDomains": [],
                           "allowUnixSockets": ["/var/run/docker.sock"], "allowLocalBinding": false},
               "filesystem": {"denyRead": ["~/.ssh"], "allowRead": [], "allowWrite": [".", "src/"],
                              "denyWrite": [".env"]},
               "ignoreViolations": {"*": ["/usr/bin"]}, "enableWeakerNestedSandbox": false}),
        json!({"network": {"allowedDomains": ["api.example.com", "pypi.org:443"],
                           "deniedDomains": ["evil.test"],
                           "deniedDomainReasons": {"evil.test": "blocked"},
                           "deniedResolvedAddresses": ["10.0.0.0/8", "fc00::/7"],
                           "allowAllUnixSockets": true, "httpProxyPort": 3128},
               "filesystem": {"denyRead": ["~/.aws/**", "secrets/*.pem", "**/*.pem", "./src/**"],
                              "allowRead": ["src/x"], "allowWrite": ["build", "to-src", "to-root"],
                              "denyWrite": ["src/x/a.rs", "new/file"], "allowGitConfig": true},
               "credentials": {"envVars": [{"name": "GH_TOKEN", "mode": "mask"}],
                               "files": [{"path": "~/.netrc", "mode": "mask",
                                          "extract": "password (\\S+)"}]}}),
        json!({"network": {"allowedDomains": [], "deniedDomains": []},
               "filesystem": {"denyRead": ["/"], "allowWrite": ["~", "../../x"], "denyWrite": []},
               "ripgrep": {"command": "rg"}, "seccomp": {}, "git": true}),
    ]
}

const WORDS: &[&str] = &[
    "network",
    "filesystem",
    "credentials",
    "allowedDomains",
    "deniedDomains",
    "deniedDomainReasons",
    "deniedResolvedAddresses",
    "allowUnixSockets",
    "allowAllUnixSockets",
    "allowLocalBinding",
    "denyRead",
    "allowRead",
    "allowWrite",
    "denyWrite",
    "allowGitConfig",
    "disabled",
    "envVars",
    "files",
    "path",
    "name",
    "mode",
    "mask",
    "~",
    "~/",
    "~/.ssh",
    ".",
    "src",
    "src/**",
    "*.pem",
    "**",
    "[a-",
    "?",
    "to-root",
    "to-src",
    "build",
    "github.com",
    "*.com",
    "10.0.0.0/33",
    "::1/128",
    "strictAllowlist",
];

/// The field is the file's, then a key path whose first key the file has, or that srt
/// requires; the file alone when it is empty, not JSON (with where it breaks), or not an object.
fn check_error(e: &Error, text: &str) {
    let field = assert_names_field(e, &["s.json"]);
    let Error::Spec { msg, .. } = e else {
        return;
    };
    let Some(path) = field.strip_prefix("s.json: ") else {
        let said = msg.contains("empty") || msg.contains(" line ") || msg.contains("object");
        assert!(said, "{e}\n{text:.2000}");
        return;
    };
    let first = path.split(['.', '[']).next().unwrap_or_default();
    let root: Option<Value> = serde_json::from_str(text).ok();
    let present = root.as_ref().and_then(|r| r.get(first)).is_some();
    assert!(
        present || path == "network" || path == "filesystem",
        "{field:?} names a key the file does not have: {e}\n{text:.2000}"
    );
}

#[test]
fn fuzz_srt_settings() {
    let tree = Tree::new();
    let (home, cwd) = (tree.home(), tree.cwd());
    let samples = samples();
    let stats = run("srt-settings", |c| {
        let text = file_text(&mut c.rng, &samples, WORDS);
        let home: &Path = if c.rng.one_in(20) {
            Path::new("")
        } else {
            &home
        };
        match c.call(|| parse(&text, Path::new("s.json"), home, &cwd)) {
            Ok(s) => {
                let fs = &s.filesystem;
                for p in fs
                    .deny_read
                    .iter()
                    .chain(&fs.allow_read)
                    .chain(&fs.allow_write)
                {
                    assert!(p.is_absolute(), "{p:?}");
                }
                for p in fs.deny_write.iter().chain(&s.network.allow_unix_sockets) {
                    assert!(p.is_absolute(), "{p:?}");
                }
                for w in &s.warnings {
                    assert!(w.starts_with("settings: "), "{w}");
                }
                "ok"
            }
            Err(e) => {
                check_error(&e, &text);
                "refused"
            }
        }
    });
    stats.assert_reaches(&["ok", "refused"]);
}

/// srt's globs alone (`glob::to_regex`, `glob::base_dir`), on pattern text from pieces: no
/// panic, bounded time, and a pattern matches every path it describes (each `**`, `*`, `?`
/// filled in) and, without wildcards, itself only.
#[test]
fn fuzz_srt_glob() {
    use super::super::glob::{base_dir, has_glob, to_regex};
    const PIECES: &[&str] = &[
        "a", "b", "/", "/", "*", "**", "**/", "?", ".", "-", "é", "\\", "(", "+", "$", "^", "[",
        "]", "[a-z]", "[!x]", "[z-a]", "{", "}", "|",
    ];
    let stats = run("srt-glob", |c| {
        let pattern = c.rng.text(PIECES, 12);
        if let Some(base) = base_dir(&pattern) {
            assert!(pattern.starts_with(base) && !has_glob(base), "{pattern:?}");
        }
        let re = match c.call(|| to_regex(&pattern)) {
            Ok(re) => re,
            Err(why) => {
                assert!(!why.is_empty());
                return "refused";
            }
        };
        if pattern.contains(['[', ']']) {
            return "compiled";
        }
        // One path the pattern describes.
        let mut path = String::new();
        let mut rest = pattern.as_str();
        while let Some(ch) = rest.chars().next() {
            let (fill, used) = if rest.starts_with("**/") {
                (*c.rng.pick(&["", "d/", "d/e/"]), 3)
            } else if rest.starts_with("**") {
                (*c.rng.pick(&["", "x", "x/y"]), 2)
            } else if ch == '*' {
                (*c.rng.pick(&["", "ab"]), 1)
            } else if ch == '?' {
                ("q", 1)
            } else {
                (&rest[..ch.len_utf8()], ch.len_utf8())
            };
            path.push_str(fill);
            rest = &rest[used..];
        }
        assert!(
            re.is_match(path.as_bytes()),
            "{pattern:?} does not match {path:?}"
        );
        if !has_glob(&pattern) {
            assert!(
                !re.is_match(format!("{pattern}x").as_bytes()),
                "{pattern:?}"
            );
        }
        "compiled"
    });
    stats.assert_reaches(&["compiled", "refused"]);
}
