//! The five capability sets of `process.capabilities`.
//!
//! Order: the bounding set is reduced while init is still root with every capability; after the
//! uid switch (with PR_SET_KEEPCAPS) effective, permitted, inheritable and ambient are set, the
//! effective set first so it is never larger than the permitted set being installed.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// Converts a spec set; capabilities the running kernel does not know are skipped with a
/// warning (runc does the same, so a newer profile still runs on an older kernel).
fn convert(set: &Option<Capabilities>, name: &str) -> CapsHashSet {
    let known = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        match Cap::from_str(&format!("CAP_{c}")) {
            Ok(cap) if known.contains(&cap) => {
                out.insert(cap);
            }
            _ => {
                tracing::warn!("capability CAP_{c} in {name} is not known to this kernel: skipped")
            }
        }
    }
    out
}

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

pub struct Sets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

pub fn from_spec(c: Option<&LinuxCapabilities>) -> Sets {
    match c {
        None => Sets {
            bounding: HashSet::new(),
            effective: HashSet::new(),
            permitted: HashSet::new(),
            inheritable: HashSet::new(),
            ambient: HashSet::new(),
        },
        Some(c) => Sets {
            bounding: convert(c.bounding(), "bounding"),
            effective: convert(c.effective(), "effective"),
            permitted: convert(c.permitted(), "permitted"),
            inheritable: convert(c.inheritable(), "inheritable"),
            ambient: convert(c.ambient(), "ambient"),
        },
    }
}

fn caps_err(what: &str, e: caps::errors::CapsError) -> Error {
    Error::Init(format!("capabilities: {what}: {e}"))
}

/// Drops from the bounding set every capability not in `sets.bounding`.
pub fn drop_bounding(sets: &Sets) -> Result<()> {
    let current = caps::read(None, CapSet::Bounding).map_err(|e| caps_err("read bounding", e))?;
    for cap in current.difference(&sets.bounding) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| caps_err(&format!("drop {cap} from bounding"), e))?;
    }
    Ok(())
}

/// Installs effective, permitted, inheritable and ambient.
pub fn apply(sets: &Sets) -> Result<()> {
    // The effective set may only hold permitted capabilities.
    let effective: CapsHashSet = sets
        .effective
        .intersection(&sets.permitted)
        .copied()
        .collect();
    caps::set(None, CapSet::Effective, &effective).map_err(|e| caps_err("set effective", e))?;
    caps::set(None, CapSet::Permitted, &sets.permitted)
        .map_err(|e| caps_err("set permitted", e))?;
    caps::set(None, CapSet::Inheritable, &sets.inheritable)
        .map_err(|e| caps_err("set inheritable", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err("clear ambient", e))?;
    for cap in &sets.ambient {
        // An ambient capability must be permitted and inheritable; the kernel refuses others.
        if sets.permitted.contains(cap) && sets.inheritable.contains(cap) {
            caps::raise(None, CapSet::Ambient, *cap)
                .map_err(|e| caps_err(&format!("raise ambient {cap}"), e))?;
        } else {
            tracing::debug!(
                "ambient capability {cap} is not both permitted and inheritable: skipped"
            );
        }
    }
    Ok(())
}
