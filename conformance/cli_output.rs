//! What scripts and shims read from the command line: exit codes and messages of `kill`
//! (liveness with signal 0, `--all`), warnings for skipped config entries, `--version`, help,
//! `--debug` lines, `events`, completions and the man page — each as runc prints it.

use crate::harness::{alive, Env};
use serde_json::json;

/// `kill ID 0` is a liveness check (0 while created or running, non-zero with runc's message
/// once stopped); `kill --all` of a stopped container succeeds, of an unknown id fails.
#[test]
fn kill_zero_checks_liveness_and_kill_all_exit_codes() {
    let mut env = Env::new();
    env.args(&["sleep", "60"]);
    let id = env.id();
    env.create(&id).ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(
        env.kill(&id, "0").code,
        0,
        "created: {:?}",
        env.kill(&id, "0")
    );
    env.start(&id).ok();
    env.kill(&id, "0").ok();
    env.rt(&["kill", "--all", &id, "0"]).ok();
    assert!(alive(pid), "signal 0 must not hurt init");
    assert_eq!(env.state(&id)["status"], "running");
    env.kill(&id, "KILL").ok();
    env.wait_status(&id, "stopped");
    let dead = env.kill(&id, "0");
    assert_ne!(dead.code, 0, "stopped: {dead:?}");
    assert!(dead.stderr.contains("container not running"), "{dead:?}");
    env.rt(&["kill", "-a", &id, "KILL"]).ok();
    env.rt(&["kill", "--all", &id, "0"]).ok();
    let nosuch = env.rt(&["kill", "nosuch-lcf", "0"]);
    assert_ne!(nosuch.code, 0, "{nosuch:?}");
    assert!(nosuch.stderr.contains("does not exist"), "{nosuch:?}");
    assert_ne!(env.rt(&["kill", "-a", "nosuch-lcf"]).code, 0);
    env.delete(&id).ok();
}

/// A capability name the kernel (or the spec) does not know is skipped with runc's warning,
/// once; the known ones are granted.
#[test]
fn unknown_capability_names_warn_and_are_skipped() {
    let mut env = Env::new();
    for set in ["bounding", "effective", "permitted"] {
        env.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .extend([
                json!("CAP_NOSUCH"),
                json!("CAP_SYS_ADMIN"),
                json!("CAP_NOSUCH"),
            ]);
    }
    env.args(&["sh", "-c", "grep CapEff /proc/self/status"]);
    let id = env.id();
    let out = env.run(&id);
    assert_eq!(out.code, 0, "{out:?}");
    // AUDIT_WRITE (29), SYS_ADMIN (21), NET_BIND_SERVICE (10), KILL (5).
    assert!(out.stdout.contains("0000000020200420"), "{out:?}");
    let warning = "ignoring unknown or unavailable capabilities: [CAP_NOSUCH]";
    assert_eq!(out.stderr.matches(warning).count(), 1, "{out:?}");
    assert!(out.stderr.contains("level=warning"), "{out:?}");

    // The same for `exec --process`: the process.json's unknown names are skipped too.
    let id = env.run_sleeping();
    let mut process = env.config["process"].clone();
    process["args"] = json!(["sh", "-c", "grep CapEff /proc/self/status"]);
    let pfile = env.dir.join("process.json");
    std::fs::write(&pfile, process.to_string()).unwrap();
    let out = env.rt(&["exec", "--process", pfile.to_str().unwrap(), &id]);
    assert_eq!(out.code, 0, "exec --process: {out:?}");
    assert!(out.stdout.contains("0000000020200420"), "{out:?}");
    assert!(out.stderr.contains(warning), "{out:?}");
    env.kill(&id, "KILL");
}

