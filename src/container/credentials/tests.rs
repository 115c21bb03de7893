use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;
use crate::policy::credentials::{Vault, PREFIX};

struct Tmp(PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bundle with `env`, the credentials `creds` and a rootfs holding `files`; a state dir.
fn setup(name: &str, env: &[&str], creds: Value, files: &[(&str, &[u8])]) -> (Tmp, Bundle) {
    let dir = std::env::temp_dir().join(format!("ward-creds-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rootfs = dir.join("bundle/rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::create_dir_all(dir.join("host")).unwrap();
    for (p, content) in files {
        let full = rootfs.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    let config = json!({"ociVersion": "1.0.2",
        "process": {"args": ["sh"], "cwd": "/", "env": env, "user": {"uid": 0, "gid": 0},
            "interception": {"network": {"allowedDomains": ["api.example.com", "b.example"]},
                "credentials": creds}},
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/mnt/host", "type": "bind", "source": dir.join("host"),
                    "options": ["rbind"]},
                   {"destination": "/run", "type": "tmpfs", "source": "tmpfs"}],
        "linux": {"namespaces": [{"type": "mount"}, {"type": "network"}]}});
    std::fs::write(dir.join("bundle/config.json"), config.to_string()).unwrap();
    let bundle = Bundle::load(&dir.join("bundle")).unwrap();
    (Tmp(dir), bundle)
}

fn run(bundle: &mut Bundle, state: &Path) -> Result<(Vault, Record)> {
    let c = bundle
        .interception
        .as_ref()
        .unwrap()
        .compiled_credentials(&bundle.raw)?
        .unwrap();
    prepare(bundle, &c, state).map(|(pending, record)| (pending.open(), record))
}

fn env_of(bundle: &Bundle) -> Vec<String> {
    bundle.process().unwrap().env().clone().unwrap()
}

#[test]
fn env_values_become_placeholders_and_deny_removes() {
    let (t, mut b) = setup(
        "env",
        &[
            "PATH=/bin",
            "API_KEY=sk-live-0123456789",
            "DROP=gone",
            "URL=https://u:pw1@h/?t=tok2",
        ],
        json!({"envVars": [
            {"name": "API_KEY", "mode": "mask", "injectHosts": ["api.example.com"],
             "methods": ["POST"]},
            {"name": "DROP", "mode": "deny"},
            {"name": "URL", "mode": "mask", "extract": "(?:u:|t=)([a-z0-9]+)"}]}),
        &[],
    );
    let (vault, record) = run(&mut b, &t.0.join("state")).unwrap();
    let env = env_of(&b);
    let joined = env.join("\n");
    assert!(
        !joined.contains("sk-live") && !joined.contains("gone"),
        "{joined}"
    );
    assert!(
        !joined.contains("pw1") && !joined.contains("tok2"),
        "{joined}"
    );
    assert!(!env.iter().any(|kv| kv.starts_with("DROP=")));
    let key = env
        .iter()
        .find_map(|kv| kv.strip_prefix("API_KEY="))
        .unwrap();
    assert!(key.starts_with(PREFIX), "{key}");
    // extract keeps the rest byte for byte
    let url = env.iter().find_map(|kv| kv.strip_prefix("URL=")).unwrap();
    let (p1, p2) = (
        &vault.bindings[1].placeholder,
        &vault.bindings[2].placeholder,
    );
    assert_eq!(url, format!("https://u:{p1}@h/?t={p2}"));
    // the stored config's env (ward exec without --process) is the same
    assert_eq!(b.raw["process"]["env"], json!(env));
    // the vault: one binding per secret, named by entry, with the entry's hosts and methods
    let names: Vec<&str> = vault.bindings.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "credentials.envVars[0] (API_KEY)",
            "credentials.envVars[2] (URL) #1",
            "credentials.envVars[2] (URL) #2"
        ]
    );
    assert_eq!(vault.bindings[0].secret.expose(), b"sk-live-0123456789");
    assert_eq!(vault.bindings[0].placeholder, key);
    assert_eq!(vault.bindings[0].hosts.len(), 1);
    assert_eq!(
        vault.bindings[1].hosts.len(),
        2,
        "default: every allowed domain"
    );
    assert_eq!(vault.bindings[2].secret.expose(), b"tok2");
    // the record: placeholders only
    assert_eq!(record.env["API_KEY"], key);
    assert_eq!(record.removed, ["DROP"]);
    record.save(&t.0.join("state")).unwrap();
    let saved = std::fs::read_to_string(t.0.join("state").join(FILE)).unwrap();
    assert!(!saved.contains("sk-live") && !saved.contains("pw1") && saved.contains(key));
    // exec: the real value in a process.json is replaced, withheld names dropped
    let exec_env = record.apply(&[
        "API_KEY=sk-live-0123456789".into(),
        "DROP=x".into(),
        "OTHER=1".into(),
    ]);
    assert_eq!(exec_env, [format!("API_KEY={key}"), "OTHER=1".to_string()]);
}

