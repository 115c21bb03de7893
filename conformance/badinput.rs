//! Bad input: every refusal exits non-zero and leaves nothing behind (no state dir, no root
//! entry, no process in the bundle, no mount referencing the bundle).

use crate::harness::Env;
use serde_json::json;
use std::fs;

/// Runs `create` with the current bundle and asserts failure with nothing left; returns stderr.
fn create_fails_cleanly(env: &Env, id: &str) -> String {
    let before = env.root_entries();
    let out = env.rt(&["create", "--bundle", env.bundle.to_str().unwrap(), id]);
    assert_ne!(out.code, 0, "create {id:?} should fail: {out:?}");
    env.assert_nothing_left(id, &before);
    out.stderr
}

#[test]
fn malformed_config_json() {
    let env = Env::new();
    fs::write(env.bundle.join("config.json"), "{ this is not json").unwrap();
    create_fails_cleanly(&env, &env.id());
}

#[test]
fn missing_config_json() {
    let env = Env::new();
    create_fails_cleanly(&env, &env.id());
}

#[test]
fn type_wrong_field_names_the_field() {
    let mut env = Env::new();
    env.config["process"]["user"] = json!({"uid": "zero", "gid": 0});
    env.write_config();
    let err = create_fails_cleanly(&env, &env.id());
    assert!(err.contains("uid"), "error should name the field: {err}");
}

#[test]
fn missing_rootfs() {
    let env = Env::new();
    fs::remove_dir_all(env.rootfs()).unwrap();
    env.write_config();
    create_fails_cleanly(&env, &env.id());
}

#[test]
fn missing_binary_in_container() {
    let mut env = Env::new();
    env.args(&["/bin/no-such-binary"]);
    env.write_config();
    let err = create_fails_cleanly(&env, &env.id());
    assert!(
        err.contains("no such file or directory") || err.contains("executable file not found"),
        "{err}"
    );

    env.args(&["no-such-binary"]);
    env.write_config();
    let err = create_fails_cleanly(&env, &env.id());
    assert!(
        err.contains("executable file not found"),
        "runc's wording for a PATH lookup miss: {err}"
    );
}

#[test]
fn unknown_container_id() {
    let env = Env::new();
    let id = env.id();
    for args in [
        vec!["state", &id],
        vec!["start", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
    ] {
        let out = env.rt(&args);
        assert_ne!(out.code, 0, "{args:?}: {out:?}");
        assert!(out.stderr.contains("does not exist"), "{args:?}: {out:?}");
    }
    assert!(env.root_entries().is_empty());
}

#[test]
fn unknown_signal_is_refused() {
    let mut env = Env::new();
    env.args(&["sleep", "100"]);
    let id = env.id();
    env.create(&id).ok();
    env.start(&id).ok();
    for sig in ["SIGNOPE", "NOPE", "999"] {
        let out = env.kill(&id, sig);
        assert_ne!(out.code, 0, "kill {sig}: {out:?}");
    }
    assert_eq!(
        env.state(&id)["status"],
        "running",
        "a refused kill must not touch the container"
    );
}

#[test]
fn hostile_ids_refused() {
    let mut env = Env::new();
    env.args(&["true"]);
    env.write_config();
    let long = "a".repeat(300);
    for id in ["../x", "a/b", ".", "..", "", long.as_str(), "/abs", "a\nb"] {
        create_fails_cleanly(&env, id);
        let escaped = env.root.parent().unwrap().join("x");
        assert!(!escaped.exists(), "id {id:?} escaped the state root");
    }
}

#[test]
fn duplicate_id_refused() {
    let mut env = Env::new();
    env.args(&["sleep", "100"]);
    let id = env.id();
    env.create(&id).ok();
    let first = env.state(&id);
    let before = env.root_entries();
    let out = env.create(&id);
    assert_ne!(out.code, 0, "{out:?}");
    assert_eq!(env.root_entries(), before);
    let again = env.state(&id);
    assert_eq!(
        (&again["pid"], &again["status"]),
        (&first["pid"], &first["status"]),
        "original container disturbed"
    );
}
