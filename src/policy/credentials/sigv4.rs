//! AWS Signature Version 4 re-signing (issue 17, item 7): with `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY` masked, an AWS SDK inside the container signs its requests with the
//! placeholders. The proxy finds the pair by the access key id in `Credential=`, recomputes the
//! canonical request from what it received and checks the signature with the placeholder secret
//! (so the canonical form it computed is the one the client signed: anything it cannot
//! reproduce is refused, never forwarded half-signed), then signs the same request with the real
//! secret and puts the real key id (and session token) in.
//!
//! The secret-key placeholder is *sign-only*: it never travels in a request, so seeing it in
//! one (any header, query or body) is refused like any placeholder out of place, even on a
//! bound host: a bound host such as `*.amazonaws.com` includes buckets of anyone.
//!
//! Not re-signed (refused with a reason): signed streaming payloads
//! (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`, whose chunks carry their own signatures;
//! `STREAMING-UNSIGNED-PAYLOAD-TRAILER` is re-signed, its chunks are not signed) and bodies
//! larger than `MAX_HASHED_BODY` whose hash the client did not send in `x-amz-content-sha256`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::swap::{Place, RequestView, Violation};
use super::Vault;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The hash of an empty payload.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The largest body the proxy buffers to hash when the client did not send its hash.
pub const MAX_HASHED_BODY: usize = 1 << 20;
const CONTENT_SHA256: &str = "x-amz-content-sha256";
const SECURITY_TOKEN: &str = "x-amz-security-token";
const AMZ_DATE: &str = "x-amz-date";

