use super::*;
use crate::spec::interception::parse_rule;

use Reason::*;

fn no_rules(_: IpAddr) -> Option<Verdict> {
    None
}

fn judge(addr: &str, host: &HostAddrs, rules: &[Rule], port: u16) -> Option<Refusal> {
    let a: IpAddr = addr.parse().unwrap();
    refuse(a, host, |x| ip_verdict(rules, x, port))
}

fn reason(addr: &str) -> Option<Reason> {
    judge(addr, &HostAddrs::default(), &[], 443).map(|r| r.reason)
}

/// Without host addresses or IP rules: every block, its edges, and what is left alone.
#[test]
fn refused_blocks_and_their_edges() {
    #[rustfmt::skip]
    let table: &[(&str, Option<Reason>)] = &[
        // IPv4: this network, loopback, link-local, multicast, broadcast, reserved.
        ("0.0.0.0", Some(Unspecified)), ("0.255.255.255", Some(Unspecified)),
        ("127.0.0.1", Some(Loopback)), ("127.255.255.254", Some(Loopback)),
        ("126.255.255.255", None), ("128.0.0.1", None),
        ("169.254.1.1", Some(LinkLocal)), ("169.253.255.255", None), ("169.255.0.0", None),
        ("224.0.0.1", Some(Multicast)), ("239.255.255.250", Some(Multicast)),
        ("223.255.255.255", None),
        ("255.255.255.255", Some(Broadcast)), ("240.0.0.1", Some(Reserved)),
        ("255.255.255.254", Some(Reserved)),
        // Cloud metadata, also where a wider block would say something vaguer.
        ("169.254.169.254", Some(CloudMetadata)), ("169.254.170.2", Some(CloudMetadata)),
        ("169.254.170.23", Some(CloudMetadata)), ("169.254.0.23", Some(CloudMetadata)),
        ("100.100.100.200", Some(CloudMetadata)), ("168.63.129.16", Some(CloudMetadata)),
        ("192.0.0.192", Some(CloudMetadata)),
        ("168.63.129.17", None), ("100.100.100.201", Some(Private)),
        // Private blocks and their edges.
        ("10.0.0.1", Some(Private)), ("10.255.255.255", Some(Private)),
        ("9.255.255.255", None), ("11.0.0.0", None),
        ("172.16.0.1", Some(Private)), ("172.31.255.255", Some(Private)),
        ("172.15.255.255", None), ("172.32.0.0", None),
        ("192.168.0.1", Some(Private)), ("192.167.255.255", None), ("192.169.0.0", None),
        ("100.64.0.1", Some(Private)), ("100.127.255.255", Some(Private)),
        ("100.63.255.255", None), ("100.128.0.0", None),
        ("192.0.0.8", Some(Private)), ("198.18.0.1", Some(Private)),
        ("198.19.255.255", Some(Private)), ("198.20.0.0", None),
        // Documentation and public addresses: not refused.
        ("192.0.2.1", None), ("198.51.100.7", None), ("203.0.113.200", None),
        ("1.1.1.1", None), ("8.8.8.8", None), ("93.184.216.34", None),
        // IPv6.
        ("::", Some(Unspecified)), ("::1", Some(Loopback)),
        ("fe80::1", Some(LinkLocal)), ("febf:ffff::1", Some(LinkLocal)),
        ("ff02::1", Some(Multicast)), ("ff05::1:3", Some(Multicast)),
        ("fd00:ec2::254", Some(CloudMetadata)), ("fd00:ec2::23", Some(CloudMetadata)),
        ("fd20:ce::254", Some(CloudMetadata)),
        ("fd00:ec2::255", Some(Private)), ("fc00::1", Some(Private)),
        ("fdff:ffff::1", Some(Private)), ("fec0::1", Some(Private)),
        ("fbff:ffff::1", None),
        ("100::1", Some(Reserved)), ("100:0:0:1::1", None), ("::1:0:0:0", Some(Reserved)),
        ("2001:db8::1", None), ("3fff::1", None), ("2606:4700::1111", None),
        ("2a00:1450:4001::200e", None),
    ];
    for (addr, want) in table {
        assert_eq!(reason(addr), *want, "{addr}");
    }
}

