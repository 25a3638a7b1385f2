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

    /// Every address: for the admin's own configuration (application
    /// services, which usually run beside the server), never for a URL a
    /// user or another server gives.
    pub fn any() -> Self {
        Self {
            allow_private: true,
            allowlist: Vec::new(),
        }
    }

    /// Public addresses, and those in `allowlist` (CIDR ranges); what
    /// `setting` names in errors.
    pub fn public_and(allowlist: &[String], setting: &str) -> Result<Self, String> {
        let allowlist = allowlist
            .iter()
            .map(|entry| parse_cidr(entry).map_err(|e| format!("{setting}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            allow_private: false,
            allowlist,
        })
    }

    /// This policy, also permitting `allowlist` (CIDR ranges); what
    /// `setting` names in errors.
    pub fn and(mut self, allowlist: &[String], setting: &str) -> Result<Self, String> {
        for entry in allowlist {
            self.allowlist
                .push(parse_cidr(entry).map_err(|e| format!("{setting}: {e}"))?);
        }
        Ok(self)
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
mod tests;
