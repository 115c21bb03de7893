use std::path::{Path, PathBuf};

use super::*;

/// A scratch tree: `home` (with .ssh, .aws/credentials) and `proj` (the cwd: src/, test/,
/// secrets/key, a/.env, b/c/.env, build/x, sub/build/y, empty/build/), removed on drop.
struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "ward-sandbox-settings-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        for d in [
            "home/.ssh",
            "home/.aws",
            "proj/src",
            "proj/test",
            "proj/secrets",
            "proj/a",
            "proj/b/c",
            "proj/build",
            "proj/sub/build",
            "proj/empty/build",
            "elsewhere",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "home/.ssh/id_ed25519",
            "home/.aws/credentials",
            "proj/secrets/key",
            "proj/a/.env",
            "proj/b/c/.env",
            "proj/build/x",
            "proj/sub/build/y",
            "proj/k.pem",
        ] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        // The root's own spelling may be a link (/tmp on some systems): use the real one.
        let root = std::fs::canonicalize(&root).unwrap();
        Tree { root }
    }
    fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    fn cwd(&self) -> PathBuf {
        self.root.join("proj")
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    fn parse(&self, text: &str) -> Result<Settings> {
        parse(text, Path::new("s.json"), &self.home(), &self.cwd())
    }
    fn ok(&self, text: &str) -> Settings {
        self.parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }
    fn err(&self, text: &str) -> String {
        match self.parse(text) {
            Ok(s) => panic!("{text}: parsed: {s:?}"),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A file with the required keys and `fs` as the filesystem's extra/overriding members.
fn with_fs(fs: &str) -> String {
    format!(
        r#"{{"network": {{"allowedDomains": [], "deniedDomains": []}},
            "filesystem": {{"denyRead": [], "allowWrite": [], "denyWrite": [] {fs}}}}}"#
    )
}

fn with_net(net: &str) -> String {
    format!(
        r#"{{"network": {{"allowedDomains": [], "deniedDomains": [] {net}}},
            "filesystem": {{"denyRead": [], "allowWrite": [], "denyWrite": []}}}}"#
    )
}

/// srt's README, "Complete Configuration Example", verbatim.
const README_EXAMPLE: &str = r#"{
  "network": {
    "allowedDomains": [
      "github.com",
      "*.github.com",
      "lfs.github.com",
      "api.github.com",
      "npmjs.org",
      "*.npmjs.org"
    ],
    "deniedDomains": ["malicious.com"],
    "allowUnixSockets": ["/var/run/docker.sock"],
    "allowLocalBinding": false
  },
  "filesystem": {
    "denyRead": ["~/.ssh"],
    "allowRead": [],
    "allowWrite": [".", "src/", "test/", "/tmp"],
    "denyWrite": [".env", "config/production.json"]
  },
  "ignoreViolations": {
    "*": ["/usr/bin", "/System"],
    "git push": ["/usr/bin/nc"],
    "npm": ["/private/tmp"]
  },
  "enableWeakerNestedSandbox": false,
  "enableWeakerNetworkIsolation": false,
  "allowAppleEvents": false
}"#;

#[test]
fn srt_readme_complete_example() {
    let t = Tree::new();
    let s = t.ok(README_EXAMPLE);
    assert_eq!(
        s.network.allowed_domains,
        [
            "github.com",
            "*.github.com",
            "lfs.github.com",
            "api.github.com",
            "npmjs.org",
            "*.npmjs.org"
        ]
    );
    assert_eq!(s.network.denied_domains, ["malicious.com"]);
    assert_eq!(
        s.network.allow_unix_sockets,
        [PathBuf::from("/var/run/docker.sock")]
    );
    assert!(!s.network.allow_local_binding);
    assert!(!s.network.allow_all_unix_sockets);
    assert_eq!(s.filesystem.deny_read, [t.p("home/.ssh")]);
    assert!(s.filesystem.allow_read.is_empty());
    assert_eq!(
        s.filesystem.allow_write,
        [
            t.cwd(),
            t.p("proj/src"),
            t.p("proj/test"),
            std::fs::canonicalize("/tmp").unwrap()
        ]
    );
    // Missing denyWrite paths are kept: they must not be created.
    assert_eq!(
        s.filesystem.deny_write,
        [t.p("proj/.env"), t.p("proj/config/production.json")]
    );
    assert!(s.credentials.is_none());
    // ignoreViolations is set (and not applied); the `false` options say nothing.
    assert_eq!(
        s.warnings,
        ["settings: ignoreViolations ignored: ward logs every violation"]
    );
}

