//! What the swap judges and what it refuses with (issue 17): the request as the proxy saw it,
//! where a placeholder was found, and the refusal, whose text names the binding, never a value.
//! Below both `swap` (which re-exports these) and `filter`.

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
