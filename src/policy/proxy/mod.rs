//! Decisions of the egress proxy (issues 16 and 17), pure and kernel-independent so that each is
//! unit-tested without root: which upstream addresses may be dialed (`upstream`), the server
//! name a TLS ClientHello asks for (`sni`), an HTTP/1.x request head (`http`) and the
//! normalised path that method/path rules match (`path`).
//!
//! Nothing here is wired into create or run yet: no proxy process exists, and no config is
//! enforced by these functions alone.

pub mod http;
pub mod path;
pub mod sni;
pub mod upstream;

#[cfg(test)]
mod props;