#[test]
fn srt_readme_recipes() {
    let t = Tree::new();
    // "Workspace-only filesystem access", with the tree's root standing in for /Users.
    let text = format!(
        r#"{{"network": {{"allowedDomains": [], "deniedDomains": []}},
            "filesystem": {{"denyRead": ["{}"], "allowRead": ["."], "allowWrite": ["."],
                            "denyWrite": []}}}}"#,
        t.root.display()
    );
    let s = t.ok(&text);
    assert_eq!(s.filesystem.deny_read, std::slice::from_ref(&t.root));
    assert_eq!(s.filesystem.allow_read, [t.cwd()]);
    assert_eq!(s.filesystem.allow_write, [t.cwd()]);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn tilde_and_relative_paths_expand_as_srt_does() {
    let t = Tree::new();
    let s = t.ok(&with_fs(
        r#", "allowRead": ["~", "~/", "~/.aws/", "./src/./", "src//", "a/../test", "../elsewhere",
                          "/", "..//proj/./b/c/."]"#,
    ));
    assert_eq!(
        s.filesystem.allow_read,
        [
            t.home(),
            t.p("home/.aws"),
            t.p("proj/src"),
            t.p("proj/test"),
            t.p("elsewhere"),
            PathBuf::from("/"),
            t.p("proj/b/c"),
        ]
    );
    // `~user` is a relative name (srt expands only `~` and `~/`).
    let s = t.ok(&with_fs(r#", "denyWrite": ["~nobody/x"]"#));
    assert_eq!(s.filesystem.deny_write, [t.p("proj/~nobody/x")]);
    // A trailing /** is the directory itself.
    let s = t.ok(&with_fs(r#", "allowWrite": ["src/**", "~/.ssh/**"]"#));
    assert_eq!(
        s.filesystem.allow_write,
        [t.p("proj/src"), t.p("home/.ssh")]
    );
}

#[test]
fn every_field_is_read() {
    let t = Tree::new();
    let text = r#"{
      "network": {"allowedDomains": ["example.com", "*.example.org:443", "[::1]"],
                  "deniedDomains": ["*:22", "bad.example.com"],
                  "deniedDomainReasons": {"*:22": "no ssh"},
                  "deniedResolvedAddresses": ["10.0.0.0/8", "fc00::/7", "192.168.1.10"],
                  "allowUnixSockets": ["~/agent.sock", "run/x.sock"],
                  "allowAllUnixSockets": true, "allowLocalBinding": true,
                  "strictAllowlist": true},
      "filesystem": {"denyRead": ["~/.aws"], "allowRead": ["~/.aws/credentials"],
                     "allowWrite": ["."], "denyWrite": ["secrets"], "allowGitConfig": true}
    }"#;
    let s = t.ok(text);
    let n = &s.network;
    assert_eq!(
        n.allowed_domains,
        ["example.com", "*.example.org:443", "[::1]"]
    );
    assert_eq!(n.denied_domains, ["*:22", "bad.example.com"]);
    assert_eq!(
        n.denied_domain_reasons.get("*:22").map(String::as_str),
        Some("no ssh")
    );
    assert_eq!(
        n.denied_resolved_addresses,
        ["10.0.0.0/8", "fc00::/7", "192.168.1.10"]
    );
    assert_eq!(
        n.allow_unix_sockets,
        [t.p("home/agent.sock"), t.p("proj/run/x.sock")]
    );
    assert!(n.allow_all_unix_sockets && n.allow_local_binding);
    let f = &s.filesystem;
    assert_eq!(f.deny_read, [t.p("home/.aws")]);
    assert_eq!(f.allow_read, [t.p("home/.aws/credentials")]);
    assert_eq!(f.allow_write, [t.cwd()]);
    assert_eq!(f.deny_write, [t.p("proj/secrets")]);
    assert!(f.allow_git_config);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.home, t.home());
    assert_eq!(s.cwd, t.cwd());
}

#[test]
fn unknown_keys_warn_and_never_fail() {
    let t = Tree::new();
    let text = r#"{"network": {"allowedDomains": [], "deniedDomains": [], "fooBar": 1},
                   "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": [],
                                  "allowExec": ["x"]},
                   "sandboxMode": "strict"}"#;
    let s = t.ok(text);
    let mut w = s.warnings.clone();
    w.sort();
    assert_eq!(
        w,
        [
            "settings: unknown key filesystem.allowExec ignored",
            "settings: unknown key network.fooBar ignored",
            "settings: unknown key sandboxMode ignored",
        ]
    );
}

