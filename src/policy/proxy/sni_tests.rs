use super::*;

/// ClientHellos captured on this machine over loopback (testdata/README.md says how).
pub(crate) const CAPTURES: &[(&str, &[u8], Option<&str>)] = &[
    (
        "openssl s_client (TLS 1.3)",
        include_bytes!("testdata/openssl-s_client-tls13.bin"),
        Some("example.test"),
    ),
    (
        "openssl s_client -tls1_2",
        include_bytes!("testdata/openssl-s_client-tls12.bin"),
        Some("www.example.test"),
    ),
    (
        "openssl s_client -noservername",
        include_bytes!("testdata/openssl-s_client-noservername.bin"),
        None,
    ),
    (
        "curl 7.88",
        include_bytes!("testdata/curl.bin"),
        Some("example.test"),
    ),
];

fn u16b(n: usize) -> [u8; 2] {
    (n as u16).to_be_bytes()
}

/// A ClientHello body with `version`, a 32-byte session id, one suite, null compression and
/// the extensions given (`None`: no extension block at all).
pub(crate) fn body(version: u16, exts: Option<&[(u16, Vec<u8>)]>) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend([7u8; 32]); // random
    b.push(32);
    b.extend([9u8; 32]); // session id
    b.extend([0, 4, 0x13, 0x01, 0x13, 0x02]); // suites
    b.extend([1, 0]); // compression: null
    if let Some(exts) = exts {
        let mut e = Vec::new();
        for (kind, data) in exts {
            e.extend(kind.to_be_bytes());
            e.extend(u16b(data.len()));
            e.extend(data);
        }
        b.extend(u16b(e.len()));
        b.extend(e);
    }
    b
}

/// The handshake message: type ClientHello and a 24-bit length.
pub(crate) fn handshake(body: &[u8]) -> Vec<u8> {
    let n = (body.len() as u32).to_be_bytes();
    let mut m = vec![CLIENT_HELLO, n[1], n[2], n[3]];
    m.extend(body);
    m
}

/// `msg` in handshake records of at most `size` payload bytes each.
pub(crate) fn records(msg: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in msg.chunks(size) {
        out.extend([HANDSHAKE, 3, 1]);
        out.extend(u16b(chunk.len()));
        out.extend(chunk);
    }
    out
}

pub(crate) fn sni_ext(name: &[u8]) -> (u16, Vec<u8>) {
    let mut list = vec![0];
    list.extend(u16b(name.len()));
    list.extend(name);
    let mut data = u16b(list.len()).to_vec();
    data.extend(list);
    (EXT_SERVER_NAME, data)
}

fn full(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    records(&handshake(&body(0x0303, Some(exts))), MAX_RECORD)
}

/// The handshake message inside a single-record capture.
fn message_of(capture: &[u8]) -> Vec<u8> {
    let len = u16::from_be_bytes([capture[3], capture[4]]) as usize;
    capture[5..5 + len].to_vec()
}

#[test]
fn captured_client_hellos_give_their_server_name() {
    for (what, bytes, want) in CAPTURES {
        let got = client_hello(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got.server_name.as_deref(), *want, "{what}");
        assert!(!got.ech, "{what}");
        assert_eq!(sni(bytes).unwrap().as_deref(), *want, "{what}");
    }
}

/// Every prefix of a real ClientHello is incomplete, never invalid, and asks for at least one
/// byte and no more than the rest of the hello: a reader waiting for `needed` bytes never
/// waits for bytes a valid client does not send.
#[test]
fn every_prefix_is_incomplete_and_needed_is_a_lower_bound() {
    for (what, bytes, _) in CAPTURES {
        for size in [MAX_RECORD, 100, 7, 1] {
            let split = records(&message_of(bytes), size);
            for k in 0..split.len() {
                match client_hello(&split[..k]) {
                    Err(Incomplete { needed }) => assert!(
                        needed >= 1 && needed <= split.len() - k,
                        "{what} records of {size}: prefix {k}/{}: needed {needed}",
                        split.len()
                    ),
                    other => panic!("{what} records of {size}: prefix {k}: {other:?}"),
                }
            }
        }
    }
}

/// A ClientHello split over several records (as some clients do on purpose) is reassembled.
#[test]
fn a_hello_split_across_records_is_reassembled() {
    for (what, bytes, want) in CAPTURES {
        for size in [1, 2, 3, 4, 5, 64, 200] {
            let split = records(&message_of(bytes), size);
            assert_eq!(
                sni(&split).unwrap().as_deref(),
                *want,
                "{what}: records of {size}"
            );
        }
    }
}

