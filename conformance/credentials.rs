//! Credentials that never enter the container (`credentials` in `process.interception`,
//! issue 17), the create/exec side: the container's env, `/proc/<pid>/environ`, its files and
//! its memory hold only placeholders; `ward exec` gets them too, even from a process.json that
//! carries the real value; the state dir and `ward state` never hold the secret; the CA bundle
//! is mounted with the variables pointing at it; each refusal at create names the field and
//! leaves nothing behind; `ward hook egress` refuses credentials. ward-only (runc has no
//! egress policy); the hook test runs under either WARD_RUNTIME.

use std::path::Path;

use crate::harness::{runtime_is_runc, Env};
use serde_json::{json, Value};

const KEY: &str = "sk-ant-api03-Q7vRb9TzX2mWk4LpN8sYc1HdJ6fGe0";
const NETRC_PW: &str = "hunter2-netrc-8f3kq9";
const URL_TOKEN: &str = "tok9a8b7c6d5e4f3";
const WITHHELD: &str = "withheld-value-55d1e0";
const DENIED_FILE: &str = "denied-file-content-b7c2";
const ROOTFS_BUNDLE: &str = "# rootfs-bundle-marker-4e1f";

fn skip() -> bool {
    if runtime_is_runc() {
        crate::skip::skipped(
            "runc has no egress policy: it ignores process.interception and org.ward.* annotations",
        );
    }
    runtime_is_runc()
}

fn secrets() -> [&'static str; 5] {
    [KEY, NETRC_PW, URL_TOKEN, WITHHELD, DENIED_FILE]
}

/// A config with every kind of credential, and the files they come from in the rootfs.
fn with_credentials(env: &mut Env) {
    let rootfs = env.rootfs();
    std::fs::write(
        rootfs.join("root/.netrc"),
        format!("machine api.example\n  login me\n  password {NETRC_PW}\n"),
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/denied"), DENIED_FILE).unwrap();
    std::fs::create_dir_all(rootfs.join("etc/ssl/certs")).unwrap();
    std::fs::write(
        rootfs.join("etc/ssl/certs/ca-certificates.crt"),
        format!("{ROOTFS_BUNDLE}\n"),
    )
    .unwrap();
    let e = env.config["process"]["env"].as_array_mut().unwrap();
    e.push(json!(format!("ANTHROPIC_API_KEY={KEY}")));
    e.push(json!(format!(
        "SERVICE_URL=https://api.example/v1?token={URL_TOKEN}&x=1"
    )));
    e.push(json!(format!("WITHHELD={WITHHELD}")));
    e.push(json!("PIP_CERT=/custom/pip.pem"));
    env.config["process"]["interception"] = json!({
        "network": {"allowedDomains": ["api.example", "other.example"], "proxyEnv": true},
        "credentials": {
            "envVars": [
                {"name": "ANTHROPIC_API_KEY", "mode": "mask", "injectHosts": ["api.example"],
                 "methods": ["POST"], "paths": ["/v1/messages"]},
                {"name": "SERVICE_URL", "mode": "mask", "extract": "token=([a-z0-9]+)"},
                {"name": "WITHHELD", "mode": "deny"}],
            "files": [
                {"path": "/root/.netrc", "mode": "mask", "extract": "password (\\S+)"},
                {"path": "/etc/denied", "mode": "deny"}]}});
}

fn assert_no_secret(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(s), "{what} holds a secret ({s}):\n{text}");
    }
}

