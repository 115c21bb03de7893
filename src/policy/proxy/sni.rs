//! The server name a TLS client asks for, peeked from its ClientHello without terminating TLS
//! (issue 16: the name the client sends must agree with the name it resolved).
//!
//! Hand-written rather than tls-parser: the one message and the one extension the proxy needs
//! are about 150 lines here, while tls-parser brings nom, two proc-macro crates (nom-derive,
//! num_enum) and a phf build script, and does not reassemble a ClientHello split over several
//! records. Every length is checked against the bytes that hold it before it is used; nothing
//! indexes past a slice, nothing panics, and the work is linear in the input (at most 64 KiB).
//!
//! The caller reads from the client into a buffer and calls `client_hello` (or `sni`) after each
//! read: `Incomplete { needed }` says how many more bytes at least must arrive (never more than
//! a well-formed ClientHello still owes, so waiting for them cannot deadlock a valid client);
//! `Invalid` means the connection is refused. The whole buffer is then replayed upstream.

use std::fmt;

/// The longest ClientHello accepted (the handshake message's body). Real ones are under 2 KiB
/// (about 1.8 KiB with a post-quantum key share); the bound keeps a client from making the
/// proxy buffer 16 MiB (the 24-bit length field's limit).
pub const MAX_HELLO: usize = 64 * 1024;

/// The most records a ClientHello may be split over. Clients split a hello in two or three on
/// purpose (past middleboxes that read only the first record); a thousand one-byte records are
/// only a way to make the proxy hold more.
pub const MAX_RECORDS: usize = 1024;

/// The most bytes `client_hello` ever needs to decide: a maximal hello and its header in
/// `MAX_RECORDS` records. The proxy may refuse a client whose first flight grows past it.
pub const MAX_BUFFER: usize = MAX_HELLO + 4 + 5 * MAX_RECORDS;

/// The largest record payload TLS allows (RFC 8446 5.1).
const MAX_RECORD: usize = 1 << 14;

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ECH: u16 = 0xfe0d;
const EXT_ESNI_DRAFT: u16 = 0xffce;

/// What the proxy learns from a ClientHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// The host_name of the server_name extension, as sent (ASCII, checked to be a DNS name;
    /// not lowercased and any trailing dot kept: name matching normalises).
    pub server_name: Option<String>,
    /// An encrypted_client_hello (or draft ESNI) extension is present: `server_name` is then
    /// only the outer, public name, and the name the client really wants is hidden.
    pub ech: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloError {
    /// The buffer is a valid beginning: at least `needed` more bytes must be read.
    Incomplete { needed: usize },
    /// Not a TLS ClientHello, or a malformed one; says what is wrong.
    Invalid(&'static str),
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelloError::Incomplete { needed } => {
                write!(
                    f,
                    "TLS ClientHello incomplete: {needed} more bytes at least"
                )
            }
            HelloError::Invalid(why) => write!(f, "invalid TLS ClientHello: {why}"),
        }
    }
}

impl std::error::Error for HelloError {}

use HelloError::{Incomplete, Invalid};

/// The server name in the ClientHello at the start of `buf` (`None`: the client sent none).
pub fn sni(buf: &[u8]) -> Result<Option<String>, HelloError> {
    client_hello(buf).map(|h| h.server_name)
}

/// Parses the ClientHello at the start of `buf`, reassembling it from as many handshake records
/// as it spans. Bytes after it are ignored.
pub fn client_hello(buf: &[u8]) -> Result<ClientHello, HelloError> {
    let mut msg: Vec<u8> = Vec::new(); // the handshake message so far, record headers removed
    let mut rest = buf;
    let mut records = 0;
    loop {
        let missing = missing(&msg)?;
        if missing == 0 {
            // Complete: the message is the header and its length; later bytes are not ours.
            let len = u32::from_be_bytes([0, msg[1], msg[2], msg[3]]) as usize;
            return parse_hello(&msg[4..4 + len]);
        }
        if rest.len() < 5 {
            record_prefix(rest, msg.is_empty())?;
            return Err(Incomplete {
                needed: 5 - rest.len() + missing,
            });
        }
        let len = record_header(&rest[..5], msg.is_empty())?;
        records += 1;
        if records > MAX_RECORDS {
            return Err(Invalid("ClientHello split over more than 1024 records"));
        }
        let have = len.min(rest.len() - 5);
        msg.extend_from_slice(&rest[5..5 + have]);
        rest = &rest[5 + have..];
        if have < len {
            let missing = missing_after(&msg)?;
            if missing == 0 {
                continue;
            }
            let left_in_record = len - have;
            return Err(Incomplete {
                needed: if missing <= left_in_record {
                    missing
                } else {
                    missing + 5
                },
            });
        }
    }
}

/// Bytes the handshake message still lacks (a lower bound while its header is incomplete).
fn missing(msg: &[u8]) -> Result<usize, HelloError> {
    if msg.is_empty() {
        return Ok(4);
    }
    missing_after(msg)
}

fn missing_after(msg: &[u8]) -> Result<usize, HelloError> {
    if msg.first().is_some_and(|&t| t != CLIENT_HELLO) {
        return Err(Invalid("the first handshake message is not a ClientHello"));
    }
    if msg.len() < 4 {
        return Ok(4 - msg.len());
    }
    let len = u32::from_be_bytes([0, msg[1], msg[2], msg[3]]) as usize;
    if len > MAX_HELLO {
        return Err(Invalid("ClientHello longer than 64 KiB"));
    }
    Ok((4 + len).saturating_sub(msg.len()))
}