/// IPv4 carried in IPv6 is judged by the IPv4: mapped, translated, compatible, NAT64, 6to4,
/// Teredo.
#[test]
fn embedded_ipv4_is_judged_by_what_it_carries() {
    #[rustfmt::skip]
    let table: &[(&str, Option<(Reason, &str)>)] = &[
        ("::ffff:127.0.0.1", Some((Loopback, "127.0.0.1"))),
        ("::ffff:169.254.169.254", Some((CloudMetadata, "169.254.169.254"))),
        ("::ffff:10.1.2.3", Some((Private, "10.1.2.3"))),
        ("::ffff:0.0.0.0", Some((Unspecified, "0.0.0.0"))),
        ("::ffff:203.0.113.5", None), ("::ffff:8.8.8.8", None),
        ("::ffff:0:127.0.0.1", Some((Loopback, "127.0.0.1"))),
        ("::127.0.0.1", Some((Loopback, "127.0.0.1"))),
        ("::192.168.1.1", Some((Private, "192.168.1.1"))),
        ("::8.8.8.8", None), ("::0.0.0.2", Some((Unspecified, "0.0.0.2"))),
        ("64:ff9b::127.0.0.1", Some((Loopback, "127.0.0.1"))),
        ("64:ff9b::169.254.169.254", Some((CloudMetadata, "169.254.169.254"))),
        ("64:ff9b::100.100.100.200", Some((CloudMetadata, "100.100.100.200"))),
        ("64:ff9b::8.8.8.8", None), ("64:ff9b::192.0.2.1", None),
        ("2002:7f00:1::1", Some((Loopback, "127.0.0.1"))),
        ("2002:a9fe:a9fe::", Some((CloudMetadata, "169.254.169.254"))),
        ("2002:c0a8:101::1", Some((Private, "192.168.1.1"))),
        ("2002:0808:0808::1", None),
        // Teredo: server 65.54.227.120, client 127.0.0.1 stored inverted (80ff:fffe).
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", Some((Loopback, "127.0.0.1"))),
        // Server 127.0.0.1, client 8.8.8.8 (f7f7:f7f7).
        ("2001:0:7f00:1:8000:63bf:f7f7:f7f7", Some((Loopback, "127.0.0.1"))),
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", None),
    ];
    for (addr, want) in table {
        let got = judge(addr, &HostAddrs::default(), &[], 443);
        let got = got.map(|r| (r.reason, r.embedded.map(|e| e.to_string())));
        let want = want.map(|(r, e)| (r, Some(e.to_string())));
        assert_eq!(got, want, "{addr}");
    }
}

/// Local-use NAT64 (64:ff9b:1::/48): every RFC 6052 position of the IPv4 is judged, and the
/// prefix itself leads into a private network.
#[test]
fn local_use_nat64_is_private_and_every_position_is_judged() {
    let host = HostAddrs::default();
    for (addr, embedded) in [
        ("64:ff9b:1::7f00:1", "127.0.0.1"),              // /96
        ("64:ff9b:1:0:7f:0:100::", "127.0.0.1"),         // /64
        ("64:ff9b:1:7f:0:1:0:0", "127.0.0.1"),           // /56
        ("64:ff9b:1:a9fe:a9:fe00::", "169.254.169.254"), // /48
    ] {
        let r = judge(addr, &host, &[], 443).unwrap();
        assert!(matches!(r.reason, Loopback | CloudMetadata), "{addr}: {r}");
        assert_eq!(r.embedded.unwrap().to_string(), embedded, "{addr}");
    }
    let r = judge("64:ff9b:1::808:808", &host, &[], 443).unwrap();
    assert_eq!((r.reason, r.embedded), (Private, None));
    assert_eq!(r.range, "64:ff9b:1::/48 (local-use NAT64)");
    // An IP rule may allow the prefix, never what a position carries.
    let allow = [parse_rule("64:ff9b:1::/48", Verdict::Allow).unwrap()];
    assert_eq!(judge("64:ff9b:1::808:808", &host, &allow, 443), None);
    assert_eq!(
        judge("64:ff9b:1::7f00:1", &host, &allow, 443).map(|r| r.reason),
        Some(Loopback)
    );
}

/// Every address of the host's interfaces, and their subnet broadcasts, are refused, also when
/// an IP rule allows them, also carried in IPv6.
#[test]
fn host_addresses_are_refused_even_when_a_rule_allows_them() {
    let host = HostAddrs::new(
        [
            "203.0.113.10".parse().unwrap(),
            "10.0.0.5".parse().unwrap(),
            "2001:db8::10".parse().unwrap(),
        ],
        ["10.0.0.255".parse().unwrap()],
    );
    let allow = [
        parse_rule("0.0.0.0/0", Verdict::Allow).unwrap(),
        parse_rule("::/0", Verdict::Allow).unwrap(),
    ];
    for (addr, want) in [
        ("203.0.113.10", Some(HostAddress)),
        ("10.0.0.5", Some(HostAddress)),
        ("2001:db8::10", Some(HostAddress)),
        ("::ffff:203.0.113.10", Some(HostAddress)),
        ("64:ff9b::a00:5", Some(HostAddress)),
        ("10.0.0.255", Some(Broadcast)),
        ("203.0.113.11", None),
        ("10.0.0.6", None), // allowed by the rule
        ("2001:db8::11", None),
    ] {
        assert_eq!(
            judge(addr, &host, &allow, 443).map(|r| r.reason),
            want,
            "{addr}"
        );
    }
}