/// Every regular file under `dir`, as text.
fn files_under(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let ft = entry.file_type().unwrap();
        let p = entry.path();
        if ft.is_dir() {
            files_under(&p, out);
        } else if ft.is_file() {
            let bytes = std::fs::read(&p).unwrap_or_default();
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

/// Whether any readable mapping of `pid` contains `needle` (read from the host through
/// /proc/<pid>/mem).
fn memory_holds(pid: i32, needle: &[u8]) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let Ok(mut mem) = std::fs::File::open(format!("/proc/{pid}/mem")) else {
        return false;
    };
    for line in maps.lines() {
        let mut cols = line.split_whitespace();
        let (Some(range), Some(perms)) = (cols.next(), cols.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut buf = vec![0u8; (b - a) as usize];
        if mem.seek(SeekFrom::Start(a)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        if let Some(off) = buf.windows(needle.len()).position(|w| w == needle) {
            if std::env::var("PROBE").is_ok() {
                let lo = off.saturating_sub(64);
                let hi = (off + needle.len() + 64).min(buf.len());
                eprintln!(
                    "FOUND in {line} at {off}: {:?}",
                    String::from_utf8_lossy(&buf[lo..hi])
                );
            }
            return true;
        }
    }
    false
}

/// The pids in the pid namespace of `init`.
fn container_pids(init: i32) -> Vec<i32> {
    let ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .ok()
                .as_ref()
                == Some(&ns)
        })
        .collect()
}

#[test]
fn the_container_sees_only_placeholders() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    with_credentials(&mut env);
    let id = env.run_sleeping();
    let script = "env; echo ===; tr '\\0' '\\n' < /proc/self/environ; echo ===; \
                  tr '\\0' '\\n' < /proc/1/environ; echo ===; cat /root/.netrc; echo ===; \
                  wc -c < /etc/denied; echo ===; \
                  (echo x >> /root/.netrc) 2>&1; echo write=$?; echo ===; \
                  cat /etc/ward/ca-bundle.pem";
    let out = env.rt(&["exec", &id, "sh", "-c", script]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = out.stdout.clone();
    assert_no_secret("the container", &text);
    let parts: Vec<&str> = text.split("===\n").collect();
    assert_eq!(parts.len(), 7, "{text}");
    let placeholder = |part: &str, name: &str| -> String {
        part.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {part}"))
            .to_string()
    };
    let key = placeholder(parts[0], "ANTHROPIC_API_KEY");
    assert!(key.starts_with("ward-cred-"), "{key}");
    for part in &parts[..3] {
        // env, the exec'd process's environ, init's environ: the same placeholder
        assert_eq!(placeholder(part, "ANTHROPIC_API_KEY"), key, "{part}");
        let url = placeholder(part, "SERVICE_URL");
        let tok = url
            .strip_prefix("https://api.example/v1?token=")
            .and_then(|r| r.strip_suffix("&x=1"))
            .unwrap_or_else(|| panic!("extract kept the rest: {url}"));
        assert!(tok.starts_with("ward-cred-"), "{url}");
        assert!(!part.contains("WITHHELD="), "deny removes the var: {part}");
        // trust inside: the variables point at the bundle, one the config sets is kept
        for var in [
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
            "GIT_SSL_CAINFO",
            "AWS_CA_BUNDLE",
        ] {
            assert_eq!(placeholder(part, var), "/etc/ward/ca-bundle.pem", "{part}");
        }
        assert_eq!(placeholder(part, "PIP_CERT"), "/custom/pip.pem", "{part}");
    }
    let netrc = parts[3];
    let pw = netrc
        .strip_prefix("machine api.example\n  login me\n  password ")
        .and_then(|r| r.strip_suffix("\n"))
        .unwrap_or_else(|| panic!("the rest of the file byte for byte: {netrc:?}"));
    assert!(pw.starts_with("ward-cred-") && !pw.contains(' '), "{netrc}");
    assert_eq!(parts[4].trim(), "0", "a denied file is empty");
    assert!(
        !parts[5].contains("write=0"),
        "the masked file is read-only: {}",
        parts[5]
    );
    let bundle = parts[6];
    assert!(
        bundle.starts_with(ROOTFS_BUNDLE),
        "the rootfs bundle first: {bundle}"
    );
    assert!(
        bundle.contains("-----BEGIN CERTIFICATE-----") && !bundle.contains("PRIVATE KEY"),
        "{bundle}"
    );

    // exec from a process.json carrying the real value, and with -e: the placeholder
    let process = env.dir.join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["sh", "-c", "echo K=$ANTHROPIC_API_KEY W=${WITHHELD:-none} C=$SSL_CERT_FILE"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/bin", format!("ANTHROPIC_API_KEY={KEY}"), format!("WITHHELD={WITHHELD}")]})
        .to_string(),
    )
    .unwrap();
    let out = env.rt(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        format!("K={key} W=none C=/etc/ward/ca-bundle.pem"),
        "{out:?}"
    );
    let out = env.rt(&[
        "exec",
        "-e",
        &format!("ANTHROPIC_API_KEY={KEY}"),
        &id,
        "sh",
        "-c",
        "echo K=$ANTHROPIC_API_KEY",
    ]);
    assert_eq!(out.stdout.trim(), format!("K={key}"), "{out:?}");

    // no secret in the container's memory (every process of its pid namespace, from the host)
    let init = env.state(&id)["pid"].as_i64().unwrap() as i32;
    let pids = container_pids(init);
    assert!(!pids.is_empty());
    for pid in &pids {
        for s in secrets() {
            assert!(!memory_holds(*pid, s.as_bytes()), "pid {pid} holds {s}");
        }
    }
    // the scan can tell: the placeholder is there
    assert!(
        memory_holds(init, key.as_bytes()),
        "the scan finds the placeholder"
    );

    // not in the state dir, nor in `ward state`
    let mut files = Vec::new();
    files_under(&env.root.join(&id), &mut files);
    assert!(files.iter().any(|(p, _)| p.ends_with("credentials.json")));
    for (p, text) in &files {
        assert_no_secret(p, text);
    }
    let state = env.rt(&["state", &id]);
    assert_no_secret("ward state", &format!("{}{}", state.stdout, state.stderr));
    let list = env.rt(&["list"]);
    assert_no_secret("ward list", &list.stdout);
    env.kill(&id, "KILL");
    env.wait_status(&id, "stopped");
    env.delete(&id).ok();
}

/// In a user namespace the masked copies and the bundle (files of ward's state dir, which the
/// container's root cannot reach by path) are mounted all the same, readable by the user the
/// original file belonged to.
#[test]
fn a_user_namespace_gets_the_same_view() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    env.with_userns();
    with_credentials(&mut env);
    let rootfs = env.rootfs();
    // The file belongs to the container's root (host uid 100000) and only it may read it.
    let netrc = rootfs.join("root/.netrc");
    std::os::unix::fs::chown(&netrc, Some(100000), Some(100000)).unwrap();
    std::fs::set_permissions(&netrc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    env.args(&[
        "sh",
        "-c",
        "echo K=$ANTHROPIC_API_KEY; cat /root/.netrc; stat -c '%u %a' /root/.netrc; \
         grep -c rootfs-bundle-marker /etc/ward/ca-bundle.pem",
    ]);
    let out = env.run(&env.id());
    assert_eq!(out.code, 0, "{out:?}");
    assert_no_secret("the container", &out.stdout);
    assert!(out.stdout.contains("K=ward-cred-"), "{out:?}");
    assert!(out.stdout.contains("  password ward-cred-"), "{out:?}");
    assert!(out.stdout.contains("\n0 600\n1\n"), "{out:?}");
}

#[test]
fn each_refusal_names_the_field_and_leaves_nothing_behind() {
    if skip() {
        return;
    }
    let at = "process.interception.credentials";
    let net = json!({"allowedDomains": ["api.example"]});
    let cases: Vec<(String, &str, Value, Option<Value>)> = vec![
        (
            format!("{at}.envVars[0].name"),
            "is not in process.env",
            json!({"network": net, "credentials": {"envVars": [
                {"name": "NOT_SET_ANYWHERE", "mode": "mask"}]}}),
            None,
        ),
        (
            format!("{at}.files[0].path"),
            "does not exist in the container",
            json!({"network": net, "credentials": {"files": [
                {"path": "/root/absent", "mode": "mask"}]}}),
            None,
        ),
        (
            format!("{at}.envVars[0].extract"),
            "is not a regex",
            json!({"network": net, "credentials": {"envVars": [
                {"name": "ANTHROPIC_API_KEY", "mode": "mask", "extract": "(unclosed"}]}}),
            None,
        ),
        (
            format!("{at}.envVars[0].extract"),
            "matched nothing",
            json!({"network": net, "credentials": {"onExtractNoMatch": "error", "envVars": [
                {"name": "ANTHROPIC_API_KEY", "mode": "mask", "extract": "nomatch=(\\w+)"}]}}),
            None,
        ),
        (
            at.to_string(),
            "needs allowedDomains",
            json!({"network": {"default": "deny"}, "credentials": {"envVars": [
                {"name": "ANTHROPIC_API_KEY", "mode": "mask"}]}}),
            None,
        ),
        (
            "process.interception.network.allow[0]".to_string(),
            "lets bytes past ward's proxy",
            json!({"network": {"allowedDomains": ["api.example"], "allow": ["0.0.0.0/0"]},
                "credentials": {"envVars": [{"name": "ANTHROPIC_API_KEY", "mode": "mask"}]}}),
            None,
        ),
        (
            "process.interception.network.allow[0]".to_string(),
            "with http rules",
            json!({"network": {"allowedDomains": ["api.example"], "allow": ["192.0.2.0/24"],
                "http": [{"host": "api.example", "allow": [{"methods": ["GET"]}]}]}}),
            None,
        ),
        (
            "process.capabilities.bounding".to_string(),
            "could unmount the masked copy",
            json!({"network": net, "credentials": {"files": [
                {"path": "/etc/passwd", "mode": "mask", "extract": "(root)"}]}}),
            Some(json!(["CAP_SYS_ADMIN"])),
        ),
    ];
    for (n, (field, why, policy, caps)) in cases.into_iter().enumerate() {
        let mut env = Env::new();
        // A cgroup path of its own, to see that the refusal removed it.
        let cgroup = format!("wardcred{}x{n}", std::process::id());
        env.config["linux"]["cgroupsPath"] = json!(format!("/{cgroup}"));
        let shared = env.shared_dir("mark", "/mark");
        env.args(&["sh", "-c", "echo ran > /mark/ran"]);
        env.config["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(format!("ANTHROPIC_API_KEY={KEY}")));
        if let Some(c) = caps {
            env.config["process"]["capabilities"]["bounding"] = c;
        }
        env.config["process"]["interception"] = policy;
        env.assert_run_refused(&field);
        let before = env.root_entries();
        let id = env.id();
        let out = env.create(&id);
        assert!(
            out.code != 0 && out.stderr.contains(why),
            "{field}: {out:?}"
        );
        assert!(out.stderr.contains(&field), "{field}: {out:?}");
        assert_no_secret("the error", &out.stderr);
        env.assert_nothing_left(&id, &before);
        assert!(!shared.join("ran").exists(), "the container ran: {field}");
        assert!(
            !env.rootfs().join("etc/ward").exists(),
            "the rootfs was touched: {field}"
        );
        assert!(!cgroup_exists(&cgroup), "the cgroup was left: {field}");
    }
}

/// Whether a cgroup directory `name` exists under any hierarchy (v2, hybrid or v1).
fn cgroup_exists(name: &str) -> bool {
    let root = Path::new("/sys/fs/cgroup");
    root.join(name).exists()
        || std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .any(|h| h.path().join(name).exists())
}

/// The check above can tell: a container that is created has its cgroup there.
#[test]
fn a_created_container_has_the_cgroup_the_refusals_check_for() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    with_credentials(&mut env);
    let cgroup = format!("wardcred{}ok", std::process::id());
    env.config["linux"]["cgroupsPath"] = json!(format!("/{cgroup}"));
    let id = env.id();
    env.create(&id).ok();
    assert!(cgroup_exists(&cgroup));
    env.delete(&id).ok();
    assert!(!cgroup_exists(&cgroup));
}

/// `ward hook egress` cannot rewrite an env runc has fixed: a config with credentials is
/// refused (runc does not start the container) and the hook leaves nothing. Runs under either
/// WARD_RUNTIME: the runtime here is always runc, the hook always the ward under test.
#[test]
fn the_hook_refuses_credentials() {
    let mut env = Env::new();
    let shared = env.shared_dir("mark", "/mark");
    let hook_root = crate::egress_domains::under_runc_with_the_hook(&mut env);
    env.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("ANTHROPIC_API_KEY={KEY}")));
    env.config["annotations"] = json!({"org.ward.interception": json!({
        "network": {"allowedDomains": ["api.example"]},
        "credentials": {"envVars": [{"name": "ANTHROPIC_API_KEY", "mode": "mask"}]}})
    .to_string()});
    env.args(&["sh", "-c", "echo ran > /mark/ran"]);
    let out = env.run(&env.id());
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("annotations.org.ward.interception: credentials")
            && out.stderr.contains("credentials are ward-only"),
        "{out:?}"
    );
    assert_no_secret("the hook's error", &out.stderr);
    assert!(!shared.join("ran").exists(), "the container ran");
    crate::egress_domains::assert_hook_left_nothing(&hook_root);
}

/// Before `ward start`, init waits with `ward create`'s memory image (it is forked after the
/// credentials are read): the secrets were sealed from the fork and the values ward replaced
/// wiped, so a scan of init from the host finds only the placeholders there too.
#[test]
fn a_created_containers_init_holds_no_secret() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    with_credentials(&mut env);
    let id = env.id();
    env.create(&id).ok();
    let init = env.state(&id)["pid"].as_i64().unwrap() as i32;
    for s in secrets() {
        assert!(!memory_holds(init, s.as_bytes()), "init holds {s}");
    }
    let record = crate::harness::read(&env.root.join(&id).join("credentials.json"));
    let record: Value = serde_json::from_str(&record).unwrap();
    let key = record["env"]["ANTHROPIC_API_KEY"].as_str().unwrap();
    assert!(
        memory_holds(init, key.as_bytes()),
        "the scan finds the placeholder"
    );
    env.delete(&id).ok();
}

#[test]
fn features_claim_credentials() {
    if skip() {
        return;
    }
    let out = std::process::Command::new(crate::harness::runtime())
        .arg("features")
        .output()
        .expect("run features");
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("features JSON");
    assert_eq!(
        doc["annotations"]["org.ward.interception.credentials"], "true",
        "{doc}"
    );
}
