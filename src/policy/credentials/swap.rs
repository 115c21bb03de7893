//! The swap itself (issue 17): placeholder -> secret in a request the binding allows, refusal of
//! a placeholder anywhere else, secret -> placeholder in what comes back.
//!
//! The contract between the TLS pipeline (`policy::proxy::tls`), plain HTTP
//! (`policy::proxy::flow`), DNS (`policy::proxy::dns`) and the search (`filter`).
//!
//! A binding matches a request when its host (`host:port` against `injectHosts`, as
//! `Vault::binds`), its method (exact) and its normalised path (`paths`, compared exactly as
//! http allow rules are) all do. Then its placeholder is swapped for the secret in header
//! values (also inside `Authorization: Basic base64(user:pass)`), in the query and in the body;
//! a placeholder in a request that does not match its binding is a `Violation`, and so is one
//! where it is never swapped: the request path, a header name, `Host`, a DNS name, a
//! placeholder spelled with percent-escapes in the query. What comes back has every secret
//! replaced by its placeholder. Placeholders are compared case-sensitively (they are lower
//! case), except in DNS names.

use std::borrow::Cow;

use zeroize::Zeroizing;

use super::filter::{broken, Mode};
pub use super::filter::{BodyFilter, FilterState};
pub use super::violation::{Place, RequestView, Violation};
use super::{b64, Binding, Vault};
use crate::spec::domains::http::PathPattern;

impl Vault {
    /// The first binding whose placeholder occurs in `bytes` (as written: case-sensitive).
    pub fn find(&self, bytes: &[u8]) -> Option<&Binding> {
        let Ok(mut found) = self.index().placeholders.matches(bytes) else {
            return self.bindings.first(); // no search: take everything for a placeholder
        };
        let (_, _, i) = found.next()?;
        self.bindings.get(i)
    }