/// `--version` in runc's three-line shape (scripts grep `<name> version X`, `commit:`,
/// `spec:`); `ward version` says the same (runc has no such command). Help has runc's
/// `NAME:`/`USAGE:`/`COMMANDS:`/`GLOBAL OPTIONS:` sections, per command too; an unknown
/// help topic is an error with runc's words.
#[test]
fn version_and_help_in_runcs_shape() {
    let env = Env::new();
    let name = std::path::Path::new(&env.binary)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut forms = vec![vec!["--version"], vec!["-v"]];
    if crate::harness::runtime_is_runc() {
        eprintln!("skipped (`version` command): runc has none, ward adds it as the issue asks");
    } else {
        forms.push(vec!["version"]);
    }
    for args in forms {
        let out = env.rt(&args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert!(lines.len() >= 3, "{out:?}");
        assert!(lines[0].starts_with(&format!("{name} version ")), "{out:?}");
        let v = lines[0].rsplit(' ').next().unwrap();
        assert!(
            v.chars().next().unwrap().is_ascii_digit() && v.contains('.'),
            "{v}"
        );
        assert!(lines[1].starts_with("commit: "), "{out:?}");
        assert!(lines[2].starts_with("spec: 1."), "{out:?}");
    }
    for args in [vec!["-h"], vec!["--help"], vec!["help"]] {
        let out = env.rt(&args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        for section in [
            format!("NAME:\n   {name} - "),
            format!("USAGE:\n   {name} [global options] command [command options] [arguments...]"),
            "\nCOMMANDS:\n".to_string(),
            "\nGLOBAL OPTIONS:\n".to_string(),
        ] {
            assert!(
                out.stdout.contains(&section),
                "{args:?} lacks {section:?}: {}",
                out.stdout
            );
        }
        let commands = out.stdout.split("\nCOMMANDS:\n").nth(1).unwrap_or_default();
        for cmd in ["create", "delete", "kill", "exec", "events"] {
            assert!(
                commands
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
                "{cmd} listed: {}",
                out.stdout
            );
        }
    }
    for args in [vec!["help", "kill"], vec!["kill", "--help"]] {
        let out = env.rt(&args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(
            out.stdout.starts_with(&format!("NAME:\n   {name} kill - ")),
            "{args:?}: {}",
            out.stdout
        );
        assert!(out.stdout.contains("USAGE:\n   "), "{}", out.stdout);
    }
    let nosuch = env.rt(&["help", "nosuch"]);
    assert_ne!(nosuch.code, 0, "{nosuch:?}");
    assert!(
        nosuch.stderr.contains("No help topic for 'nosuch'"),
        "{nosuch:?}"
    );
}

/// Log lines of `--log FILE` in `format`: each must be in that format; (level, msg) pairs.
fn log_lines(path: &std::path::Path, format: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            if format == "json" {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
                assert!(v["time"].is_string(), "{l}");
                (
                    v["level"].as_str().unwrap_or_default().to_string(),
                    v["msg"].as_str().unwrap_or_default().to_string(),
                )
            } else {
                assert!(l.starts_with("time=\""), "not a logrus text line: {l}");
                let level = l
                    .split(" level=")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .unwrap_or_else(|| panic!("no level: {l}"));
                let msg = l
                    .split(" msg=")
                    .nth(1)
                    .unwrap_or_else(|| panic!("no msg: {l}"));
                (level.to_string(), msg.to_string())
            }
        })
        .collect()
}

/// `--debug` writes debug lines for the steps of create, in the chosen --log-format, to
/// --log; without it there are none.
#[test]
fn debug_logs_the_steps_of_create_in_the_chosen_format() {
    let mut env = Env::new();
    env.args(&["sleep", "60"]);
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    for format in ["json", "text"] {
        for debug in [true, false] {
            let log = env.dir.join(format!("log-{format}-{debug}"));
            let id = env.id();
            let mut args = vec!["--log", log.to_str().unwrap(), "--log-format", format];
            if debug {
                args.push("--debug");
            }
            args.extend(["create", "--bundle", &b, &id]);
            env.rt(&args).ok();
            let lines = log_lines(&log, format);
            let debug_lines = lines.iter().filter(|(l, _)| l == "debug").count();
            if debug {
                assert!(
                    debug_lines >= 5,
                    "{format}: {debug_lines} debug lines for create: {lines:#?}"
                );
            } else {
                assert_eq!(debug_lines, 0, "{format}: {lines:#?}");
            }
            env.rt(&["delete", "--force", &id]).ok();
        }
    }
}

/// The key paths of a JSON document (objects only; arrays by their first element).
fn key_paths(v: &serde_json::Value, at: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}.{k}");
                out.insert(p.clone());
                key_paths(x, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            if let Some(x) = a.first() {
                key_paths(x, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

/// `events --stats` prints exactly one JSON object: `{"type":"stats","id":..,"data":{..}}`
/// with runc's sections (cpu, memory, pids, blkio) and the memory limit where runc puts it.
#[test]
fn events_stats_is_one_json_object_in_runcs_shape() {
    let mut env = Env::new();
    env.config["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024});
    env.config["linux"]["resources"]["pids"] = json!({"limit": 100});
    let id = env.run_sleeping();
    let out = env.rt(&["events", "--stats", &id]);
    assert_eq!(out.code, 0, "{out:?}");
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&out.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    assert_eq!(docs.len(), 1, "{out:?}");
    let ev = &docs[0];
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    let mut paths = std::collections::BTreeSet::new();
    key_paths(&ev["data"], "", &mut paths);
    for p in [
        ".cpu.usage.total",
        ".cpu.usage.percpu",
        ".cpu.usage.percpu_kernel",
        ".cpu.usage.percpu_user",
        ".cpu.throttling",
        ".memory.usage.usage",
        ".memory.usage.limit",
        ".memory.usage.max",
        ".memory.swap",
        ".memory.kernel",
        ".memory.raw",
        ".pids.current",
        ".pids.limit",
        ".blkio",
    ] {
        assert!(paths.contains(p), "{p} missing from {paths:#?}");
    }
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 64 * 1024 * 1024);
    assert_eq!(ev["data"]["pids"]["limit"], 100);
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 1);
}

/// A detached container limited to 16 MiB that waits for the host's `/sync/go` (the returned
/// dir), then runs `eat` (which eats memory until the kernel kills the eater).
fn detached_memory_eater(eat: &str) -> (Env, String, std::path::PathBuf) {
    let mut env = Env::new();
    env.config["linux"]["resources"]["memory"] =
        json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
    let sync = env.shared_dir("sync", "/sync");
    let script = format!("while [ ! -e /sync/go ]; do sleep 0.05; done; {eat}");
    env.args(&["sh", "-c", &script]);
    let id = env.id();
    env.write_config();
    let b = env.bundle.to_str().unwrap().to_string();
    env.rt(&["run", "-d", "--bundle", &b, &id]).ok();
    (env, id, sync)
}

/// `events` streams `{"type":"oom"}` once the container hits its memory limit, also with a
/// short `--interval`, and also when the OOM kill ends the container (init was the eater).
#[test]
fn events_streams_oom_when_init_itself_is_killed() {
    let (env, id, sync) = detached_memory_eater("exec tail /dev/zero");
    let out_file = env.dir.join("events");
    let mut child = std::process::Command::new(&env.binary)
        .arg("--root")
        .arg(&env.root)
        .args(["events", "--interval", "1s", &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(sync.join("go"), "").unwrap();
    env.wait_status(&id, "stopped");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&out_file).unwrap_or_default();
    assert!(
        text.lines().any(|l| serde_json::from_str::<serde_json::Value>(l)
            .is_ok_and(|v| v["type"] == "oom")),
        "no oom event: {text}"
    );
    env.rt(&["delete", "--force", &id]).ok();
}

/// `events` streams `{"type":"oom"}` once the container hits its memory limit, also with a
/// short `--interval`.
#[test]
fn events_streams_oom_at_the_memory_limit() {
    let (env, id, sync) = detached_memory_eater("tail /dev/zero; sleep 60");
    for interval in [None, Some("200ms")] {
        let out_file = env.dir.join(format!("events-{interval:?}"));
        let mut cmd = std::process::Command::new(&env.binary);
        cmd.arg("--root").arg(&env.root).arg("events");
        if let Some(i) = interval {
            cmd.args(["--interval", i]);
        }
        let mut child = cmd
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_file).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        if interval.is_none() {
            std::fs::write(sync.join("go"), "").unwrap();
        } else {
            env.rt(&["exec", "-d", &id, "tail", "/dev/zero"]).ok();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        let mut found = false;
        while std::time::Instant::now() < deadline && !found {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let text = std::fs::read_to_string(&out_file).unwrap_or_default();
            found = text.lines().any(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .is_ok_and(|v| v["type"] == "oom" && v["id"] == id.as_str())
            });
        }
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        assert!(
            found,
            "interval {interval:?}: no oom event in {} lines: {}",
            text.lines().count(),
            text.lines().rev().take(3).collect::<Vec<_>>().join("\n")
        );
    }
    env.rt(&["delete", "--force", &id]).ok();
}

/// `completion bash|zsh|fish` print scripts generated from the command line (bash's really
/// completes `cre` to `create` and `delete --f` to `--force`), and `make install` puts the
/// man pages (section 8, one per command) and the completions where the shells look.
#[test]
fn completions_and_man_pages_are_generated_and_installed() {
    if crate::harness::runtime_is_runc() {
        eprintln!("skipped: runc has no completion command (its man pages come from its docs)");
        return;
    }
    let env = Env::new();
    let bash = env.rt(&["completion", "bash"]);
    assert_eq!(bash.code, 0, "{bash:?}");
    let script = env.dir.join("ward.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let complete = |words: &str| {
        let probe = format!(
            "source {s}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); \
             _ward ward \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; echo \"${{COMPREPLY[@]}}\"",
            s = script.display()
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &probe])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("ward cre"), "create");
    assert!(complete("ward delete --f")
        .split(' ')
        .any(|w| w == "--force"));
    let zsh = env.rt(&["completion", "zsh"]);
    assert!(
        zsh.code == 0 && zsh.stdout.starts_with("#compdef ward"),
        "{zsh:?}"
    );
    let fish = env.rt(&["completion", "fish"]);
    assert!(
        fish.code == 0 && fish.stdout.contains("complete -c ward"),
        "{fish:?}"
    );
    assert_ne!(env.rt(&["completion", "nosuch"]).code, 0);

    let dest = env.dir.join("dest");
    let make = std::process::Command::new("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-s", "-o", "build", "install"])
        .arg(format!("DESTDIR={}", dest.display()))
        .arg(format!("WARD_BIN={}", env.binary))
        .output()
        .unwrap();
    assert!(make.status.success(), "{make:?}");
    let share = dest.join("usr/local/share");
    for f in [
        "bash-completion/completions/ward",
        "zsh/site-functions/_ward",
        "fish/vendor_completions.d/ward.fish",
        "man/man8/ward.8",
        "man/man8/ward-create.8",
        "man/man8/ward-delete.8",
    ] {
        let text = std::fs::read_to_string(share.join(f)).unwrap_or_default();
        assert!(text.len() > 100, "{f}: {text:?}");
    }
    let page = std::fs::read_to_string(share.join("man/man8/ward-delete.8")).unwrap();
    assert!(page.contains(".TH ward-delete 8"), "{page}");
    assert!(page.contains("force"), "{page}");
    assert!(dest.join("usr/local/bin/ward").exists());
}

/// A reader that goes away (`ward list | head -1`, a shim closing its end): the reporting
/// commands end as runc's do, killed by SIGPIPE, with no panic and no message on stderr.
#[test]
fn reporting_commands_end_quietly_on_a_closed_stdout() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let mut env = Env::new();
    let id = env.run_sleeping();
    for args in [
        vec!["list"],
        vec!["list", "--format", "json"],
        vec!["state", id.as_str()],
        vec!["features"],
        vec!["--version"],
    ] {
        // A pipe whose read end is closed before the runtime writes: every write is EPIPE.
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let mut all = vec!["--root", env.root.to_str().unwrap()];
        all.extend(&args);
        let out = Command::new(crate::harness::runtime())
            .args(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::from(w))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && stderr.trim().is_empty(),
            "{args:?}: stderr {stderr:?}"
        );
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?}",
            out.status
        );
    }
    env.rt(&["delete", "--force", &id]).ok();
}