/// One AWS credential: indexes into `Vault::bindings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AwsPair {
    /// `AWS_ACCESS_KEY_ID`: its placeholder appears in `Credential=`.
    pub key_id: usize,
    /// `AWS_SECRET_ACCESS_KEY`: sign-only, never sent.
    pub secret_key: usize,
    /// `AWS_SESSION_TOKEN`: sent in `x-amz-security-token`, swapped before signing.
    pub session_token: Option<usize>,
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 ...` value.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

/// `None`: not a SigV4 `Authorization` value; `Some(Err)`: SigV4 but malformed.
pub fn parse_authorization(value: &str) -> Option<Result<Authorization<'_>, String>> {
    let rest = value.strip_prefix(ALGORITHM)?;
    if !rest.starts_with(' ') {
        return None;
    }
    Some(parse_fields(rest.trim_start()))
}

fn parse_fields(s: &str) -> Result<Authorization<'_>, String> {
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in s.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("field {:?} has no '='", part.trim()))?;
        let slot = match k {
            "Credential" => &mut cred,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut sig,
            _ => return Err(format!("unknown field {k:?}")),
        };
        if slot.replace(v).is_some() {
            return Err(format!("field {k} given twice"));
        }
    }
    let cred = cred.ok_or("no Credential")?;
    let parts: Vec<&str> = cred.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = parts[..] else {
        return Err("Credential is not <key>/<date>/<region>/<service>/aws4_request".into());
    };
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err("Credential's date is not YYYYMMDD".into());
    }
    let signed_headers: Vec<&str> = signed.ok_or("no SignedHeaders")?.split(';').collect();
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err("SignedHeaders has an empty or upper-case name".into());
    }
    let signature = sig.ok_or("no Signature")?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("Signature is not 64 hex digits".into());
    }
    Ok(Authorization {
        key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// The canonical URI: S3 signs the path as sent; every other service signs it with dot
/// segments and empty segments removed, then percent-encoded once more (as botocore does).
pub fn canonical_uri(raw_path: &str, service: &str) -> String {
    if raw_path.is_empty() {
        return "/".into();
    }
    if service == "s3" {
        return raw_path.to_string();
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in raw_path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut path = String::new();
    if raw_path.starts_with('/') {
        path.push('/');
    }
    path.push_str(&out.join("/"));
    if raw_path.ends_with('/') && !out.is_empty() {
        path.push('/');
    }
    encode(&path, true)
}

/// Percent-encodes all but RFC 3986's unreserved characters (and `/` when `keep_slash`).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The canonical query: each name and value decoded and encoded again (unreserved kept), sorted
/// by name then value; `name=` for a name without a value.
pub fn canonical_query(raw_query: Option<&str>) -> String {
    let Some(q) = raw_query.filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let enc = |x: &str| encode(&String::from_utf8_lossy(&decode(x)), false);
            (enc(k), enc(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request the client signed. `authority`: the request's `:authority` (HTTP/2),
/// used for `host` when there is no Host header.
pub fn canonical_request(
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &http::HeaderMap,
    authority: Option<&str>,
    auth: &Authorization<'_>,
    payload_hash: &str,
) -> Result<String, String> {
    let mut canon = String::new();
    for name in &auth.signed_headers {
        let values: Vec<&str> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                v.to_str()
                    .map_err(|_| format!("signed header {name} is not text"))
            })
            .collect::<Result<_, _>>()?;
        let values = match (values.is_empty(), *name, authority) {
            (true, "host", Some(a)) => vec![a],
            (true, _, _) => return Err(format!("signed header {name} is not in the request")),
            _ => values,
        };
        let joined: Vec<String> = values
            .iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canon.push_str(name);
        canon.push(':');
        canon.push_str(&joined.join(","));
        canon.push('\n');
    }
    Ok(format!(
        "{method}\n{}\n{}\n{canon}\n{}\n{payload_hash}",
        canonical_uri(raw_path, auth.service),
        canonical_query(raw_query),
        auth.signed_headers.join(";"),
    ))
}

fn hmac(key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
    // A key of any length is accepted by HMAC; `new_from_slice` fails only for fixed-size MACs.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    Zeroizing::new(m.finalize().into_bytes().to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signature of `canonical` under `secret` (AWS's derived-key chain).
pub fn signature(
    secret: &[u8],
    auth: &Authorization<'_>,
    amz_date: &str,
    canonical: &str,
) -> String {
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut k = Zeroizing::new(b"AWS4".to_vec());
    k.extend_from_slice(secret);
    let k = hmac(&k, auth.date.as_bytes());
    let k = hmac(&k, auth.region.as_bytes());
    let k = hmac(&k, auth.service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    hex(&hmac(&k, to_sign.as_bytes()))
}

/// The hex SHA-256 of a body the proxy buffered (`MAX_HASHED_BODY` at most).
pub fn body_hash(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

/// What `Vault::resign` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Resigned {
    /// Not a SigV4 request of one of the vault's pairs: judge it as any other.
    NotSigned,
    /// The client did not send its payload hash: call again with the body's
    /// (`body_hash`), buffering at most `MAX_HASHED_BODY` (refuse a larger body).
    NeedBodyHash,
    /// Re-signed: the indexes of the bindings injected.
    Signed(Vec<usize>),
}

impl Vault {
    /// Whether binding `i` is a secret access key (sign-only: never injected as text).
    pub fn sign_only(&self, i: usize) -> bool {
        self.aws.iter().any(|p| p.secret_key == i)
    }

    /// Re-signs a SigV4 request signed with one of the vault's pairs: see the module's doc.
    /// `raw_path`/`raw_query`: the target as received (not normalised); `authority`: the
    /// HTTP/2 `:authority` when there is no Host header. Call before `swap_request`.
    pub fn resign(
        &self,
        req: &RequestView<'_>,
        raw_path: &str,
        authority: Option<&str>,
        parts: &mut http::request::Parts,
        body_sha256: Option<&str>,
    ) -> Result<Resigned, Violation> {
        let Some(value) = parts.headers.get(http::header::AUTHORIZATION) else {
            return Ok(Resigned::NotSigned);
        };
        let Ok(value) = value.to_str() else {
            return Ok(Resigned::NotSigned);
        };
        let value = value.to_string();
        let Some(auth) = parse_authorization(&value) else {
            return Ok(Resigned::NotSigned);
        };
        let Some(pair) = self.aws.iter().find(|p| {
            self.bindings
                .get(p.key_id)
                .is_some_and(|b| matches!(&auth, Ok(a) if a.key_id == b.placeholder))
        }) else {
            return Ok(Resigned::NotSigned);
        };
        let key_binding = &self.bindings[pair.key_id];
        let violation = |why: String| Violation {
            binding: key_binding.name.clone(),
            place: Place::Header("authorization".into()),
            why,
        };
        let auth = auth.map_err(|e| violation(format!("malformed SigV4 Authorization: {e}")))?;
        let (Some(secret_b), token_b) = (
            self.bindings.get(pair.secret_key),
            pair.session_token.and_then(|t| self.bindings.get(t)),
        ) else {
            return Err(violation("the pair has no secret key binding".into()));
        };
        for b in [Some(key_binding), Some(secret_b), token_b]
            .into_iter()
            .flatten()
        {
            if let Some(why) = self.mismatch(b, req) {
                return Err(Violation {
                    binding: b.name.clone(),
                    place: Place::Header("authorization".into()),
                    why,
                });
            }
        }
        let payload = match parts.headers.get(CONTENT_SHA256).map(|v| v.to_str()) {
            // Chunk signatures chain from the seed signature: re-signing the headers would
            // leave every chunk's signature wrong. `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (no
            // chunk signatures; botocore's S3 uploads since 1.36) stands for the payload hash
            // as `UNSIGNED-PAYLOAD` does.
            Some(Ok(h)) if h.starts_with("STREAMING-") && !h.starts_with("STREAMING-UNSIGNED") => {
                return Err(violation(format!(
                    "payload signing {h} (chunk signatures) cannot be re-signed by ward"
                )))
            }
            Some(Ok(h)) => h.to_string(),
            Some(Err(_)) => return Err(violation("x-amz-content-sha256 is not text".into())),
            None => match body_sha256 {
                Some(h) => h.to_string(),
                None => return Ok(Resigned::NeedBodyHash),
            },
        };
        let amz_date = match parts.headers.get(AMZ_DATE).map(|v| v.to_str()) {
            Some(Ok(d)) => d.to_string(),
            _ => return Err(violation("no readable x-amz-date header".into())),
        };
        let method = parts.method.as_str().to_string();
        let canonical = |headers: &http::HeaderMap| {
            canonical_request(
                &method, raw_path, req.query, headers, authority, &auth, &payload,
            )
            .map_err(|e| violation(format!("cannot rebuild the signed request: {e}")))
        };
        let client_sig = signature(
            secret_b.placeholder.as_bytes(),
            &auth,
            &amz_date,
            &canonical(&parts.headers)?,
        );
        if client_sig != auth.signature.to_ascii_lowercase() {
            return Err(violation(
                "the SigV4 signature does not verify with the pair's placeholder (the request \
                 was changed, or signed in a form ward does not reproduce)"
                    .into(),
            ));
        }
        let mut injected = vec![pair.key_id, pair.secret_key];
        let mut headers = parts.headers.clone();
        if let Some(tb) = token_b {
            if let Some(v) = headers.get(SECURITY_TOKEN) {
                if v.as_bytes() == tb.placeholder.as_bytes() {
                    let real = http::HeaderValue::from_bytes(tb.secret.expose())
                        .map_err(|_| violation("the session token is not a header value".into()))?;
                    headers.insert(SECURITY_TOKEN, real);
                    injected.push(pair.session_token.unwrap_or(pair.key_id));
                }
            }
        }
        let real_secret = secret_b.secret.expose();
        let new_sig = signature(real_secret, &auth, &amz_date, &canonical(&headers)?);
        let key_id = std::str::from_utf8(key_binding.secret.expose())
            .map_err(|_| violation("the access key id is not text".into()))?;
        let value = Zeroizing::new(format!(
            "{ALGORITHM} Credential={key_id}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={new_sig}",
            auth.date,
            auth.region,
            auth.service,
            auth.signed_headers.join(";"),
        ));
        let mut v = http::HeaderValue::from_str(&value)
            .map_err(|_| violation("the access key id is not a header value".into()))?;
        v.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, v);
        parts.headers = headers;
        Ok(Resigned::Signed(injected))
    }
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
