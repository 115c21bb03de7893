//! The swap itself (issue 17): placeholder -> secret in a request the binding allows, refusal of
//! a placeholder anywhere else, secret -> placeholder in what comes back.
//!
//! SKELETON: the signatures are the contract between the TLS pipeline (`policy::proxy::tls`),
//! plain HTTP (`policy::proxy::flow`), DNS (`policy::proxy::dns`) and this module; the bodies
//! are filled in by the swap work (see /work/notes/design17.md, H2). Until then nothing is
//! swapped and nothing is found.

use bytes::Bytes;

use super::{Binding, Vault};

/// The request a placeholder was found in, as the proxy judged it.
#[derive(Clone, Copy, Debug)]
pub struct RequestView<'a> {
    /// Lower case, no trailing dot (what the name/SNI/:authority agreed on).
    pub host: &'a str,
    pub port: u16,
    /// As sent (methods are case-sensitive).
    pub method: &'a str,
    /// The normalised path (`spec::domains::path::normalize`), no query.
    pub path: &'a str,
    /// The raw query (after `?`), if any.
    pub query: Option<&'a str>,
}

/// Where a placeholder was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A request header (its name, lower case).
    Header(String),
    /// The request target: path or query.
    Target,
    Body,
    DnsName,
    /// A plain-HTTP request (no TLS: never injected unless `allowPlaintextInject`).
    Plaintext,
}

/// A placeholder where its binding does not allow it: refused (403), recorded as an
/// exfiltration attempt with the binding's name (never the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// `Binding::name`.
    pub binding: String,
    pub place: Place,
    /// One sentence for the record ("POST /v1/files is not among the binding's paths").
    pub why: String,
}

impl Violation {
    /// The record's `denied` text: the binding's name, where, why; never a value.
    pub fn reason(&self) -> String {
        let place = match &self.place {
            Place::Header(h) => format!("header {h}"),
            Place::Target => "request target".to_string(),
            Place::Body => "request body".to_string(),
            Place::DnsName => "DNS name".to_string(),
            Place::Plaintext => "plain-HTTP request".to_string(),
        };
        format!(
            "placeholder of {} in the {place}: {} (exfiltration attempt)",
            self.binding, self.why
        )
    }
}

impl Vault {
    /// The first binding whose placeholder occurs in `bytes`.
    pub fn find(&self, bytes: &[u8]) -> Option<&Binding> {
        let _ = bytes;
        None
    }

    /// Judges and swaps the request's headers in place: every placeholder in a header value is
    /// replaced by its secret when `req` matches its binding (host, method, path), else the
    /// whole request is refused. A placeholder in the target (path or query) is a violation.
    /// Returns the indexes (in `bindings`) of what was injected, for `responses`.
    pub fn swap_request(
        &self,
        req: &RequestView<'_>,
        headers: &mut http::HeaderMap,
    ) -> Result<Vec<usize>, Violation> {
        let _ = (req, headers);
        Ok(Vec::new())
    }

    /// A filter for the request body: to a host some binding matches, its placeholders are
    /// swapped (where `req` matches) or refused; to any other host, any placeholder is refused.
    pub fn request_body(&self, req: &RequestView<'_>) -> BodyFilter<'_> {
        let _ = req;
        BodyFilter { vault: self }
    }

    /// Replaces, in response header values, every secret by its placeholder.
    pub fn mask_response(&self, headers: &mut http::HeaderMap) {
        let _ = headers;
    }

    /// A filter for the response body: every secret replaced by its placeholder.
    pub fn response_body(&self) -> BodyFilter<'_> {
        BodyFilter { vault: self }
    }
}

/// A streaming search-and-replace over a body: between chunks it holds back only the tail of
/// what it has seen that is a prefix of some needle (at most the longest needle minus one
/// byte), so a needle split across chunks is still found and nothing else is delayed: a chunk
/// that does not end in the start of a needle goes out whole (server-sent events keep flowing).
pub struct BodyFilter<'v> {
    vault: &'v Vault,
}

impl BodyFilter<'_> {
    /// The bytes of `chunk` that can be sent now.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Bytes, Violation> {
        let _ = self.vault;
        Ok(Bytes::copy_from_slice(chunk))
    }

    /// What was held back, at the end of the body.
    pub fn finish(&mut self) -> Result<Bytes, Violation> {
        Ok(Bytes::new())
    }
}