#[test]
fn srt_options_ward_does_not_apply_warn_when_set() {
    let t = Tree::new();
    let text = r#"{"network": {"allowedDomains": [], "deniedDomains": [], "httpProxyPort": 3128,
                               "allowMachLookup": [], "parentProxy": {"http": "http://p:1"}},
                   "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": [],
                                  "disabled": true},
                   "enableWeakerNestedSandbox": true, "allowPty": false, "ripgrep": {"command": "rg"}}"#;
    let s = t.ok(text);
    let mut w = s.warnings.clone();
    w.sort();
    assert_eq!(w.len(), 5, "{w:?}");
    for key in [
        "enableWeakerNestedSandbox",
        "ripgrep",
        "network.httpProxyPort",
        "network.parentProxy",
        "filesystem.disabled",
    ] {
        assert!(
            w.iter()
                .any(|x| x.starts_with(&format!("settings: {key} ignored: "))),
            "{key}: {w:?}"
        );
    }
}

#[test]
fn bad_json_says_where() {
    let t = Tree::new();
    let e = t.err("{\n  \"network\": {\n    \"allowedDomains\": [\"a.com\",]\n  }\n}");
    assert!(e.contains("s.json") && e.contains("not valid JSON"), "{e}");
    assert!(e.contains("line 3 column"), "{e}");
    let e = t.err("  \n");
    assert!(e.contains("s.json") && e.contains("empty"), "{e}");
    let e = t.err("[]");
    assert!(
        e.contains("s.json: expected an object, found an array"),
        "{e}"
    );
}

#[test]
fn required_fields_as_in_srt() {
    let t = Tree::new();
    for (text, field) in [
        (
            r#"{"filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}"#,
            "s.json: network: required",
        ),
        (
            r#"{"network": {"allowedDomains": [], "deniedDomains": []}}"#,
            "s.json: filesystem: required",
        ),
        (
            r#"{"network": {"deniedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}"#,
            "s.json: network.allowedDomains: required",
        ),
        (
            r#"{"network": {"allowedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}"#,
            "s.json: network.deniedDomains: required",
        ),
        (
            r#"{"network": {"allowedDomains": [], "deniedDomains": []}, "filesystem": {"allowWrite": [], "denyWrite": []}}"#,
            "s.json: filesystem.denyRead: required",
        ),
        (
            r#"{"network": {"allowedDomains": [], "deniedDomains": []}, "filesystem": {"denyRead": [], "denyWrite": []}}"#,
            "s.json: filesystem.allowWrite: required",
        ),
        (
            r#"{"network": {"allowedDomains": [], "deniedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": null}}"#,
            "s.json: filesystem.allowWrite: required",
        ),
    ] {
        let e = t.err(text);
        assert!(e.contains(field), "{field}: {e}");
    }
}

