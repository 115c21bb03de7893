use super::*;

fn parse(text: &str) -> Result<Option<RequestHead>, HttpError> {
    parse_head(text.as_bytes(), &Limits::default())
}

fn head(text: &str) -> RequestHead {
    parse(text).unwrap().unwrap()
}

fn auth(host: &str, port: Option<u16>) -> Authority {
    Authority {
        host: host.into(),
        port,
    }
}

#[test]
fn origin_form_with_host() {
    let text = "POST /v1/./messages?beta=1 HTTP/1.1\r\nHost: API.example.com\r\n\
                Content-Length: 5\r\nX-A: 1\r\n\r\nhello";
    let h = head(text);
    assert_eq!(h.method, "POST");
    assert_eq!(h.target, Target::Origin("/v1/./messages?beta=1".into()));
    assert_eq!(h.minor_version, 1);
    assert_eq!(h.host, Some(auth("API.example.com", None)));
    assert_eq!(h.authority(), Some(&auth("API.example.com", None)));
    assert_eq!(h.body, Body::Length(5));
    assert_eq!(h.len, text.len() - 5);
    let n = h.normalized_path().unwrap();
    assert_eq!(
        (n.path.as_str(), n.query.as_deref()),
        ("/v1/messages", Some("beta=1"))
    );
    assert_eq!(h.header("x-a").collect::<Vec<_>>(), vec![b"1".as_slice()]);
}

#[test]
fn absolute_form_names_the_authority() {
    let h = head("GET http://example.com:8080/a/../b?q HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    assert_eq!(
        h.target,
        Target::Absolute {
            https: false,
            authority: auth("example.com", Some(8080)),
            path: "/a/../b?q".into()
        }
    );
    assert_eq!(h.authority(), Some(&auth("example.com", Some(8080))));
    assert_eq!(h.normalized_path().unwrap().path, "/b");
    for (text, path) in [
        (
            "GET HTTP://Example.com HTTP/1.1\r\nHost: example.com.\r\n\r\n",
            "/",
        ),
        (
            "GET https://example.com?x HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            "/?x",
        ),
        ("GET http://[2001:db8::1]:80/p HTTP/1.0\r\n\r\n", "/p"),
    ] {
        match head(text).target {
            Target::Absolute { path: p, .. } => assert_eq!(p, path, "{text}"),
            t => panic!("{text}: {t:?}"),
        }
    }
}

#[test]
fn connect_takes_an_authority_with_a_port() {
    let h = head("CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n");
    assert_eq!(
        h.target,
        Target::Authority(auth("api.example.com", Some(443)))
    );
    assert_eq!(h.authority(), Some(&auth("api.example.com", Some(443))));
    assert_eq!(h.normalized_path(), None);
    let h = head("CONNECT [2001:db8::1]:443 HTTP/1.0\r\n\r\n");
    assert_eq!(h.target, Target::Authority(auth("2001:db8::1", Some(443))));
    // CONNECT's Host may leave out the port.
    head("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example\r\n\r\n");
}

#[test]
fn options_asterisk_and_http_1_0_without_host() {
    assert_eq!(
        head("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").target,
        Target::Asterisk
    );
    let h = head("GET / HTTP/1.0\r\n\r\n");
    assert_eq!((h.minor_version, &h.host, h.authority()), (0, &None, None));
}

#[test]
fn incomplete_heads_ask_for_more() {
    let full = "GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n";
    for k in 0..full.len() {
        assert_eq!(parse(&full[..k]), Ok(None), "prefix {k}");
    }
    assert!(parse(full).unwrap().is_some());
}

#[test]
fn limits_on_head_size_and_header_count() {
    let limits = Limits {
        max_head: 64,
        max_headers: 3,
    };
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(60));
    assert_eq!(
        parse_head(long.as_bytes(), &limits),
        Err(HttpError::HeadTooLarge { limit: 64 })
    );
    // Incomplete and already at the limit: refused, not waited for.
    assert_eq!(
        parse_head(&long.as_bytes()[..64], &limits),
        Err(HttpError::HeadTooLarge { limit: 64 })
    );
    assert_eq!(parse_head(&long.as_bytes()[..63], &limits), Ok(None));
    let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        parse_head(many.as_bytes(), &limits),
        Err(HttpError::TooManyHeaders { limit: 3 })
    );
    let three = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    assert!(parse_head(three.as_bytes(), &limits).unwrap().is_some());
    assert_eq!(Limits::default().max_head, 32 * 1024);
}

