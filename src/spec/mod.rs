//! The config, the bottom layer: the parsed bundle and every extension ward adds to it
//! (Landlock, interception/egress, isolation annotations, sysctl and resource rules), as types,
//! JSON and validation. Nothing here touches the kernel or imports a runtime module: policies
//! read the spec, never the reverse.

#[cfg(target_os = "linux")]
#[cfg(test)]
pub(crate) mod fuzz;
#[cfg(test)]
pub(crate) mod schema_check;
pub mod template;

#[cfg(target_os = "linux")]
pub mod bundle;
#[cfg(target_os = "linux")]
pub mod capabilities;
#[cfg(target_os = "linux")]
pub mod credentials;
#[cfg(target_os = "linux")]
pub mod domains;
#[cfg(target_os = "linux")]
pub mod interception;
#[cfg(target_os = "linux")]
pub mod isolation;
#[cfg(target_os = "linux")]
pub mod json;
#[cfg(target_os = "linux")]
pub mod landlock;
#[cfg(target_os = "linux")]
pub mod resources;
#[cfg(target_os = "linux")]
pub mod sandbox;
#[cfg(target_os = "linux")]
pub mod sysctl;

#[cfg(target_os = "linux")]
pub use bundle::Bundle;
#[cfg(target_os = "linux")]
pub use json::{from_value, parse_json};

/// The annotation listing refused spec fields the user accepts to run without on macOS
/// (comma-separated, exactly as the error names them). Potentially unsafe: `features` says so.
pub const DARWIN_ALLOW_UNENFORCED: &str = "org.ward.darwin.allow-unenforced";
