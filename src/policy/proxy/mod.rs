//! The egress proxy (issues 16 and 17). Its decisions are pure and kernel-independent so that
//! each is unit-tested without root: which upstream addresses may be dialed (`upstream`), the server
//! name a TLS ClientHello asks for (`sni`), an HTTP/1.x request head (`http`) and the
//! normalised path that method/path rules match (`path`).
//!
//! How the proxy uses them, per client connection:
//! 1. Read into a buffer; for TLS call `sni::client_hello(&buf)` after each read until it is
//!    `Ok` (`Incomplete { needed }`: read at least that much more; `Invalid`: refuse), never
//!    holding more than `sni::MAX_BUFFER`. For plain HTTP or CONNECT call
//!    `http::parse_head(&buf, &Limits::default())` until `Ok(Some(head))`; the name is
//!    `head.authority()`, the path `head.normalized_path()` (refuse when its `quirks.any()` on
//!    a host with path rules).
//! 2. Resolve the allowed name, then for each answer call
//!    `upstream::refuse(addr, &host, |a| upstream::ip_verdict(&rules, a, port))` with
//!    `host = upstream::host_addrs()?` (fresh) and `rules = network.rules()?`; dial only an
//!    address that got `None`, and log a `Refusal` (its `reason.as_str()` and `Display`).
//!
//! The proxy process itself (issue 16's design, "The proxy process"): `daemon` (the double
//! fork, hardening, `Plan`/`spawn` for create), `serve` (the runtime and its four listeners),
//! `dns` (the slot's DNS and `names`, its table), `transparent` and `explicit` (the two TCP
//! listeners), `session`/`flow`/`conn` (judging a connection's first bytes, HTTP request by
//! request, relaying), `shared` (dialling exactly what `upstream` let through, after
//! `resolve`), `record` (the violation log's lines). Create does not start it yet.

pub mod ca;
mod conn;
pub mod daemon;
pub mod dns;
mod explicit;
mod flow;
pub mod http;
pub mod names;
pub mod path;
pub mod record;
pub mod resolve;
pub mod serve;
mod session;
mod shared;
pub mod sni;
pub mod tls;
mod transparent;
pub mod upstream;

#[cfg(test)]
mod props;
#[cfg(test)]
mod props_listeners;