#[test]
fn body_framing() {
    let body = |extra: &str| head(&format!("POST / HTTP/1.1\r\nHost: a\r\n{extra}\r\n")).body;
    assert_eq!(body(""), Body::None);
    assert_eq!(body("Content-Length: 0\r\n"), Body::Length(0));
    assert_eq!(
        body("Content-Length: 7, 7\r\nContent-Length: 7\r\n"),
        Body::Length(7)
    );
    assert_eq!(body("Transfer-Encoding: chunked\r\n"), Body::Chunked);
    assert_eq!(body("Transfer-Encoding: gzip, CHUNKED\r\n"), Body::Chunked);
    assert_eq!(
        body("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
        Body::Chunked
    );
}

#[test]
fn refusals_name_what_is_wrong() {
    use HttpError::*;
    #[rustfmt::skip]
    let table: &[(&str, HttpError)] = &[
        ("GET / HTTP/1.1\r\n\r\n", MissingHost),
        ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", DuplicateHost),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", DuplicateHost),
        ("GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", HostMismatch),
        ("GET http://a.example/ HTTP/1.1\r\nHost: a.example:8080\r\n\r\n", HostMismatch),
        ("GET https://a.example/ HTTP/1.1\r\nHost: a.example:80\r\n\r\n", HostMismatch),
        ("CONNECT a.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n", HostMismatch),
        ("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:8443\r\n\r\n", HostMismatch),
        ("CONNECT a.example HTTP/1.1\r\nHost: a.example\r\n\r\n", BadTarget("CONNECT needs host:port")),
        ("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", BadHost("a byte not allowed in a host name")),
        ("GET a.example:443 HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget("neither /path, scheme://authority nor CONNECT host:port")),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget("* is for OPTIONS only")),
        ("GET ftp://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", BadTarget("the scheme is not http or https")),
        ("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget("a fragment (#) is not sent in a request")),
        ("GET http://u:p@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", BadHost("userinfo (user@) is not allowed")),
        ("GET http://a.example@b.example/ HTTP/1.1\r\n\r\n", BadHost("userinfo (user@) is not allowed")),
        ("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", BadHost("empty or longer than 253 bytes")),
        ("GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", BadHost("an empty label or one over 63 bytes")),
        ("GET / HTTP/1.1\r\nHost: a%2eb\r\n\r\n", BadHost("a byte not allowed in a host name")),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BadHost("a byte not allowed in a host name")),
        ("GET / HTTP/1.1\r\nHost: a:0\r\n\r\n", BadHost("port out of range")),
        ("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", BadHost("port out of range")),
        ("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", BadHost("port is not a number")),
        ("GET / HTTP/1.1\r\nHost: a:+80\r\n\r\n", BadHost("port is not a number")),
        ("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", BadHost("port is not a number")),
        ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", BadHost("unclosed [")),
        ("GET / HTTP/1.1\r\nHost: [a.example]\r\n\r\n", BadHost("not an IPv6 address inside []")),
        ("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", BadHost("bytes after ]")),
        ("GET / HTTP/1.1\r\nHost: \r\n\r\n", BadHost("empty or longer than 253 bytes")),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", BadFraming("both Content-Length and Transfer-Encoding")),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", BadFraming("Transfer-Encoding does not end in a single chunked")),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", BadFraming("Transfer-Encoding does not end in a single chunked")),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", BadFraming("Transfer-Encoding does not end in a single chunked")),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", BadFraming("Transfer-Encoding in HTTP/1.0")),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", BadFraming("differing Content-Lengths")),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", BadFraming("Content-Length is not a number")),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n", BadFraming("Content-Length is not a number")),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3,\r\n\r\n", BadFraming("Content-Length is not a number")),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", BadFraming("Content-Length is not a number")),
    ];
    for (text, want) in table {
        assert_eq!(parse(text).as_ref().map(|_| ()), Err(want), "{text:?}");
    }
}

/// What httparse refuses arrives as Malformed with its reason: bad tokens, obsolete line
/// folding, a space before the colon, HTTP/2's preface; and lines ended by a bare LF.
#[test]
fn malformed_heads() {
    for text in [
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nX\0: a\r\nHost: a\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nX: a\nHost: b\r\nHost2: a\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03",
    ] {
        match parse(text) {
            Err(HttpError::Malformed(why)) => assert!(!why.is_empty()),
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn errors_read_as_sentences() {
    assert_eq!(
        HttpError::HostMismatch.to_string(),
        "the request target and the Host header name different hosts"
    );
    assert_eq!(
        HttpError::HeadTooLarge { limit: 10 }.to_string(),
        "request head longer than 10 bytes"
    );
}
