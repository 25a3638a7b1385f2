use super::*;

fn public(s: &str) -> bool {
    is_public(s.parse().expect("address"))
}

#[test]
fn refuses_non_global_ranges() {
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.9",
        "198.18.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fc00::1",
        "fd12::1",
        "fe80::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "::127.0.0.1",
    ] {
        assert!(!public(ip), "{ip} must be refused");
    }
}

#[test]
fn allowlist_opens_only_its_ranges() {
    let federation = crate::config::Federation {
        ip_allowlist: vec!["10.1.0.0/16".into(), "fd00::1".into(), "127.0.0.1".into()],
        ..crate::config::Config::default().federation
    };
    let policy = AddressPolicy::from_config(&federation).expect("valid");
    for (ip, allowed) in [
        ("10.1.200.3", true),
        ("10.2.0.1", false),
        ("fd00::1", true),
        ("fd00::2", false),
        ("127.0.0.1", true),
        ("::ffff:127.0.0.1", true),
        ("127.0.0.2", false),
        ("8.8.8.8", true),
    ] {
        assert_eq!(policy.permits(ip.parse().expect("ip")), allowed, "{ip}");
    }
    for bad in ["10.0.0.0/33", "nonsense", "::/129"] {
        let federation = crate::config::Federation {
            ip_allowlist: vec![bad.into()],
            ..crate::config::Config::default().federation
        };
        assert!(AddressPolicy::from_config(&federation).is_err(), "{bad}");
    }
    let zero = parse_cidr("0.0.0.0/0").expect("all");
    assert!(in_network("10.0.0.1".parse().expect("ip"), zero.0, zero.1));
}

#[test]
fn allows_global_unicast() {
    for ip in [
        "8.8.8.8",
        "1.1.1.1",
        "100.128.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ] {
        assert!(public(ip), "{ip} must be allowed");
    }
}
