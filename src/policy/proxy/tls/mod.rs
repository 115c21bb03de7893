//! TLS termination for hosts with http rules or credentials (issue 17): the container's own
//! certificate authority (`ca`), made at create; its private key lives only in create's memory
//! until the fork and then only in the proxy's.

pub mod ca;
