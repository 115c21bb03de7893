//! Corners where a drop-in runtime must behave as runc (issue 14): cwd entered before the user
//! switch, fds the waiting init must not hold, rootfs propagation, hooks, the tty's owner and
//! bind sources only the runtime can reach.

use crate::harness::Env;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

/// runc enters process.cwd before switching to process.user and tries again after only when
/// the first try is refused: a cwd of mode 700 owned by root works for uid 1000.
#[test]
fn cwd_only_root_can_enter_works_for_a_non_root_user() {
    let mut env = Env::new();
    std::fs::set_permissions(
        env.rootfs().join("root"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    env.config["process"]["cwd"] = json!("/root");
    env.args(&[
        "sh",
        "-c",
        "pwd; id -u; ls . >/dev/null 2>&1 || echo cannot-list",
    ]);
    let out = env.run(&env.id());
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "/root\n1000\ncannot-list\n"),
        "{out:?}"
    );
}
