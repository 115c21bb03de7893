//! `--egress-ca FILE` (issue 17): the CA certificates the egress proxy trusts upstream besides
//! the host's store. A file that cannot be read, or holds no PEM certificate, fails create
//! naming the path, before anything is made. ward-only (runc has no such flag).

use crate::harness::{runtime_is_runc, Env};

fn skip() -> bool {
    if runtime_is_runc() {
        crate::skip::skipped("runc has no --egress-ca");
    }
    runtime_is_runc()
}

#[test]
fn a_bad_egress_ca_fails_create_naming_the_path_and_leaves_nothing() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    let shared = env.shared_dir("mark", "/mark");
    env.args(&["sh", "-c", "echo ran > /mark/ran"]);
    env.write_config();
    let missing = env.dir.join("no-such-ca.pem");
    let not_pem = env.dir.join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    for (file, why) in [(&missing, "No such file"), (&not_pem, "no PEM certificate")] {
        let before = env.root_entries();
        let id = env.id();
        let bundle = env.bundle.to_str().unwrap().to_string();
        let path = file.to_str().unwrap();
        let out = env.rt(&["--egress-ca", path, "create", "--bundle", &bundle, &id]);
        assert_ne!(out.code, 0, "{out:?}");
        assert!(out.stderr.contains(path), "names the path: {out:?}");
        assert!(out.stderr.contains(why), "{why}: {out:?}");
        env.assert_nothing_left(&id, &before);
    }
    assert!(!shared.join("ran").exists(), "the container ran");
}

#[test]
fn a_good_egress_ca_is_accepted() {
    if skip() {
        return;
    }
    let mut env = Env::new();
    env.args(&["true"]);
    env.write_config();
    let ca = env.dir.join("ca.pem");
    let pem = ward::policy::proxy::ca::Authority::generate("conformance")
        .unwrap()
        .cert_pem;
    std::fs::write(&ca, pem).unwrap();
    let id = env.id();
    let bundle = env.bundle.to_str().unwrap().to_string();
    let out = env.rt(&[
        "--egress-ca",
        ca.to_str().unwrap(),
        "run",
        "--bundle",
        &bundle,
        &id,
    ]);
    out.ok();
}
