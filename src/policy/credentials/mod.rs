//! Credentials that never enter the container (issue 17): the container holds a worthless
//! placeholder (`ward-cred-` + 128 random bits); the egress proxy swaps it for the secret only in
//! requests its binding allows (host, method, path), and refuses it anywhere else.
//!
//! This module is the proxy's side of the contract, independent of how the values were found
//! (`container::credentials` reads them at create from the container's own env and files):
//! `Secret` (wiped on drop, never printed), `Binding` (one placeholder and where it may go),
//! `Vault` (every binding of one container, what the proxy holds).

pub mod b64;
mod filter;
pub mod sigv4;
pub mod swap;
pub mod violation;

use std::fmt;
use std::sync::OnceLock;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::spec::domains::http::PathPattern;
use crate::spec::domains::Pattern;

/// Every placeholder starts so (the rest: lower-case letters and digits, so it survives shells,
/// JSON, URLs, header values and DNS labels unchanged).
pub const PREFIX: &str = "ward-cred-";
/// Random characters after the prefix (base32: 26 x 5 bits = 130 bits).
pub const RANDOM_CHARS: usize = 26;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A secret's bytes: zeroed on drop; `Debug` shows only its length.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// One placeholder and where its secret may be sent.
#[derive(Debug)]
pub struct Binding {
    /// For logs and refusals: the entry as written, never its value
    /// (`credentials.envVars[0] (ANTHROPIC_API_KEY)`).
    pub name: String,
    pub placeholder: String,
    pub secret: Secret,
    /// `injectHosts` (default: the allowed domains).
    pub hosts: Vec<Pattern>,
    /// `None`: any method.
    pub methods: Option<Vec<String>>,
    /// `None`: any path (matched on the normalised path, as http rules are).
    pub paths: Option<Vec<PathPattern>>,
}

/// Every binding of one container.
#[derive(Debug, Default)]
pub struct Vault {
    pub bindings: Vec<Binding>,
    /// `allowPlaintextInject`: placeholders in plain-HTTP request headers are swapped too (the
    /// secret then crosses the network in clear); default false: refused.
    pub allow_plaintext_inject: bool,
    /// AWS credential pairs re-signed by SigV4 (`sigv4`); their secret keys are sign-only.
    pub aws: Vec<sigv4::AwsPair>,
    /// The placeholders' and secrets' search (`filter::Index`), built on first use; a vault
    /// whose bindings changed after that fails closed (every search refuses).
    index: OnceLock<filter::Index>,
}

impl Vault {
    /// A vault (its search is built on first use: bindings may still be pushed until then).
    pub fn new(bindings: Vec<Binding>, allow_plaintext_inject: bool) -> Vault {
        Vault {
            bindings,
            allow_plaintext_inject,
            aws: Vec::new(),
            index: OnceLock::new(),
        }
    }

    fn index(&self) -> &filter::Index {
        let index = self.index.get_or_init(|| filter::Index::build(self));
        if index.bindings != self.bindings.len() {
            tracing::error!("credentials: bindings changed after the vault was first used");
            return filter::Index::broken();
        }
        index
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Whether some binding may be injected at `host:port` (`host` normalised: lower case, no
    /// trailing dot): then TLS to it is terminated so that requests can be judged and swapped.
    pub fn binds(&self, host: &str, port: u16) -> bool {
        let Some(h) = crate::spec::domains::destination(host) else {
            return false;
        };
        self.bindings
            .iter()
            .any(|b| b.hosts.iter().any(|p| p.matches(&h, port)))
    }
}

/// A fresh placeholder: `ward-cred-` and 26 random base32 characters, padded with more random
/// characters to `len` when that is longer (so a swap keeps a body's length where it can).
pub fn mint(len: usize) -> Result<String> {
    let n = RANDOM_CHARS.max(len.saturating_sub(PREFIX.len()));
    let mut bytes = vec![0u8; n];
    random(&mut bytes)?;
    let mut s = String::with_capacity(PREFIX.len() + n);
    s.push_str(PREFIX);
    s.extend(bytes.iter().map(|b| ALPHABET[usize::from(b & 31)] as char));
    Ok(s)
}

/// Fills `buf` from the kernel's CSPRNG (getrandom(2), blocking until it is seeded).
pub fn random(buf: &mut [u8]) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: the pointer and length describe `rest`, a live, writable slice.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::Init(format!("getrandom: {e}")));
        }
        done += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_distinct_and_dns_safe() {
        let a = mint(0).unwrap();
        let b = mint(0).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), PREFIX.len() + RANDOM_CHARS);
        assert!(a.len() <= 63, "fits one DNS label");
        assert!(a[PREFIX.len()..]
            .bytes()
            .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c)));
        assert_eq!(mint(80).unwrap().len(), 80);
    }

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new(b"sk-live-123".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(11 bytes)");
    }
}
