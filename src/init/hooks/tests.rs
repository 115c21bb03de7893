//! Tests of `hooks` against the real kernel (ptys, processes).
use super::*;
use oci_spec::runtime::HookBuilder;
use std::path::Path;

fn hook(path: &str, args: &[&str], env: Option<&[&str]>, timeout: Option<i64>) -> Hook {
    let mut b = HookBuilder::default()
        .path(path)
        .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    if let Some(env) = env {
        b = b.env(env.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build().unwrap()
}

fn tmpfile(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("ward-hooks-{}-{}", std::process::id(), name));
    let _ = std::fs::remove_file(&p);
    p
}

const STATE: &[u8] =
    br#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b"}"#;

#[test]
fn state_is_written_to_stdin() {
    let f = tmpfile("stdin");
    let script = format!("cat > {}", f.display());
    let h = hook("/bin/sh", &["sh", "-c", &script], None, None);
    run_hooks(HookKind::Prestart, &[h], STATE).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), STATE);
    let _ = std::fs::remove_file(&f);
}

#[test]
fn nonzero_exit_reports_status_and_stderr() {
    let h = hook(
        "/bin/sh",
        &["sh", "-c", "echo 'no such network' >&2; exit 3"],
        None,
        None,
    );
    match run_hooks(HookKind::CreateRuntime, &[h], STATE) {
        Err(HookError::Failed {
            status,
            stderr,
            path,
            kind,
        }) => {
            assert_eq!(status, 3);
            assert_eq!(stderr, "no such network");
            assert_eq!(path, Path::new("/bin/sh"));
            assert_eq!(kind.to_string(), "createRuntime");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn timeout_kills_hook() {
    let h = hook("/bin/sleep", &["sleep", "5"], None, Some(1));
    let err = run_hooks(HookKind::Poststart, &[h], STATE).unwrap_err();
    assert!(
        matches!(err, HookError::Timeout { timeout: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn invalid_timeout_rejected() {
    let h = hook("/bin/true", &["true"], None, Some(0));
    let err = run_hooks(HookKind::Poststop, &[h], STATE).unwrap_err();
    assert!(
        matches!(err, HookError::InvalidTimeout { timeout: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn hook_ignoring_stdin_succeeds() {
    // A state larger than a pipe buffer must not block us either.
    let big = vec![b'x'; 256 * 1024];
    let h = hook("/bin/true", &["true"], None, Some(5));
    run_hooks(HookKind::StartContainer, &[h.clone(), h], &big).unwrap();
}

#[test]
fn args_and_env_are_honoured() {
    let f = tmpfile("env");
    let script = format!(
        "echo \"$0 $FOO ${{HOME-unset}} ${{TERM-unset}}\" > {}",
        f.display()
    );
    let h = hook(
        "/bin/sh",
        &["myhook", "-c", &script],
        Some(&["FOO=bar"]),
        None,
    );
    run_hooks(HookKind::CreateContainer, &[h], STATE).unwrap();
    // argv[0] from args, FOO from env, and nothing inherited (HOME, TERM unset).
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "myhook bar unset unset\n"
    );
    let _ = std::fs::remove_file(&f);
}

#[test]
fn missing_binary_is_spawn_error_and_stops_the_chain() {
    let f = tmpfile("chain");
    let missing = HookBuilder::default()
        .path("/nonexistent/hook")
        .build()
        .unwrap();
    let after = hook(
        "/bin/sh",
        &["sh", "-c", &format!("touch {}", f.display())],
        None,
        None,
    );
    let err = run_hooks(HookKind::Prestart, &[missing, after], STATE).unwrap_err();
    assert!(matches!(err, HookError::Spawn { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/hook"));
    assert!(!f.exists());
}

#[test]
fn signaled_hook_is_reported() {
    let h = hook("/bin/sh", &["sh", "-c", "kill -TERM $$"], None, None);
    let err = run_hooks(HookKind::Prestart, &[h], STATE).unwrap_err();
    assert!(
        matches!(err, HookError::Signaled { signal: 15, .. }),
        "{err:?}"
    );
}

#[test]
fn stderr_tail_is_bounded() {
    let h = hook(
        "/bin/sh",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 500 ]; do echo line$i >&2; i=$((i+1)); done; exit 1",
        ],
        None,
        None,
    );
    match run_hooks(HookKind::Prestart, &[h], STATE) {
        Err(HookError::Failed { stderr, .. }) => {
            assert!(stderr.len() <= STDERR_TAIL);
            assert!(stderr.ends_with("line499"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn kind_names_match_spec() {
    let names: Vec<String> = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
}
