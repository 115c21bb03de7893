//! The gvisor isolation tier: a container whose annotation asks for it (or a runtime whose
//! --default-isolation is gvisor) runs under runsc's kernel; ward routes every command, keeps
//! its own state shapes, and fails closed when runsc is missing. ward-only.

use crate::harness::{runtime_is_runc, Env};
use serde_json::json;

fn have_runsc() -> bool {
    if runtime_is_runc() {
        eprintln!("skipped: runc has no isolation tiers");
        return false;
    }
    assert!(
        std::path::Path::new("/usr/bin/runsc").exists(),
        "runsc is missing: apt-get install runsc (CI installs it)"
    );
    true
}

fn gvisor_env(args: &[&str]) -> Env {
    let mut env = Env::new();
    env.args(args);
    env.config["annotations"] = json!({"org.ward.isolation": "gvisor"});
    env
}

fn runsc_processes_for(root: &std::path::Path) -> usize {
    let needle = root.join("@runsc").to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn gvisor_container_sees_gvisors_kernel_and_is_routed() {
    if !have_runsc() {
        return;
    }
    let env = gvisor_env(&["sleep", "60"]);
    let id = env.id();
    env.create(&id).ok();
    let st = env.state(&id);
    assert_eq!(st["status"], "created");
    for key in ["rootfs", "created", "owner"] {
        assert!(
            st.get(key).is_some(),
            "ward's state shape keeps {key}: {st}"
        );
    }
    env.start(&id).ok();
    assert_eq!(env.state(&id)["status"], "running");
    let uname = env.rt(&["exec", &id, "uname", "-r"]);
    assert_eq!(
        uname.stdout.trim(),
        "4.4.0",
        "gVisor reports its own kernel: {uname:?}"
    );
    let dmesg = env.rt(&["exec", &id, "dmesg"]);
    assert!(dmesg.stdout.contains("gVisor"), "{dmesg:?}");
    let list = env.rt(&["list", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == id.as_str() && c["status"] == "running"));
    let ps = env.rt(&["ps", "--format", "json", &id]);
    assert!(
        serde_json::from_str::<Vec<i64>>(&ps.stdout).is_ok(),
        "{ps:?}"
    );
    env.kill(&id, "KILL").ok();
    env.wait_status(&id, "stopped");
    env.delete(&id).ok();
    assert!(!env.root.join(&id).exists(), "ward's record is gone");
    assert_eq!(runsc_processes_for(&env.root), 0, "no runsc process left");
    let runsc_state = std::fs::read_dir(env.root.join("@runsc"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(runsc_state, 0, "no runsc state left");
}

#[test]
fn default_isolation_gvisor_and_annotations_only_raise() {
    if !have_runsc() {
        return;
    }
    let env = Env::new();
    let b = env.bundle.to_str().unwrap().to_string();
    let mut env = env;
    env.args(&["uname", "-r"]);
    env.write_config();
    let id = env.id();
    let out = env.rt(&["--default-isolation", "gvisor", "run", "--bundle", &b, &id]);
    assert_eq!(out.stdout.trim(), "4.4.0", "{out:?}");
    let before = env.root_entries();
    env.config["annotations"] = json!({"org.ward.isolation": "native"});
    env.write_config();
    let id2 = env.id();
    let lowered = env.rt(&["--default-isolation", "gvisor", "run", "--bundle", &b, &id2]);
    assert_ne!(lowered.code, 0, "a pod cannot escape to native");
    assert!(lowered.stderr.contains("only raise"), "{lowered:?}");
    env.assert_nothing_left(&id2, &before);
}

#[test]
fn missing_runsc_fails_closed_and_unhonoured_features_are_refused() {
    if !have_runsc() {
        return;
    }
    let env = gvisor_env(&["true"]);
    env.write_config();
    let before = env.root_entries();
    let id = env.id();
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.rt_cmd(&["run", "--bundle", &b, &id], |c| {
        c.env("PATH", "/nonexistent");
    });
    assert_ne!(out.code, 0, "never a silent fall back to native: {out:?}");
    assert!(out.stderr.contains("runsc is not installed"), "{out:?}");
    env.assert_nothing_left(&id, &before);

    let mut env = gvisor_env(&["true"]);
    env.config["annotations"]["org.ward.landlock"] = json!("auto");
    let id = env.id();
    let refused = env.run(&id);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("Landlock is not available in the gvisor"),
        "{refused:?}"
    );
}

/// Live processes (runsc-sandbox, runsc-gofer, any runsc) whose command line names this Env's
/// runsc root: (pid, command line).
fn runsc_helpers_for(root: &std::path::Path) -> Vec<(i32, String)> {
    let needle = root.join("@runsc").to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (crate::harness::alive(pid as i64) && cmd.contains(&needle)).then_some((pid, cmd))
        })
        .collect()
}

/// `delete -f` of a running gvisor container ends its sandbox and gofer (counted before and
/// after), for a started container, for one only created, and for one whose runsc record
/// was lost (runsc's own delete then fails and ends nothing).
#[test]
fn gvisor_delete_force_ends_sandbox_and_gofer() {
    if !have_runsc() {
        return;
    }
    for (start, lose_record) in [(true, false), (false, false), (true, true)] {
        let env = gvisor_env(&["sleep", "60"]);
        let id = env.id();
        env.create(&id).ok();
        if start {
            env.start(&id).ok();
            assert_eq!(env.state(&id)["status"], "running");
        }
        let before = runsc_helpers_for(&env.root);
        let names: Vec<&str> = before.iter().map(|(_, c)| c.as_str()).collect();
        assert!(
            names.iter().any(|c| c.starts_with("runsc-sandbox"))
                && names.iter().any(|c| c.starts_with("runsc-gofer")),
            "a sandbox and a gofer run before delete: {names:#?}"
        );
        if lose_record {
            for e in std::fs::read_dir(env.root.join("@runsc"))
                .unwrap()
                .flatten()
            {
                if e.file_name().to_string_lossy().ends_with(".state") {
                    std::fs::remove_file(e.path()).unwrap();
                }
            }
        }
        let del = env.rt(&["delete", if start { "-f" } else { "--force" }, &id]);
        assert_eq!(del.code, 0, "{del:?}");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let after = runsc_helpers_for(&env.root);
        assert_eq!(
            after,
            Vec::<(i32, String)>::new(),
            "started {start}, record lost {lose_record}: runsc processes left after delete -f ({} before)",
            before.len()
        );
        assert!(!env.root.join(&id).exists(), "ward's record is gone");
    }
}
