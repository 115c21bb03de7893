//! Base64 (RFC 4648 section 4, the standard alphabet) for HTTP Basic credentials
//! (`Authorization: Basic base64(user:pass)`, RFC 7617): small enough to write out, and the
//! decoded bytes land in a buffer that is wiped on drop (they may hold a secret once swapped).

use zeroize::Zeroizing;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` encoded, with `=` padding.
pub fn encode(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len().div_ceil(3) * 4));
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| ALPHABET[((n >> shift) & 63) as usize];
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if group.len() > 1 { sextet(6) } else { b'=' });
        out.push(if group.len() > 2 { sextet(0) } else { b'=' });
    }
    out
}

fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// `text` decoded; padding optional (some clients omit it); `None` when it is not base64.
pub fn decode(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let body = match text {
        [rest @ .., b'=', b'='] => rest,
        [rest @ .., b'='] => rest,
        _ => text,
    };
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() / 4 * 3 + 2));
    for group in body.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in group.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i as u32);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..group.len() - 1]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_rfc_vectors() {
        // RFC 4648 section 10.
        let vectors: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(&encode(plain)[..], coded);
            assert_eq!(&decode(coded).unwrap()[..], plain);
        }
        assert_eq!(&decode(b"Zm8").unwrap()[..], b"fo", "padding optional");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(&decode(&encode(&all)).unwrap()[..], &all[..]);
    }

    #[test]
    fn refuses_what_is_not_base64() {
        assert!(decode(b"Zm9v!").is_none());
        assert!(decode(b"Z").is_none());
        assert!(decode(b"Zm9v Zg==").is_none());
        assert!(decode(b"Zg=a").is_none());
    }
}