#[test]
fn the_same_secret_twice_gets_one_placeholder() {
    let (t, mut b) = setup(
        "twice",
        &["PAIR=abc:abc"],
        json!({"envVars": [{"name": "PAIR", "mode": "mask", "extract": "([a-z]+)"}]}),
        &[],
    );
    let (vault, _) = run(&mut b, &t.0.join("state")).unwrap();
    assert_eq!(vault.bindings.len(), 1);
    let p = &vault.bindings[0].placeholder;
    assert_eq!(env_of(&b), [format!("PAIR={p}:{p}")]);
}

#[test]
fn files_are_masked_copies_mounted_read_only() {
    let netrc = b"machine a.example\n  password hunter2secret\nmachine b\n  password zz9plural\n";
    let (t, mut b) = setup(
        "files",
        &[],
        json!({"files": [
            {"path": "/root/.netrc", "mode": "mask", "extract": "password (\\S+)"},
            {"path": "/etc/token", "mode": "mask"},
            {"path": "/etc/deny-me", "mode": "deny"},
            {"path": "/mnt/host/sub/key", "mode": "mask"}]}),
        &[
            ("/root/.netrc", netrc),
            ("/etc/token", b"tok-123\n"),
            ("/etc/deny-me", b"s3cr3t"),
        ],
    );
    let host = t.0.join("host/sub");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("key"), b"hostkey-abc").unwrap();
    let state = t.0.join("state");
    let (vault, record) = run(&mut b, &state).unwrap();
    assert!(record.is_empty());
    let mounts = b.spec.mounts().clone().unwrap();
    let ours: Vec<_> = mounts.iter().skip(2).collect();
    assert_eq!(ours.len(), 4);
    let read = |i: usize| std::fs::read(ours[i].source().as_ref().unwrap()).unwrap();
    for (m, dest) in ours.iter().zip([
        "/root/.netrc",
        "/etc/token",
        "/etc/deny-me",
        "/mnt/host/sub/key",
    ]) {
        assert_eq!(m.destination(), Path::new(dest));
        assert!(m.options().as_ref().unwrap().contains(&"ro".to_string()));
        assert!(m.source().as_ref().unwrap().starts_with(&state));
    }
    let (p1, p2) = (
        &vault.bindings[0].placeholder,
        &vault.bindings[1].placeholder,
    );
    assert_eq!(
        read(0),
        format!("machine a.example\n  password {p1}\nmachine b\n  password {p2}\n").into_bytes()
    );
    assert_eq!(vault.bindings[1].secret.expose(), b"zz9plural");
    // whole file: the trailing newline is not part of the secret
    assert_eq!(
        read(1),
        format!("{}\n", vault.bindings[2].placeholder).into_bytes()
    );
    assert_eq!(vault.bindings[2].secret.expose(), b"tok-123");
    assert!(read(2).is_empty(), "deny: an empty file");
    assert_eq!(vault.bindings[3].secret.expose(), b"hostkey-abc");
    for i in 0..4 {
        let text = String::from_utf8(read(i)).unwrap();
        for s in ["hunter2", "zz9", "tok-123", "s3cr3t", "hostkey"] {
            assert!(!text.contains(s), "{text}");
        }
    }
}

#[test]
fn refusals_name_the_field_and_never_the_value() {
    let at = "process.interception.credentials";
    for (env, creds, files, field, why) in [
        (
            vec!["A=1"],
            json!({"envVars": [{"name": "MISSING", "mode": "mask"}]}),
            vec![],
            format!("{at}.envVars[0].name"),
            "is not in process.env",
        ),
        (
            vec!["A=sk-value"],
            json!({"envVars": [{"name": "A", "mode": "mask", "extract": "key=(\\w+)",
                "onExtractNoMatch": "error"}]}),
            vec![],
            format!("{at}.envVars[0].extract"),
            "matched nothing",
        ),
        (
            vec!["A="],
            json!({"envVars": [{"name": "A", "mode": "mask"}]}),
            vec![],
            format!("{at}.envVars[0]"),
            "is empty",
        ),
        (
            vec![],
            json!({"files": [{"path": "/etc/absent", "mode": "mask"}]}),
            vec![],
            format!("{at}.files[0].path"),
            "does not exist in the container",
        ),
        (
            vec![],
            json!({"files": [{"path": "/run/secret", "mode": "mask"}]}),
            vec![("/run/secret", &b"x"[..])],
            format!("{at}.files[0].path"),
            "is under mounts[1] (tmpfs)",
        ),
        (
            vec![],
            json!({"files": [{"path": "/etc", "mode": "mask"}]}),
            vec![("/etc/x", &b"x"[..])],
            format!("{at}.files[0].path"),
            "not a regular file",
        ),
    ] {
        let (t, mut b) = setup("refuse", &env, creds.clone(), &files);
        let e = run(&mut b, &t.0.join("state")).unwrap_err().to_string();
        assert!(e.contains(&field) && e.contains(why), "{creds}: {e}");
        assert!(!e.contains("sk-value"), "{e}");
        drop(t);
    }
}

