//! An HTTP/1.x request head as the egress proxy judges it (issues 16 and 17): the method, the
//! target in its four forms (origin `/p?q`, absolute `http://h/p`, authority `h:443` for
//! CONNECT, `*` for OPTIONS), the Host header, and the body's framing, within limits.
//!
//! httparse does the tokenising (request line, header names and values, CRLFs): small, no
//! dependencies, no allocation, fuzzed upstream, and the parser hyper uses. What it leaves to
//! its caller is done here, strictly, because a proxy that reads a request differently from the
//! origin lets a request through that it never judged: exactly one Host in HTTP/1.1, an
//! absolute-form or CONNECT authority that must agree with Host, no userinfo or fragment, and
//! request smuggling shapes refused (Content-Length beside Transfer-Encoding, differing
//! Content-Lengths, a Transfer-Encoding that does not end in `chunked`, or any in HTTP/1.0,
//! lines ended by a bare LF).

use std::fmt;
use std::net::Ipv6Addr;

use super::path::{self, Normalized};

/// Bounds on what a client may make the proxy hold before its request is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the request line and headers, the final CRLF included.
    pub max_head: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    /// 32 KiB and 100 headers: above what browsers, curl and SDKs send (nginx allows 4 x 8 KiB
    /// lines by default, Node 16 KiB in all), small enough to hold for thousands of clients.
    fn default() -> Self {
        Limits {
            max_head: 32 * 1024,
            max_headers: 100,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// The host as sent (a name, an IPv4 address, or an IPv6 address without its brackets).
    pub host: String,
    pub port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/path?query`, as sent.
    Origin(String),
    /// `http://authority/path?query`; `https` too (a client may send it to a proxy).
    Absolute {
        https: bool,
        authority: Authority,
        /// The path and query, `/` when the target had none.
        path: String,
    },
    /// `host:port`, CONNECT only.
    Authority(Authority),
    /// `*`, OPTIONS only.
    Asterisk,
}

/// How the body after the head is framed (RFC 9112 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: Target,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The Host header, parsed.
    pub host: Option<Authority>,
    /// Every header in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Body,
    /// Bytes of the head in the buffer; the body (or the tunnel, after CONNECT) starts here.
    pub len: usize,
}

impl RequestHead {
    /// The authority the request is for: the target's (absolute form, CONNECT), else Host.
    pub fn authority(&self) -> Option<&Authority> {
        match &self.target {
            Target::Absolute { authority, .. } | Target::Authority(authority) => Some(authority),
            Target::Origin(_) | Target::Asterisk => self.host.as_ref(),
        }
    }

    /// The normalised path and the query, for an origin- or absolute-form target.
    pub fn normalized_path(&self) -> Option<Normalized> {
        match &self.target {
            Target::Origin(p) | Target::Absolute { path: p, .. } => Some(path::normalize(p)),
            Target::Authority(_) | Target::Asterisk => None,
        }
    }

    /// The values of every header named `name` (case-insensitive).
    pub fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The head is longer than `Limits::max_head` (431 or 400).
    HeadTooLarge {
        limit: usize,
    },
    /// More headers than `Limits::max_headers` (431).
    TooManyHeaders {
        limit: usize,
    },
    /// The request line or a header is not HTTP/1.x (httparse's reason).
    Malformed(String),
    BadTarget(&'static str),
    BadHost(&'static str),
    /// An HTTP/1.1 request without Host.
    MissingHost,
    DuplicateHost,
    /// The absolute-form or CONNECT authority and the Host header name different servers.
    HostMismatch,
    /// Content-Length/Transfer-Encoding that two parsers could read differently.
    BadFraming(&'static str),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLarge { limit } => {
                write!(f, "request head longer than {limit} bytes")
            }
            HttpError::TooManyHeaders { limit } => write!(f, "more than {limit} headers"),
            HttpError::Malformed(why) => write!(f, "malformed request: {why}"),
            HttpError::BadTarget(why) => write!(f, "bad request target: {why}"),
            HttpError::BadHost(why) => write!(f, "bad host: {why}"),
            HttpError::MissingHost => write!(f, "HTTP/1.1 request without a Host header"),
            HttpError::DuplicateHost => write!(f, "more than one Host header"),
            HttpError::HostMismatch => {
                write!(
                    f,
                    "the request target and the Host header name different hosts"
                )
            }
            HttpError::BadFraming(why) => write!(f, "ambiguous body framing: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is incomplete (read more
/// and call again with the whole buffer).
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<RequestHead>, HttpError> {
    let window = &buf[..buf.len().min(limits.max_head)];
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => {
            return Err(HttpError::HeadTooLarge {
                limit: limits.max_head,
            })
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders {
                limit: limits.max_headers,
            })
        }
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    // httparse also takes a bare LF as a line end (RFC 9112 2.2 allows that); an origin that
    // does not would read the header lines differently, so the proxy refuses it.
    let head = &window[..len];
    if head
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
    {
        return Err(HttpError::Malformed("a line ends in a bare LF".into()));
    }
    let (Some(method), Some(raw_target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(HttpError::Malformed("incomplete request line".into()));
    };
    let headers: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    let target = target(method, raw_target)?;
    let host = host_header(&headers, minor_version)?;
    match (&target, &host) {
        (
            Target::Absolute {
                https, authority, ..
            },
            Some(h),
        ) => {
            let default = if *https { 443 } else { 80 };
            if !same_server(authority, h, Some(default)) {
                return Err(HttpError::HostMismatch);
            }
        }
        (Target::Authority(authority), Some(h)) if !same_server(authority, h, None) => {
            return Err(HttpError::HostMismatch);
        }
        (Target::Origin(_) | Target::Asterisk, None) if minor_version == 1 => {
            return Err(HttpError::MissingHost);
        }
        _ => {}
    }
    let body = framing(&headers, minor_version)?;
    Ok(Some(RequestHead {
        method: method.to_string(),
        target,
        minor_version,
        host,
        headers,
        body,
        len,
    }))
}

fn target(method: &str, raw: &str) -> Result<Target, HttpError> {
    let bad = |why| Err(HttpError::BadTarget(why));
    if raw.contains('#') {
        return bad("a fragment (#) is not sent in a request");
    }
    if method == "CONNECT" {
        let a = authority(raw)?;
        if a.port.is_none() {
            return bad("CONNECT needs host:port");
        }
        return Ok(Target::Authority(a));
    }
    if raw == "*" {
        return if method == "OPTIONS" {
            Ok(Target::Asterisk)
        } else {
            bad("* is for OPTIONS only")
        };
    }
    if raw.starts_with('/') {
        return Ok(Target::Origin(raw.to_string()));
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return bad("neither /path, scheme://authority nor CONNECT host:port");
    };
    let https = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return bad("the scheme is not http or https");
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, path) = rest.split_at(end);
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}") // "" or "?query"
    };
    Ok(Target::Absolute {
        https,
        authority: authority(auth)?,
        path,
    })
}

/// `host[:port]`, `[v6][:port]`: a DNS name or an address, no userinfo, no escapes.
fn authority(text: &str) -> Result<Authority, HttpError> {
    let bad = |why| Err(HttpError::BadHost(why));
    if text.contains('@') {
        return bad("userinfo (user@) is not allowed");
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return bad("unclosed [");
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return bad("not an IPv6 address inside []");
        }
        match after {
            "" => (v6, None),
            p => match p.strip_prefix(':') {
                Some(p) => (v6, Some(p)),
                None => return bad("bytes after ]"),
            },
        }
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return bad("port out of range"),
            }
        }
        Some(_) => return bad("port is not a number"),
    };
    if !text.starts_with('[') {
        host_name(host)?;
    }
    Ok(Authority {
        host: host.to_string(),
        port,
    })
}