#[test]
fn bad_types_name_their_field() {
    let t = Tree::new();
    for (text, field) in [
        (r#"{"network": [], "filesystem": {}}"#.to_string(), "s.json: network: expected an object"),
        (with_fs(r#", "allowRead": "src""#), "s.json: filesystem.allowRead: expected an array of strings, found a string"),
        (with_fs(r#", "denyRead": ["a", 7]"#), "s.json: filesystem.denyRead[1]: expected a string, found a number"),
        (with_fs(r#", "denyWrite": [""]"#), "s.json: filesystem.denyWrite[0]: Path cannot be empty"),
        (with_fs(r#", "allowGitConfig": "yes""#), "s.json: filesystem.allowGitConfig: expected true or false"),
        (with_fs(r#", "disabled": 1"#), "s.json: filesystem.disabled: expected true or false"),
        (with_net(r#", "allowLocalBinding": "no""#), "s.json: network.allowLocalBinding: expected true or false"),
        (with_net(r#", "allowAllUnixSockets": null, "allowUnixSockets": [1]"#), "s.json: network.allowUnixSockets[0]: expected a string"),
        (with_net(r#", "deniedDomainReasons": []"#), "s.json: network.deniedDomainReasons: expected an object"),
        (with_net(r#", "deniedResolvedAddresses": ["10.0.0.0/33"]"#), "s.json: network.deniedResolvedAddresses[0]"),
        (with_net(r#", "deniedResolvedAddresses": ["[::1]"]"#), "s.json: network.deniedResolvedAddresses[0]"),
        (
            r#"{"network": {"allowedDomains": ["a.com", "ok.org", "*.com"], "deniedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}"#.to_string(),
            "s.json: network.allowedDomains[2]",
        ),
        (
            r#"{"network": {"allowedDomains": [], "deniedDomains": ["http://x.com/"]}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}"#.to_string(),
            "s.json: network.deniedDomains[0]",
        ),
        (with_net(r#", "deniedDomainReasons": {"x.com": "no"}"#), "s.json: network.deniedDomainReasons[\"x.com\"]"),
        (with_net(r#", "deniedDomainReasons": {"x.com": 1}"#), "s.json: network.deniedDomainReasons[\"x.com\"]: expected a string"),
    ] {
        let e = t.err(&text);
        assert!(e.contains(field), "{field}: {e}");
    }
}

#[test]
fn deny_globs_ending_in_a_separator_are_refused() {
    let t = Tree::new();
    let e = t.err(&with_fs(r#", "denyRead": ["/data/*/"]"#));
    assert!(
        e.contains("s.json: filesystem.denyRead[0]") && e.contains("\"/data/*\""),
        "{e}"
    );
    let e = t.err(&with_fs(r#", "denyWrite": ["~/x/**/"]"#));
    assert!(e.contains("s.json: filesystem.denyWrite[0]"), "{e}");
    // Relative, or an allow: accepted (srt too).
    t.ok(&with_fs(
        r#", "denyRead": ["build/*/"], "allowRead": ["/data/*/"]"#,
    ));
}

#[test]
fn read_globs_expand_against_the_filesystem() {
    let t = Tree::new();
    let s = t.ok(&with_fs(
        r#", "denyRead": ["**/.env", "~/.ssh/id_*", "*.pem", "nomatch*"]"#,
    ));
    assert_eq!(
        s.filesystem.deny_read,
        [
            t.p("proj/a/.env"),
            t.p("proj/b/c/.env"),
            t.p("home/.ssh/id_ed25519"),
            t.p("proj/k.pem"),
        ]
    );
    // `dir/**` patterns deny each matching directory that holds something, once.
    let s = t.ok(&with_fs(r#", "denyRead": ["**/build/**"]"#));
    assert_eq!(
        s.filesystem.deny_read,
        [t.p("proj/build"), t.p("proj/sub/build")]
    );
    // allowRead globs give every match.
    let s = t.ok(&with_fs(r#", "allowRead": ["**/build/**"]"#));
    assert_eq!(
        s.filesystem.allow_read,
        [t.p("proj/build/x"), t.p("proj/sub/build/y")]
    );
    // Nothing to start from: skipped with a warning (srt skips it on Linux).
    let s = t.ok(&with_fs(r#", "denyRead": ["/**/*.pem"]"#));
    assert!(s.filesystem.deny_read.is_empty());
    assert!(
        s.warnings[0].contains("filesystem.denyRead[0]")
            && s.warnings[0].contains("no literal directory"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn read_deny_glob_keeps_what_an_allow_reopens() {
    let t = Tree::new();
    // Every entry below the cwd matches; a denied directory hides what is in it, so proj/a/.env
    // needs no mask of its own. proj/b is reopened (allowRead), so proj/b/c, which the
    // reopening would show again, keeps its own mask.
    let text = with_fs(r#", "denyRead": ["**"], "allowRead": ["b"]"#);
    let s = t.ok(&text);
    let d = &s.filesystem.deny_read;
    assert!(
        d.contains(&t.p("proj/a")) && !d.contains(&t.p("proj/a/.env")),
        "{d:?}"
    );
    assert!(
        d.contains(&t.p("proj/b")) && d.contains(&t.p("proj/b/c")),
        "{d:?}"
    );
    assert!(!d.contains(&t.p("proj/b/c/.env")), "{d:?}");
    assert_eq!(s.filesystem.allow_read, [t.p("proj/b")]);
}

#[test]
fn write_globs_are_skipped_with_a_warning() {
    let t = Tree::new();
    let s = t.ok(&with_fs(
        r#", "allowWrite": ["src/*.ts", "test"], "denyWrite": ["**/.env"]"#,
    ));
    assert_eq!(s.filesystem.allow_write, [t.p("proj/test")]);
    assert!(s.filesystem.deny_write.is_empty());
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("filesystem.allowWrite[0]") && s.warnings[0].contains("glob"));
    assert!(s.warnings[1].contains("filesystem.denyWrite[0]"));
}

#[test]
fn missing_paths_as_srt_treats_them() {
    let t = Tree::new();
    let s = t.ok(&with_fs(
        r#", "allowWrite": ["nope", "/dev/null"], "denyRead": ["~/.gnupg"], "allowRead": ["gone"],
             "denyWrite": ["nope/x"]"#,
    ));
    assert!(s.filesystem.allow_write.is_empty());
    assert!(s.filesystem.deny_read.is_empty());
    assert!(s.filesystem.allow_read.is_empty());
    assert_eq!(s.filesystem.deny_write, [t.p("proj/nope/x")]);
    // Only the missing write grant is worth saying.
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(
        s.warnings[0].contains("filesystem.allowWrite[0]")
            && s.warnings[0].contains("does not exist")
    );
}

#[test]
fn links_resolve_and_write_grants_do_not_follow_them_out() {
    let t = Tree::new();
    std::os::unix::fs::symlink(t.p("elsewhere"), t.p("proj/out")).unwrap();
    std::os::unix::fs::symlink(t.p("home/.aws"), t.p("proj/aws")).unwrap();
    let s = t.ok(&with_fs(
        r#", "allowWrite": ["out", "."], "denyRead": ["aws"], "denyWrite": ["out"]"#,
    ));
    assert_eq!(s.filesystem.allow_write, [t.cwd()]);
    assert!(
        s.warnings[0].contains("filesystem.allowWrite[0]")
            && s.warnings[0].contains("symbolic link")
    );
    // Denials land where the file really is.
    assert_eq!(s.filesystem.deny_read, [t.p("home/.aws")]);
    assert_eq!(s.filesystem.deny_write, [t.p("elsewhere")]);
}

#[test]
fn credentials_are_carried_checked_and_their_paths_expanded() {
    let t = Tree::new();
    let text = r#"{"network": {"allowedDomains": ["api.github.com"], "deniedDomains": []},
                   "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []},
                   "credentials": {"envVars": [{"name": "GH_TOKEN", "mode": "mask"}],
                                   "files": [{"path": "~/.aws/credentials", "mode": "deny"}]}}"#;
    let s = t.ok(text);
    let c = s.credentials.unwrap();
    assert_eq!(c["envVars"][0]["name"], "GH_TOKEN");
    assert_eq!(
        c["files"][0]["path"].as_str().map(PathBuf::from),
        Some(t.p("home/.aws/credentials"))
    );
    // srt's credentials block is strict: an unknown key is an error, named.
    let e = t.err(&text.replace("\"mode\": \"deny\"", "\"mode\": \"deny\", \"bogus\": 1"));
    assert!(
        e.contains("s.json: credentials.files[0]") && e.contains("bogus"),
        "{e}"
    );
    let e = t.err(&text.replace("\"mode\": \"mask\"", "\"mode\": \"hide\""));
    assert!(e.contains("s.json: credentials.envVars[0].mode"), "{e}");
    // Checked against allowedDomains with credentials::compile.
    let e = t.err(&text.replace(
        "\"mode\": \"mask\"}",
        "\"mode\": \"mask\", \"injectHosts\": [\"evil.example\"]}",
    ));
    assert!(e.contains("s.json: credentials.envVars[0]"), "{e}");
    let e = t.err(
        &text
            .replace("\"credentials\": {", "\"credentials\": [{")
            .replace("}]}}", "}]}]}"),
    );
    assert!(e.contains("s.json: credentials: expected an object"), "{e}");
}

#[test]
fn merge_cli_appends_what_srt_has_no_flag_for() {
    let t = Tree::new();
    let mut s = t.ok(&with_fs(
        r#", "allowWrite": ["src"], "denyRead": ["~/.ssh"]"#,
    ));
    s.network.allowed_domains.push("a.example.com".into());
    s.merge_cli(
        &["a.example.com".into(), "b.example.com".into()],
        &[
            PathBuf::from("src"),
            PathBuf::from("test"),
            PathBuf::from("missing"),
        ],
        &[
            PathBuf::from("~/.aws"),
            PathBuf::from("secrets"),
            PathBuf::from("/nonexistent/x"),
        ],
    );
    assert_eq!(
        s.network.allowed_domains,
        ["a.example.com", "b.example.com"]
    );
    assert_eq!(
        s.filesystem.allow_write,
        [t.p("proj/src"), t.p("proj/test")]
    );
    assert_eq!(
        s.filesystem.deny_read,
        [t.p("home/.ssh"), t.p("home/.aws"), t.p("proj/secrets")]
    );
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("--allow-write missing"));
    assert!(s.warnings[1].contains("--deny-read /nonexistent/x"));
    // On the defaults (no settings file) too.
    let mut d = Settings::defaults(&t.home(), &t.cwd());
    d.merge_cli(&[], &[PathBuf::from(".")], &[]);
    assert_eq!(d.filesystem.allow_write, [t.cwd()]);
}

#[test]
fn no_panic_on_odd_input() {
    let t = Tree::new();
    for text in [
        "null",
        "1",
        "\"x\"",
        "{\"network\": null, \"filesystem\": null}",
        "{\"network\": {\"allowedDomains\": [null], \"deniedDomains\": []}}",
        &with_fs(r#", "denyRead": ["[", "]", "[]", "**/[a-", "\u0000"]"#),
        &with_fs(r#", "allowRead": ["~/[z-a]*"]"#),
    ] {
        let _ = t.parse(text);
    }
}