#[test]
fn a_symlink_in_the_rootfs_resolves_inside_it() {
    let (t, mut b) = setup(
        "link",
        &[],
        json!({"files": [{"path": "/etc/link", "mode": "mask"}]}),
        &[("/etc/real", b"inside-secret")],
    );
    let rootfs = t.0.join("bundle/rootfs");
    // An absolute link: inside the rootfs it is /etc/real, never the host's file.
    std::os::unix::fs::symlink("/etc/real", rootfs.join("etc/link")).unwrap();
    let (vault, _) = run(&mut b, &t.0.join("state")).unwrap();
    assert_eq!(vault.bindings[0].secret.expose(), b"inside-secret");
    // Under a bind mount a link may not climb out of the mount's source.
    let (t2, mut b2) = setup(
        "link2",
        &[],
        json!({"files": [{"path": "/mnt/host/esc", "mode": "mask"}]}),
        &[],
    );
    std::fs::write(t2.0.join("outside"), b"host-only").unwrap();
    std::os::unix::fs::symlink("../outside", t2.0.join("host/esc")).unwrap();
    let e = run(&mut b2, &t2.0.join("state")).unwrap_err().to_string();
    assert!(
        e.contains("files[0].path") && !e.contains("host-only"),
        "{e}"
    );
}

#[test]
fn a_warned_no_match_masks_the_whole_value() {
    let (t, mut b) = setup(
        "warn",
        &["A=opaque-value"],
        json!({"envVars": [{"name": "A", "mode": "mask", "extract": "key=(\\w+)"}]}),
        &[],
    );
    let (vault, _) = run(&mut b, &t.0.join("state")).unwrap();
    assert_eq!(vault.bindings[0].secret.expose(), b"opaque-value");
    assert_eq!(env_of(&b), [format!("A={}", vault.bindings[0].placeholder)]);
}

#[test]
fn a_denied_no_match_withholds_the_value_as_srt_does() {
    // Per entry (srt's place) and for the block (ward's default for every entry).
    for creds in [
        json!({"envVars": [{"name": "A", "mode": "mask", "extract": "key=(\\w+)",
            "onExtractNoMatch": "deny"}]}),
        json!({"envVars": [{"name": "A", "mode": "mask", "extract": "key=(\\w+)"}],
            "onExtractNoMatch": "deny"}),
    ] {
        let (t, mut b) = setup("nomatch-deny", &["A=opaque-value", "B=1"], creds, &[]);
        let (vault, record) = run(&mut b, &t.0.join("state")).unwrap();
        assert!(vault.bindings.is_empty());
        assert_eq!(env_of(&b), ["B=1"]);
        assert_eq!(record.removed, ["A"]);
    }
}

#[test]
fn aws_pairs_pair_explicit_names_and_the_conventional_trio() {
    let (t, mut b) = setup(
        "aws",
        &[
            "MY_KEY=AKIAX",
            "MY_SECRET=s3cr3t",
            "AWS_ACCESS_KEY_ID=AKIAY",
            "AWS_SECRET_ACCESS_KEY=s2",
        ],
        json!({"envVars": [
            {"name": "MY_KEY", "mode": "mask"},
            {"name": "MY_SECRET", "mode": "mask"},
            {"name": "AWS_ACCESS_KEY_ID", "mode": "mask"},
            {"name": "AWS_SECRET_ACCESS_KEY", "mode": "mask"}],
            "awsPairs": [{"accessKeyIdVar": "MY_KEY", "secretAccessKeyVar": "MY_SECRET"}]}),
        &[],
    );
    let (vault, _) = run(&mut b, &t.0.join("state")).unwrap();
    let by = |secret: &[u8]| {
        vault
            .bindings
            .iter()
            .position(|x| x.secret.expose() == secret)
            .unwrap()
    };
    assert_eq!(vault.aws.len(), 2, "{:?}", vault.aws);
    assert_eq!(
        (vault.aws[0].key_id, vault.aws[0].secret_key),
        (by(b"AKIAX"), by(b"s3cr3t"))
    );
    assert_eq!(
        (vault.aws[1].key_id, vault.aws[1].secret_key),
        (by(b"AKIAY"), by(b"s2"))
    );
    assert!(vault.sign_only(by(b"s3cr3t")) && !vault.sign_only(by(b"AKIAX")));
}