/// A DNS name or dotted IPv4 address: the bytes DNS names use, labels of 1..=63 bytes.
fn host_name(host: &str) -> Result<(), HttpError> {
    let bare = host.strip_suffix('.').unwrap_or(host);
    if bare.is_empty() || bare.len() > 253 {
        return Err(HttpError::BadHost("empty or longer than 253 bytes"));
    }
    for label in bare.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(HttpError::BadHost("an empty label or one over 63 bytes"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(HttpError::BadHost("a byte not allowed in a host name"));
        }
    }
    Ok(())
}

fn host_header(
    headers: &[(String, Vec<u8>)],
    minor_version: u8,
) -> Result<Option<Authority>, HttpError> {
    let mut hosts = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"));
    let Some((_, value)) = hosts.next() else {
        return Ok(None);
    };
    if hosts.next().is_some() {
        return Err(HttpError::DuplicateHost);
    }
    let text = std::str::from_utf8(value).map_err(|_| HttpError::BadHost("not ASCII"))?;
    if text.is_empty() && minor_version == 0 {
        return Ok(None);
    }
    authority(text).map(Some)
}

/// Same host (ASCII case and a trailing dot aside) and the same port, a missing port being
/// `default` (absolute form) or matching any (CONNECT's Host often omits it).
fn same_server(target: &Authority, host: &Authority, default: Option<u16>) -> bool {
    let name = |a: &Authority| a.host.trim_end_matches('.').to_ascii_lowercase();
    let ports = match default {
        Some(d) => target.port.unwrap_or(d) == host.port.unwrap_or(d),
        None => host.port.is_none() || host.port == target.port,
    };
    name(target) == name(host) && ports
}

fn framing(headers: &[(String, Vec<u8>)], minor_version: u8) -> Result<Body, HttpError> {
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .map(|v| v.trim_ascii())
    };
    let mut codings = values("transfer-encoding").peekable();
    if codings.peek().is_some() {
        if minor_version == 0 {
            return Err(HttpError::BadFraming("Transfer-Encoding in HTTP/1.0"));
        }
        if values("content-length").next().is_some() {
            return Err(HttpError::BadFraming(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        let codings: Vec<&[u8]> = codings.collect();
        let chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
        let count = codings.iter().filter(|c| chunked(c)).count();
        if codings.last().is_some_and(|c| chunked(c)) && count == 1 {
            return Ok(Body::Chunked);
        }
        return Err(HttpError::BadFraming(
            "Transfer-Encoding does not end in a single chunked",
        ));
    }
    let mut length = None;
    for v in values("content-length") {
        if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
            return Err(HttpError::BadFraming("Content-Length is not a number"));
        }
        let n = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(HttpError::BadFraming("Content-Length is not a number"))?;
        if length.is_some_and(|l| l != n) {
            return Err(HttpError::BadFraming("differing Content-Lengths"));
        }
        length = Some(n);
    }
    Ok(length.map_or(Body::None, Body::Length))
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