    /// The first binding whose placeholder occurs in a DNS name given by its labels: any
    /// label, case-insensitive, also spelled across labels (`ward-cred-ab.cd.evil.test`).
    pub fn find_in_name<'l>(&self, labels: impl Iterator<Item = &'l [u8]>) -> Option<&Binding> {
        let mut dotted = Vec::new();
        let mut joined = Vec::new();
        for l in labels {
            if !dotted.is_empty() {
                dotted.push(b'.');
            }
            dotted.extend(l.iter().map(u8::to_ascii_lowercase));
            joined.extend(l.iter().map(u8::to_ascii_lowercase));
        }
        self.find(&dotted).or_else(|| self.find(&joined))
    }

    /// The first binding whose placeholder occurs in `bytes` or in `bytes` percent-decoded
    /// (a request target), or in the credentials of a Basic `Authorization` value.
    pub fn find_encoded(&self, bytes: &[u8]) -> Option<&Binding> {
        self.find(bytes)
            .or_else(|| {
                if bytes.contains(&b'%') {
                    self.find(&percent_decode(bytes))
                } else {
                    None
                }
            })
            .or_else(|| self.find(&basic_credentials(bytes)?))
    }

    /// `text` with every placeholder replaced by `[placeholder]` (for logs and refusals).
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.find(text.as_bytes()).is_none() {
            return Cow::Borrowed(text);
        }
        let Ok(found) = self.index().placeholders.matches(text.as_bytes()) else {
            return Cow::Borrowed("[redacted]");
        };
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        for (start, end, _) in found {
            out.push_str(&text[done..start]);
            out.push_str("[placeholder]");
            done = end;
        }
        out.push_str(&text[done..]);
        Cow::Owned(out)
    }

    /// Why binding `i` may not be injected into `req` (`None`: it may).
    pub fn refusal(&self, i: usize, req: &RequestView<'_>) -> Option<String> {
        let Some(b) = self.bindings.get(i) else {
            return Some("no such binding".into());
        };
        if self.sign_only(i) {
            return Some(
                "it is an AWS secret access key: it only signs requests (SigV4), it is never sent"
                    .into(),
            );
        }
        self.mismatch(b, req)
    }

    /// Why `req` is not where `b` may go (host, method, normalised path), if it is not.
    pub fn mismatch(&self, b: &Binding, req: &RequestView<'_>) -> Option<String> {
        let host_ok = crate::spec::domains::destination(req.host)
            .is_some_and(|h| b.hosts.iter().any(|p| p.matches(&h, req.port)));
        if !host_ok {
            let host = self.redact(req.host);
            return Some(format!("{host}:{} is not among its hosts", req.port));
        }
        if let Some(m) = &b.methods {
            if !m.iter().any(|x| x == req.method) {
                return Some(format!("{} is not among its methods", req.method));
            }
        }
        if let Some(ps) = &b.paths {
            if !ps.iter().any(|p| path_matches(p, req.path)) {
                let path = self.redact(req.path);
                return Some(format!("{} {path} is not among its paths", req.method));
            }
        }
        None
    }

    /// Judges and swaps the request's headers in place: every placeholder in a header value is
    /// replaced by its secret when `req` matches its binding (host, method, path), else the
    /// whole request is refused. A placeholder in the target (path or query) is a violation.
    /// Returns the indexes (in `bindings`) of what was injected, for `responses`.
    ///
    /// A placeholder in the query of a matching request is allowed here but swapped only by
    /// `swap_target` (which the caller applies to the target it sends).
    pub fn swap_request(
        &self,
        req: &RequestView<'_>,
        headers: &mut http::HeaderMap,
    ) -> Result<Vec<usize>, Violation> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        self.check_target(req)?;
        let mut injected = Vec::new();
        for (name, value) in headers.iter_mut() {
            let Some(new) =
                self.swap_header(req, name.as_str(), value.as_bytes(), &mut injected)?
            else {
                continue;
            };
            let Ok(mut v) = http::HeaderValue::from_bytes(&new) else {
                let b = injected.last().and_then(|&i| self.bindings.get(i));
                return Err(Violation {
                    binding: b.map_or_else(|| "credentials".into(), |b| b.name.clone()),
                    place: Place::Header(name.as_str().to_string()),
                    why: "its secret cannot stand in a header value".into(),
                });
            };
            // Never indexed by HPACK/QPACK upstream.
            v.set_sensitive(true);
            *value = v;
        }
        injected.sort_unstable();
        injected.dedup();
        Ok(injected)
    }

    /// One header (as sent, any case) judged and swapped: `Ok(None)` when it holds no
    /// placeholder; the indexes of the bindings injected are pushed on `injected`. A placeholder
    /// in a header name or in `Host` is never swapped.
    pub fn swap_header(
        &self,
        req: &RequestView<'_>,
        name: &str,
        value: &[u8],
        injected: &mut Vec<usize>,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Violation> {
        let lower = name.to_ascii_lowercase();
        if let Some(b) = self.find(lower.as_bytes()) {
            return Err(Violation {
                binding: b.name.clone(),
                place: Place::Header("(its name)".into()),
                why: "a placeholder in a header name is never swapped".into(),
            });
        }
        let place = Place::Header(lower.clone());
        let never = matches!(lower.as_str(), "host" | ":authority");
        let judge = |i: usize| {
            if never {
                Some("a placeholder in the Host is never swapped".to_string())
            } else {
                self.refusal(i, req)
            }
        };
        let mut out = self.replace(value, &judge, &place, Encoding::Raw, injected)?;
        if lower == "authorization" || lower == "proxy-authorization" {
            let now = out.as_deref().map_or(value, |v| &v[..]);
            if let Some(new) = self.swap_basic(now, &judge, &place, injected)? {
                out = Some(new);
            }
        }
        Ok(out)
    }

    /// `Basic base64(user:pass)` whose decoded credentials hold a placeholder: decoded,
    /// swapped, encoded again.
    fn swap_basic(
        &self,
        value: &[u8],
        judge: &dyn Fn(usize) -> Option<String>,
        place: &Place,
        injected: &mut Vec<usize>,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Violation> {
        let Some(plain) = basic_credentials(value) else {
            return Ok(None);
        };
        let Some(swapped) = self.replace(&plain, judge, place, Encoding::Raw, injected)? else {
            return Ok(None);
        };
        let mut out = Zeroizing::new(b"Basic ".to_vec());
        out.extend_from_slice(&b64::encode(&swapped));
        Ok(Some(out))
    }

    /// A placeholder in the path is a violation; one in the query is one unless its binding
    /// matches `req`.
    fn check_target(&self, req: &RequestView<'_>) -> Result<(), Violation> {
        if let Some(b) = self.find(req.path.as_bytes()) {
            return Err(in_path(b));
        }
        let labels = req.host.split('.').map(str::as_bytes);
        if let Some(b) = self
            .find_in_name(labels)
            .or_else(|| self.find(req.method.as_bytes()))
        {
            return Err(Violation {
                binding: b.name.clone(),
                place: Place::Target,
                why: "a placeholder in the host name or the method is never swapped".into(),
            });
        }
        if let Some(q) = req.query {
            let decoded = percent_decode(q.as_bytes());
            let hits: Vec<usize> = match self.index().placeholders.matches(&decoded) {
                Ok(found) => found.map(|(_, _, i)| i).collect(),
                Err(()) => return Err(broken()),
            };
            for i in hits {
                if let Some(why) = self.refusal(i, req) {
                    return Err(violation(self, i, Place::Target, why));
                }
            }
        }
        Ok(())
    }

    /// The request target (origin form, `path?query`) to send: `Ok(None)` when it holds no
    /// placeholder, else its query with each placeholder swapped for its secret
    /// (percent-encoded) when `req` matches the binding. A placeholder in the path, or spelled
    /// with percent-escapes in the query, is a violation.
    pub fn swap_target(
        &self,
        req: &RequestView<'_>,
        target: &str,
    ) -> Result<Option<String>, Violation> {
        if self.is_empty() {
            return Ok(None);
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        if let Some(b) = self.find_encoded(path.as_bytes()) {
            return Err(in_path(b));
        }
        let Some(query) = query else {
            return Ok(None);
        };
        let judge = |i: usize| self.refusal(i, req);
        let mut injected = Vec::new();
        let swapped = self.replace(
            query.as_bytes(),
            &judge,
            &Place::Target,
            Encoding::Query,
            &mut injected,
        )?;
        let now = swapped.as_deref().map_or(query.as_bytes(), |v| &v[..]);
        if let Some(b) = self.find(&percent_decode(now)) {
            return Err(Violation {
                binding: b.name.clone(),
                place: Place::Target,
                why: "a placeholder spelled with percent-escapes is never swapped".into(),
            });
        }
        let Some(swapped) = swapped else {
            return Ok(None);
        };
        // Query bytes from a &str and percent-encoded secrets: UTF-8.
        let query = String::from_utf8_lossy(&swapped);
        Ok(Some(format!("{path}?{query}")))
    }

    /// Every placeholder in `hay` replaced by its secret (`judge(i)`: `None` to swap, else the
    /// refusal); `Ok(None)` when there is none.
    fn replace(
        &self,
        hay: &[u8],
        judge: &dyn Fn(usize) -> Option<String>,
        place: &Place,
        encoding: Encoding,
        injected: &mut Vec<usize>,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Violation> {
        let Ok(found) = self.index().placeholders.matches(hay) else {
            return Err(broken());
        };
        let mut out: Option<Zeroizing<Vec<u8>>> = None;
        let mut done = 0;
        for (start, end, i) in found {
            if let Some(why) = judge(i) {
                return Err(violation(self, i, place.clone(), why));
            }
            let Some(b) = self.bindings.get(i) else {
                return Err(broken());
            };
            let o = out.get_or_insert_with(|| {
                Zeroizing::new(Vec::with_capacity(hay.len() + 2 * b.secret.expose().len()))
            });
            o.extend_from_slice(&hay[done..start]);
            match encoding {
                Encoding::Raw => o.extend_from_slice(b.secret.expose()),
                Encoding::Query => percent_encode(b.secret.expose(), o),
            }
            done = end;
            injected.push(i);
        }
        if let Some(o) = out.as_mut() {
            o.extend_from_slice(&hay[done..]);
        }
        Ok(out)
    }

    /// A filter for the request body: any placeholder is refused, to a bound request too. The
    /// secret goes in headers and the query only (issue 17, item 3): a body's content is the
    /// workload's to shape, so a secret swapped into it could come back transformed (reversed,
    /// translated, a byte range of a stored object) where masking cannot recognise it.
    pub fn request_body(&self, req: &RequestView<'_>) -> BodyFilter<'_> {
        let refusals = (0..self.bindings.len())
            .map(|i| {
                Some(match self.refusal(i, req) {
                    Some(why) => why,
                    None => "a placeholder in a request body is never swapped (headers and the \
                             query carry the secret; a body could send it back transformed)"
                        .to_string(),
                })
            })
            .collect();
        BodyFilter::new(
            self,
            Mode::Request {
                refusals,
                place: Place::Body,
            },
        )
    }

    /// A filter for a plain-HTTP request body: any placeholder is refused
    /// (`Place::Plaintext`), whatever `allowPlaintextInject` says (it covers headers only).
    pub fn plaintext_body(&self) -> BodyFilter<'_> {
        let why = "a placeholder in a plain-HTTP request body is never swapped";
        let refusals = self
            .bindings
            .iter()
            .map(|_| Some(why.to_string()))
            .collect();
        BodyFilter::new(
            self,
            Mode::Request {
                refusals,
                place: Place::Plaintext,
            },
        )
    }

    /// Replaces, in response header values, every secret by its placeholder (also inside a
    /// `Basic` credential echoed back).
    pub fn mask_response(&self, headers: &mut http::HeaderMap) {
        if self.is_empty() {
            return;
        }
        for (_, value) in headers.iter_mut() {
            let masked = self.mask(value.as_bytes()).or_else(|| {
                let plain = basic_credentials(value.as_bytes())?;
                let masked = self.mask(&plain)?;
                let mut out = b"Basic ".to_vec();
                out.extend_from_slice(&b64::encode(&masked));
                Some(out)
            });
            let Some(masked) = masked else {
                continue;
            };
            match http::HeaderValue::from_bytes(&masked) {
                Ok(v) => *value = v,
                // Cannot happen (a placeholder is a valid value where a secret stood); never
                // let the secret through.
                Err(_) => *value = http::HeaderValue::from_static(""),
            }
        }
    }

    /// `bytes` with every secret replaced by its placeholder; `None` when there is none.
    pub fn mask(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let Ok(found) = self.index().secrets.matches(bytes) else {
            return Some(Vec::new());
        };
        let mut out: Option<Vec<u8>> = None;
        let mut done = 0;
        for (start, end, i) in found {
            let o = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            o.extend_from_slice(&bytes[done..start]);
            if let Some(b) = self.bindings.get(i) {
                o.extend_from_slice(b.placeholder.as_bytes());
            }
            done = end;
        }
        if let Some(o) = out.as_mut() {
            o.extend_from_slice(&bytes[done..]);
        }
        out
    }

    /// Whether every placeholder is as long as its secret: then a swapped or masked body keeps
    /// its length (and its Content-Length holds); else a body the filters may rewrite must be
    /// sent without one (chunked, or HTTP/2 frames). `mint(len)` pads placeholders to their
    /// secret's length only when the secret is the longer.
    pub fn same_lengths(&self) -> bool {
        self.bindings
            .iter()
            .all(|b| b.placeholder.len() == b.secret.expose().len())
    }

    /// A filter for the response body: every secret replaced by its placeholder.
    pub fn response_body(&self) -> BodyFilter<'_> {
        BodyFilter::new(self, Mode::Response)
    }
}

#[derive(Clone, Copy)]
enum Encoding {
    Raw,
    /// Percent-encoded but for unreserved bytes (a query value).
    Query,
}

fn violation(vault: &Vault, i: usize, place: Place, why: String) -> Violation {
    let binding = vault
        .bindings
        .get(i)
        .map_or_else(|| "credentials".into(), |b| b.name.clone());
    Violation {
        binding,
        place,
        why,
    }
}

fn in_path(b: &Binding) -> Violation {
    Violation {
        binding: b.name.clone(),
        place: Place::Target,
        why: "a placeholder in the request path is never swapped".into(),
    }
}

/// As http allow rules compare (exact, case-sensitive; `Below` ends in `/`).
fn path_matches(p: &PathPattern, path: &str) -> bool {
    match p {
        PathPattern::Exact(x) => x == path,
        PathPattern::Below(prefix) => path.starts_with(prefix.as_str()),
    }
}

/// The credentials of a `Basic` authorization value, decoded.
fn basic_credentials(value: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let value = value.trim_ascii();
    let (scheme, token) = value.split_at(value.iter().position(|&c| c == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    b64::decode(token.trim_ascii())
}

/// Every `%XX` decoded (a `%` without two hex digits stays).
fn percent_decode(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes
            .get(i + 1)
            .copied()
            .and_then(hex)
            .zip(bytes.get(i + 2).copied().and_then(hex));
        match (bytes[i], pair) {
            (b'%', Some((h, l))) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `bytes` percent-encoded but for unreserved bytes (RFC 3986 2.3), appended to `out`.
fn percent_encode(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in bytes {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
        }
    }
}

#[cfg(test)]
#[path = "swap_tests.rs"]
mod tests;
