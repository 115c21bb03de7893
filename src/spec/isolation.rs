//! The isolation tier a bundle asks for: `native` or `gvisor`, from the annotation
//! `org.ward.isolation` over the runtime's `--default-isolation` (raised, never lowered).
//! `container::tier` carries it out.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const ANNOTATION: &str = "org.ward.isolation";

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    #[default]
    Native,
    Gvisor,
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Native => "native",
            Tier::Gvisor => "gvisor",
        })
    }
}

/// The tier for a container: the runtime's default, raised (never lowered) by the annotation.
pub fn choose(default: Tier, annotations: Option<&HashMap<String, String>>) -> Result<Tier> {
    let Some(v) = annotations.and_then(|a| a.get(ANNOTATION)) else {
        return Ok(default);
    };
    let asked = match v.as_str() {
        "native" => Tier::Native,
        "gvisor" => Tier::Gvisor,
        other => {
            return Err(Error::spec(
                format!("annotations.{ANNOTATION}"),
                format!("{other:?} is not native or gvisor"),
            ))
        }
    };
    if asked < default {
        return Err(Error::spec(
            format!("annotations.{ANNOTATION}"),
            format!("{v} is below this runtime's default isolation ({default}): an annotation may only raise the tier"),
        ));
    }
    Ok(asked)
}