/// Private blocks need an explicit allow rule (the policy's default does not count); the hard
/// blocks stay refused whatever the rules; a deny rule refuses a public address too.
#[test]
fn ip_rules_open_private_blocks_only_and_deny_anything() {
    let host = HostAddrs::default();
    let rules = [
        parse_rule("10.1.0.0/16:443", Verdict::Allow).unwrap(),
        parse_rule("10.1.2.3", Verdict::Deny).unwrap(),
        parse_rule("fd12::/16", Verdict::Allow).unwrap(),
        parse_rule("127.0.0.0/8", Verdict::Allow).unwrap(),
        parse_rule("169.254.0.0/16", Verdict::Allow).unwrap(),
        parse_rule("100.64.0.0/10", Verdict::Allow).unwrap(),
        parse_rule("fd00:ec2::/32", Verdict::Allow).unwrap(),
        parse_rule("203.0.113.0/24", Verdict::Deny).unwrap(),
        parse_rule("2001:db8::/32", Verdict::Deny).unwrap(),
    ];
    #[rustfmt::skip]
    let table: &[(&str, u16, Option<Reason>)] = &[
        ("10.1.9.9", 443, None),
        ("10.1.9.9", 80, Some(Private)),       // the allow rule is for 443 only
        ("10.2.0.1", 443, Some(Private)),
        ("10.1.2.3", 443, Some(DeniedByRule)), // longer prefix, deny
        ("fd12::1", 443, None),
        ("fd13::1", 443, Some(Private)),
        ("127.0.0.1", 443, Some(Loopback)),
        ("169.254.10.10", 443, Some(LinkLocal)),
        ("169.254.169.254", 443, Some(CloudMetadata)),
        ("100.100.100.200", 443, Some(CloudMetadata)),
        ("100.64.0.1", 443, None),
        ("fd00:ec2::254", 443, Some(CloudMetadata)),
        ("fd00:ec2::1", 443, None),
        ("203.0.113.9", 443, Some(DeniedByRule)),
        ("2001:db8::1", 443, Some(DeniedByRule)),
        ("::ffff:203.0.113.9", 443, Some(DeniedByRule)),
        ("::ffff:10.1.9.9", 443, None),
        ("198.51.100.1", 443, None),
    ];
    for (addr, port, want) in table {
        let got = judge(addr, &host, &rules, *port).map(|r| r.reason);
        assert_eq!(got, *want, "{addr} port {port}");
    }
}

#[test]
fn ip_verdict_is_longest_prefix_then_deny_first() {
    let r = |t: &str, v| parse_rule(t, v).unwrap();
    let rules = [
        r("10.0.0.0/8", Verdict::Allow),
        r("10.0.0.0/8:22", Verdict::Deny),
        r("10.9.0.0/16", Verdict::Deny),
        r("10.9.9.0/24:443", Verdict::Allow),
    ];
    let v = |a: &str, p| ip_verdict(&rules, a.parse().unwrap(), p);
    assert_eq!(v("10.1.1.1", 443), Some(Verdict::Allow));
    assert_eq!(v("10.1.1.1", 22), Some(Verdict::Deny));
    assert_eq!(v("10.9.1.1", 443), Some(Verdict::Deny));
    assert_eq!(v("10.9.9.9", 443), Some(Verdict::Allow));
    assert_eq!(v("10.9.9.9", 80), Some(Verdict::Deny));
    assert_eq!(v("11.0.0.1", 443), None);
    assert_eq!(
        v("::ffff:10.1.1.1", 443),
        None,
        "no mapped forms: rules() adds them"
    );
}

#[test]
fn a_refusal_names_its_reason_for_the_log() {
    let r = refuse(
        "::ffff:169.254.169.254".parse().unwrap(),
        &HostAddrs::default(),
        no_rules,
    )
    .unwrap();
    assert_eq!(r.reason.as_str(), "cloud-metadata");
    let text = r.to_string();
    assert!(
        text.starts_with("::ffff:169.254.169.254: cloud-metadata (169.254.169.254"),
        "{text}"
    );
    assert!(
        text.ends_with("judged by the IPv4 address 169.254.169.254 it carries"),
        "{text}"
    );
    let r = refuse("10.0.0.1".parse().unwrap(), &HostAddrs::default(), no_rules).unwrap();
    assert_eq!(r.to_string(), "10.0.0.1: private (10.0.0.0/8 (RFC 1918))");
}

/// getifaddrs on this machine: loopback is among the host's addresses, and refused as such
/// (the loopback block says so first) — the real list is read, not assumed.
#[test]
fn host_addrs_reads_this_machines_interfaces() {
    let host = host_addrs().unwrap();
    assert!(host.contains("127.0.0.1".parse().unwrap()), "{host:?}");
    for a in host.addrs.iter().filter(|a| !a.is_loopback()) {
        let r = refuse(*a, &host, |_| Some(Verdict::Allow)).unwrap();
        assert!(matches!(r.reason, HostAddress | LinkLocal), "{a}: {r}");
    }
}