#[test]
fn needed_counts_the_rest_of_the_record_then_record_headers() {
    let msg = handshake(&body(0x0303, Some(&[sni_ext(b"a.example")])));
    let one = records(&msg, MAX_RECORD);
    assert_eq!(client_hello(&one[..0]), Err(Incomplete { needed: 9 }));
    assert_eq!(client_hello(&one[..3]), Err(Incomplete { needed: 6 }));
    assert_eq!(client_hello(&one[..5]), Err(Incomplete { needed: 4 }));
    assert_eq!(
        client_hello(&one[..9]),
        Err(Incomplete {
            needed: msg.len() - 4
        })
    );
    assert_eq!(
        client_hello(&one[..20]),
        Err(Incomplete {
            needed: one.len() - 20
        })
    );
    // The record ends before the message does: its rest, one more header, the message's rest.
    let two = records(&msg, 50);
    assert_eq!(
        client_hello(&two[..5 + 10]),
        Err(Incomplete {
            needed: msg.len() - 10 + 5
        })
    );
    assert_eq!(
        client_hello(&two[..55]),
        Err(Incomplete {
            needed: 5 + msg.len() - 50
        })
    );
}

#[test]
fn tls_1_0_hello_without_extensions_has_no_name() {
    let b = records(&handshake(&body(0x0301, None)), MAX_RECORD);
    assert_eq!(
        client_hello(&b),
        Ok(ClientHello {
            server_name: None,
            ech: false
        })
    );
    let b = records(&handshake(&body(0x0302, Some(&[]))), MAX_RECORD);
    assert_eq!(sni(&b), Ok(None));
}

/// TLS 1.3 shape: GREASE extensions, supported_versions, key_share, padding, and ECH (whose
/// outer SNI is the public name; `ech` tells the proxy the real name is hidden).
#[test]
fn grease_and_ech_extensions() {
    let grease = |v: u16| (v, vec![]);
    let exts = [
        grease(0x0a0a),
        sni_ext(b"public.example"),
        (0x002b, vec![4, 0x7a, 0x7a, 0x03, 0x04]), // supported_versions: GREASE, 1.3
        (0x0033, vec![0, 6, 0x00, 0x1d, 0, 2, 1, 2]), // key_share
        (EXT_ECH, vec![0; 200]),
        grease(0xfafa),
        (0x0015, vec![0; 300]), // padding
    ];
    let h = client_hello(&full(&exts)).unwrap();
    assert_eq!(h.server_name.as_deref(), Some("public.example"));
    assert!(h.ech);
    let h = client_hello(&full(&[(EXT_ESNI_DRAFT, vec![1, 2, 3])])).unwrap();
    assert_eq!((h.server_name, h.ech), (None, true));
}

#[test]
fn server_names_accepted_as_sent() {
    for name in [
        "EXAMPLE.test",
        "a",
        "xn--bcher-kva.example",
        "_srv.a-b.example",
        "a.example.",
    ] {
        assert_eq!(
            sni(&full(&[sni_ext(name.as_bytes())])).unwrap().as_deref(),
            Some(name)
        );
    }
    let long = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(long.len(), 253);
    assert_eq!(sni(&full(&[sni_ext(long.as_bytes())])).unwrap(), Some(long));
}

