use std::{net::IpAddr, sync::Arc};

use super::{address_key, Connections, Refusal};
use crate::config::Limits;

fn connections(max_connections: usize, connections_per_ip: usize) -> Arc<Connections> {
    Arc::new(Connections::new(&Limits {
        max_connections,
        connections_per_ip,
        ..Limits::default()
    }))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn caps_each_address_and_the_total() {
    let open = connections(3, 2);
    let a1 = open.open(ip("192.0.2.1")).unwrap();
    let _a2 = open.open(ip("192.0.2.1")).unwrap();
    assert_eq!(
        open.open(ip("192.0.2.1")).err(),
        Some(Refusal::TooManyFromAddress)
    );
    let _b = open.open(ip("192.0.2.2")).unwrap();
    assert_eq!(open.open(ip("192.0.2.3")).err(), Some(Refusal::TooMany));
    drop(a1);
    assert!(open.open(ip("192.0.2.1")).is_ok());
    assert_eq!(open.refused(), (1, 1));
}

#[test]
fn proxies_are_not_capped_per_address() {
    let open = connections(10, 1);
    let _first = open.open(ip("127.0.0.1")).unwrap();
    assert!(open.open(ip("127.0.0.1")).is_ok());
    assert!(open.open(ip("::ffff:127.0.0.1")).is_ok());
}

#[test]
fn an_ipv6_64_is_one_address() {
    assert_eq!(
        address_key(ip("2001:db8:1:2:aaaa::1")),
        address_key(ip("2001:db8:1:2:bbbb::9"))
    );
    assert_ne!(
        address_key(ip("2001:db8:1:2::1")),
        address_key(ip("2001:db8:1:3::1"))
    );
    assert_eq!(address_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
}
