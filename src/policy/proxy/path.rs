//! The normalised request path that method/path rules match: `spec::domains::path` (it lives in
//! the spec so that rules are checked for normal form when the config is read).

pub use crate::spec::domains::path::*;