/// Each malformation is refused with its reason; nothing panics.
#[test]
fn malformed_hellos_are_invalid_with_a_reason() {
    let good = handshake(&body(0x0303, Some(&[sni_ext(b"a.example")])));
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut m = good.clone();
        f(&mut m);
        records(&m, MAX_RECORD)
    };
    let name = |n: &[u8]| full(&[sni_ext(n)]);
    let mut sni_two = sni_ext(b"a.example");
    sni_two.1 = {
        let mut list = vec![0, 0, 1, b'a', 0, 0, 1, b'b'];
        let mut d = u16b(list.len()).to_vec();
        d.append(&mut list);
        d
    };
    let mut sni_type = sni_ext(b"a.example");
    sni_type.1[2] = 1;
    let mut sni_tail = sni_ext(b"a.example");
    sni_tail.1.push(0);
    let mut sni_short_list = sni_ext(b"a.example");
    sni_short_list.1[1] += 1;
    let long = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(62),
    ]
    .join(".");
    let mut huge = good.clone();
    huge[1..4].copy_from_slice(&[0x01, 0x00, 0x01]); // 65537
    let mut record_big = records(&good, MAX_RECORD);
    record_big[3..5].copy_from_slice(&u16b(MAX_RECORD + 1));

    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("http", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), "not a TLS handshake record"),
        ("sslv2", vec![0x80, 0x2e, 0x01, 0x03, 0x01], "an SSLv2-style ClientHello (it cannot carry a server name)"),
        ("alert record", vec![21, 3, 3, 0, 2, 2, 40], "not a TLS handshake record"),
        ("record version", vec![22, 2, 0], "record version is not TLS (3.x)"),
        ("empty record", vec![22, 3, 1, 0, 0], "an empty handshake record"),
        ("record too long", record_big, "a record longer than 2^14 bytes"),
        ("server hello", with(&|m| m[0] = 2), "the first handshake message is not a ClientHello"),
        ("too large", records(&huge, MAX_RECORD), "ClientHello longer than 64 KiB"),
        ("hello version", with(&|m| m[4] = 2), "ClientHello version is not TLS (3.x)"),
        ("session id 33", with(&|m| m[38] = 33), "session id longer than 32 bytes"),
        ("session id past end", with(&|m| m[38] = 255), "session id runs past the ClientHello"),
        ("odd suites", with(&|m| m[72] = 3), "cipher suite list empty or of odd length"),
        ("no suites", with(&|m| m[72] = 0), "cipher suite list empty or of odd length"),
        ("no compression", with(&|m| { m[77] = 0; m.remove(78); m[3] -= 1; }), "no compression method"),
        ("extensions overrun", with(&|m| m[80] += 1), "extensions run past the ClientHello"),
        ("bytes after extensions", with(&|m| { m.push(0); m[3] += 1; }), "bytes after the extensions"),
        ("extension overrun", with(&|m| m[84] += 1), "an extension runs past the extension list"),
        ("duplicate sni", full(&[sni_ext(b"a"), sni_ext(b"b")]), "an extension appears twice"),
        ("duplicate other", full(&[(0x10, vec![]), sni_ext(b"a"), (0x10, vec![])]), "an extension appears twice"),
        ("two names", full(&[sni_two]), "more than one server name"),
        ("not host_name", full(&[sni_type]), "server name type is not host_name"),
        ("after list", full(&[sni_tail]), "bytes after the server name list"),
        ("list overrun", full(&[sni_short_list]), "server name list runs past its extension"),
        ("empty list", full(&[(0, vec![0, 0])]), "empty server name list"),
        ("empty extension", full(&[(0, vec![])]), "server name list runs past its extension"),
        ("empty name", name(b""), "server name empty or longer than 253 bytes"),
        ("dot", name(b"."), "server name empty or longer than 253 bytes"),
        ("254", name(long.as_bytes()), "server name empty or longer than 253 bytes"),
        ("label 64", name("a".repeat(64).as_bytes()), "server name has an empty label or one over 63 bytes"),
        ("empty label", name(b"a..example"), "server name has an empty label or one over 63 bytes"),
        ("leading dot", name(b".example"), "server name has an empty label or one over 63 bytes"),
        ("nul", name(b"a.example\0.evil"), "server name has a byte not allowed in a DNS name"),
        ("slash", name(b"a.example/x"), "server name has a byte not allowed in a DNS name"),
        ("space", name(b"a example"), "server name has a byte not allowed in a DNS name"),
        ("colon", name(b"a.example:443"), "server name has a byte not allowed in a DNS name"),
        ("utf-8", name("bücher.example".as_bytes()), "server name has a byte not allowed in a DNS name"),
        ("alert inside", {
            let mut b = records(&good, 40);
            b.splice(45..45, [21, 3, 3, 0, 2, 1, 0]);
            b
        }, "a record other than handshake inside the ClientHello"),
    ];
    for (what, bytes, why) in cases {
        assert_eq!(client_hello(&bytes), Err(Invalid(why)), "{what}");
    }
}

#[test]
fn a_hello_in_too_many_records_is_refused_within_max_buffer() {
    let msg = handshake(&body(
        0x0303,
        Some(&[sni_ext(b"a.example"), (0x15, vec![0; 1100])]),
    ));
    assert!(msg.len() > MAX_RECORDS);
    let split = records(&msg, 1);
    let refused = Err(Invalid("ClientHello split over more than 1024 records"));
    assert_eq!(client_hello(&split), refused);
    // Decided after 1025 records, long before MAX_BUFFER bytes.
    assert_eq!(client_hello(&split[..6 * (MAX_RECORDS + 1)]), refused);
    assert!(matches!(
        client_hello(&split[..6 * MAX_RECORDS]),
        Err(Incomplete { .. })
    ));
    assert_eq!(
        sni(&records(&msg, 2)).unwrap().as_deref(),
        Some("a.example")
    );
    assert_eq!(MAX_BUFFER, 65536 + 4 + 5120);
}

/// The message length may claim less than the fields need: every read is checked against the
/// message, not the buffer.
#[test]
fn a_short_message_length_is_invalid_not_a_read_past_it() {
    let msg = handshake(&body(0x0303, Some(&[sni_ext(b"a.example")])));
    for cut in 4..msg.len() {
        let mut m = msg[..cut].to_vec();
        let n = ((cut - 4) as u32).to_be_bytes();
        m[1..4].copy_from_slice(&n[1..]);
        m.extend(&msg[cut..]); // the bytes are there, but outside the message
                               // Cut right after the compression methods, it is a valid hello without extensions.
        let no_extensions = 4 + 2 + 32 + 1 + 32 + 6 + 2;
        match client_hello(&records(&m, MAX_RECORD)) {
            Err(Invalid(_)) => {}
            Ok(h) if cut == no_extensions && h.server_name.is_none() => {}
            other => panic!("message cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn bytes_after_the_hello_are_ignored() {
    let (_, bytes, want) = CAPTURES[0];
    let mut b = bytes.to_vec();
    b.extend([20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 5, 1, 2, 3, 4, 5]); // CCS, early data
    assert_eq!(sni(&b).unwrap().as_deref(), want);
}

#[test]
fn errors_read_as_sentences() {
    assert_eq!(
        Incomplete { needed: 3 }.to_string(),
        "TLS ClientHello incomplete: 3 more bytes at least"
    );
    assert_eq!(
        Invalid("an extension appears twice").to_string(),
        "invalid TLS ClientHello: an extension appears twice"
    );
}
