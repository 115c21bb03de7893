//! Capability names in the config: those that are not capabilities, or that this kernel does not
//! have, are dropped before the config is read (as runc does); `policy::capabilities` sets the
//! rest.

use std::str::FromStr;

use caps::Capability as Cap;

/// Removes from `process.capabilities` (a config's `process` object) every name that is not a
/// capability, or one this kernel does not have, with runc's one warning listing them: a
/// profile written for another kernel or runtime version still runs, as under runc.
pub fn skip_unknown(process: &mut serde_json::Value) {
    let known = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    let usable = |name: &str| {
        serde_json::from_value::<oci_spec::runtime::Capability>(name.into()).is_ok()
            && Cap::from_str(name).is_ok_and(|c| known.contains(&c))
    };
    let mut skipped: Vec<String> = Vec::new();
    let Some(sets) = process
        .get_mut("capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    for set in sets.values_mut() {
        let Some(names) = set.as_array_mut() else {
            continue;
        };
        names.retain(|n| match n.as_str() {
            Some(name) if !usable(name) => {
                if !skipped.iter().any(|s| s == name) {
                    skipped.push(name.to_string());
                }
                false
            }
            _ => true,
        });
    }
    // The config is read more than once by some commands (tier routing, then create): warn once.
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !skipped.is_empty() && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "ignoring unknown or unavailable capabilities: [{}]",
            skipped.join(" ")
        );
    }
}
