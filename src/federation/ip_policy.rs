//! Which addresses outbound federation may connect to. Anything that is not
//! globally routable unicast is refused unless the config allows it, so a
//! hostile server name or DNS answer cannot point us into the local network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn v4_is_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18/15
        || a >= 240) // reserved
}

fn v6_is_public(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_is_public(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) embeds an IPv4 address: judge that one.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return v4_is_public(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

/// Which addresses outbound connections may reach: public ones always;
/// others only when `allow_private_addresses` is set or they fall in
/// `ip_allowlist`.
#[derive(Debug, Clone)]
pub struct AddressPolicy {
    allow_private: bool,
    allowlist: Vec<(IpAddr, u8)>,
}

impl AddressPolicy {
    pub fn from_config(federation: &crate::config::Federation) -> Result<Self, String> {
        let allowlist = federation
            .ip_allowlist
            .iter()
            .map(|entry| parse_cidr(entry).map_err(|e| format!("federation.ip_allowlist: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            allow_private: federation.allow_private_addresses,
            allowlist,
        })
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow_private
            || is_public(ip)
            || self
                .allowlist
                .iter()
                .any(|(net, bits)| in_network(ip, *net, *bits))
    }
}

/// IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `10.0.0.0/8`, `fd00::/8` or a single address.
fn parse_cidr(entry: &str) -> Result<(IpAddr, u8), String> {
    let (ip, bits) = match entry.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits)),
        None => (entry, None),
    };
    let ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("{entry:?} is not an address or CIDR range"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("{entry:?} has a bad prefix length"))?,
        None => max,
    };
    Ok((canonical(ip), bits))
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_is_public(v4),
        IpAddr::V6(v6) => v6_is_public(v6),
    }
}

#[cfg(test)]
mod tests {
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
}
