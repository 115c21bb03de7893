//! AWS SigV4 requests on a terminated connection (issue 17, item 7): a request signed with one
//! of the vault's AWS pairs is re-signed with the real pair (`credentials::sigv4`) before the
//! ordinary swap, which would otherwise see the key id's placeholder in `Authorization`. When
//! the client did not send its payload hash (`x-amz-content-sha256`; SDKs send it for S3
//! only), the body is read whole (at most `MAX_HASHED_BODY`) and hashed.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::body::View;
use crate::policy::credentials::sigv4::{body_hash, Resigned, MAX_HASHED_BODY};
use crate::policy::credentials::Vault;

/// How long a body to be hashed may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// What `resign` did to the request.
pub(super) enum Signed {
    /// Not a request of the vault's AWS pairs: judged as any other.
    No,
    /// Re-signed; the body, when it had to be read to hash it (sent on as it is: a swap
    /// inside it would break the signature, so a placeholder there is refused).
    Yes(Option<Bytes>),
}

/// A refusal: status and the record's text (names a binding, never a value).
pub(super) struct Refused {
    pub status: StatusCode,
    pub why: String,
}

pub(super) async fn resign(
    vault: &Vault,
    view: &View,
    target: &str,
    req: &mut http::request::Parts,
    body: &mut Option<Incoming>,
) -> Result<Signed, Refused> {
    if vault.aws.is_empty() {
        return Ok(Signed::No);
    }
    let raw_path = target.split('?').next().unwrap_or("/");
    let authority = req.uri.authority().map(|a| a.as_str().to_string());
    let forbidden = |v: crate::policy::credentials::swap::Violation| Refused {
        status: StatusCode::FORBIDDEN,
        why: v.reason(),
    };
    let first = vault
        .resign(&view.borrow(), raw_path, authority.as_deref(), req, None)
        .map_err(forbidden)?;
    match first {
        Resigned::NotSigned => Ok(Signed::No),
        Resigned::Signed(_) => Ok(Signed::Yes(None)),
        Resigned::NeedBodyHash => {
            let Some(incoming) = body.take() else {
                return Err(Refused {
                    status: StatusCode::BAD_REQUEST,
                    why: "a SigV4 request without its body".into(),
                });
            };
            let read = tokio::time::timeout(
                BODY_TIMEOUT,
                Limited::new(incoming, MAX_HASHED_BODY).collect(),
            )
            .await;
            let bytes = match read {
                Ok(Ok(c)) => c.to_bytes(),
                Ok(Err(e)) => {
                    return Err(Refused {
                        status: StatusCode::PAYLOAD_TOO_LARGE,
                        why: format!(
                            "a SigV4 request without x-amz-content-sha256 whose body could not \
                             be read to hash it (at most {MAX_HASHED_BODY} bytes): {e}"
                        ),
                    })
                }
                Err(_) => {
                    return Err(Refused {
                        status: StatusCode::REQUEST_TIMEOUT,
                        why: "a SigV4 request's body did not arrive within 30 s".into(),
                    })
                }
            };
            if let Some(b) = vault.find(&bytes) {
                return Err(Refused {
                    status: StatusCode::FORBIDDEN,
                    why: format!(
                        "placeholder of {} in the body of a SigV4-signed request (a swap there \
                         would break its signature; exfiltration attempt)",
                        b.name
                    ),
                });
            }
            let hash = body_hash(&bytes);
            match vault
                .resign(
                    &view.borrow(),
                    raw_path,
                    authority.as_deref(),
                    req,
                    Some(&hash),
                )
                .map_err(forbidden)?
            {
                Resigned::Signed(_) => Ok(Signed::Yes(Some(bytes))),
                _ => Err(Refused {
                    status: StatusCode::FORBIDDEN,
                    why: "a SigV4 request that could not be re-signed".into(),
                }),
            }
        }
    }
}
