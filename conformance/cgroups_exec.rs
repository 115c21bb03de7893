//! `exec` corners on a hybrid host, against runc: `--cap` (which sets it reaches), the cgroups
//! an exec'd process joins (every v1 hierarchy and the unified one, `--cgroup`), `update`'s
//! write order and device access strings, and the container's view of /sys/fs/cgroup.

use crate::harness::Env;
use serde_json::json;

/// The capability sets of `/proc/self/status` (CapInh, CapPrm, CapEff, CapBnd, CapAmb).
fn cap_sets(status: &str) -> std::collections::BTreeMap<String, u64> {
    status
        .lines()
        .filter_map(|l| l.strip_prefix("Cap")?.split_once(":\t"))
        .map(|(k, v)| (k.to_string(), u64::from_str_radix(v.trim(), 16).unwrap()))
        .collect()
}

/// runc (since 1.1.2, CVE-2022-29162): `exec --cap X` adds X to the bounding, effective and
/// permitted sets, never to the inheritable one; ambient only follows where the process
/// already has an inheritable set (none in this config), so both stay empty.
#[test]
fn exec_cap_reaches_bounding_effective_permitted_only() {
    let mut env = Env::new();
    let id = env.run_sleeping();
    let out = env.rt(&[
        "exec",
        "--cap",
        "CAP_NET_RAW",
        "--cap",
        "CAP_SYS_PTRACE",
        &id,
        "cat",
        "/proc/self/status",
    ]);
    out.ok();
    let sets = cap_sets(&out.stdout);
    let (net_raw, ptrace) = (1u64 << 13, 1u64 << 19);
    for set in ["Bnd", "Eff", "Prm"] {
        assert_eq!(
            sets[set] & (net_raw | ptrace),
            net_raw | ptrace,
            "Cap{set}: {sets:?}"
        );
    }
    assert_eq!(sets["Inh"], 0, "CapInh: {sets:?}");
    assert_eq!(sets["Amb"], 0, "CapAmb: {sets:?}");
    // The container's own set is untouched: KILL (bit 5) stays, nothing else is added.
    let base = (1u64 << 5) | (1 << 10) | (1 << 29);
    assert_eq!(sets["Eff"], base | net_raw | ptrace, "{sets:?}");

    // Without --cap, the container's sets as they are.
    let plain = env.rt(&["exec", &id, "cat", "/proc/self/status"]);
    let sets = cap_sets(&plain.ok().stdout);
    assert_eq!(
        (sets["Eff"], sets["Bnd"], sets["Inh"]),
        (base, base, 0),
        "{sets:?}"
    );
}