/// Checks the bytes of a record header that have arrived.
fn record_prefix(head: &[u8], first: bool) -> Result<(), HelloError> {
    match head.first() {
        Some(&t) if t & 0x80 != 0 && first => Err(Invalid(
            "an SSLv2-style ClientHello (it cannot carry a server name)",
        )),
        Some(&t) if t != HANDSHAKE => Err(Invalid(if first {
            "not a TLS handshake record"
        } else {
            "a record other than handshake inside the ClientHello"
        })),
        _ if head.get(1).is_some_and(|&major| major != 3) => {
            Err(Invalid("record version is not TLS (3.x)"))
        }
        _ => Ok(()),
    }
}

/// Checks a whole record header; returns the payload length.
fn record_header(head: &[u8], first: bool) -> Result<usize, HelloError> {
    record_prefix(head, first)?;
    let len = u16::from_be_bytes([head[3], head[4]]) as usize;
    if len == 0 {
        return Err(Invalid("an empty handshake record"));
    }
    if len > MAX_RECORD {
        return Err(Invalid("a record longer than 2^14 bytes"));
    }
    Ok(len)
}

/// A cursor over bytes whose every read is checked; errors name the field.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        if n > self.0.len() {
            return Err(Invalid(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<usize, HelloError> {
        Ok(self.take(1, what)?[0] as usize)
    }

    fn u16(&mut self, what: &'static str) -> Result<usize, HelloError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    /// A length-prefixed vector (`u8` or `u16` length).
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = self.u8(what)?;
        self.take(n, what)
    }

    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = self.u16(what)?;
        self.take(n, what)
    }
}

/// The ClientHello body (RFC 8446 4.1.2, RFC 5246 7.4.1.2; TLS 1.0 and 1.1 alike).
fn parse_hello(body: &[u8]) -> Result<ClientHello, HelloError> {
    let mut r = Reader(body);
    if r.u16("truncated legacy_version")? >> 8 != 3 {
        return Err(Invalid("ClientHello version is not TLS (3.x)"));
    }
    r.take(32, "truncated random")?;
    if r.vec8("session id runs past the ClientHello")?.len() > 32 {
        return Err(Invalid("session id longer than 32 bytes"));
    }
    let suites = r.vec16("cipher suites run past the ClientHello")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(Invalid("cipher suite list empty or of odd length"));
    }
    if r.vec8("compression methods run past the ClientHello")?
        .is_empty()
    {
        return Err(Invalid("no compression method"));
    }
    let mut hello = ClientHello {
        server_name: None,
        ech: false,
    };
    if r.0.is_empty() {
        return Ok(hello); // no extensions at all (TLS 1.0 and 1.1 allow it)
    }
    let mut exts = Reader(r.vec16("extensions run past the ClientHello")?);
    if !r.0.is_empty() {
        return Err(Invalid("bytes after the extensions"));
    }
    let mut seen = Vec::new();
    while !exts.0.is_empty() {
        let kind = exts.u16("truncated extension type")? as u16;
        let data = exts.vec16("an extension runs past the extension list")?;
        seen.push(kind);
        match kind {
            EXT_SERVER_NAME => hello.server_name = Some(server_name(data)?),
            EXT_ECH | EXT_ESNI_DRAFT => hello.ech = true,
            _ => {} // GREASE and everything else: skipped by its length
        }
    }
    // RFC 8446 4.2 / RFC 5246 7.4.1.4: at most one extension of a type. A second server_name
    // could be read differently by the proxy and the origin.
    seen.sort_unstable();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(Invalid("an extension appears twice"));
    }
    Ok(hello)
}

/// The server_name extension (RFC 6066 3): exactly one entry, of type host_name, as OpenSSL
/// and BoringSSL accept it.
fn server_name(data: &[u8]) -> Result<String, HelloError> {
    let mut r = Reader(data);
    let mut list = Reader(r.vec16("server name list runs past its extension")?);
    if !r.0.is_empty() {
        return Err(Invalid("bytes after the server name list"));
    }
    if list.u8("empty server name list")? != 0 {
        return Err(Invalid("server name type is not host_name"));
    }
    let name = list.vec16("server name runs past its list")?;
    if !list.0.is_empty() {
        return Err(Invalid("more than one server name"));
    }
    host_name(name)
}

/// A DNS name in ASCII: letters, digits, `-` and `_`, labels of 1 to 63 bytes, at most 253 bytes
/// (plus one trailing dot). IDNs arrive as A-labels (`xn--`); anything else is refused.
fn host_name(name: &[u8]) -> Result<String, HelloError> {
    let bare = name.strip_suffix(b".").unwrap_or(name);
    if bare.is_empty() || bare.len() > 253 {
        return Err(Invalid("server name empty or longer than 253 bytes"));
    }
    for label in bare.split(|&b| b == b'.') {
        if label.is_empty() || label.len() > 63 {
            return Err(Invalid(
                "server name has an empty label or one over 63 bytes",
            ));
        }
        if !label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Invalid("server name has a byte not allowed in a DNS name"));
        }
    }
    String::from_utf8(name.to_vec()).map_err(|_| Invalid("server name is not ASCII"))
}

#[cfg(test)]
#[path = "sni_tests.rs"]
pub(crate) mod tests;
