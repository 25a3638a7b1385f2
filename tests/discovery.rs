//! Server discovery against a real DNS server and real HTTPS well-known
//! hosts on loopback, reaching real hearth processes. Each resolution step
//! of the spec, caching, failures, and the address policy.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::{
    dns::TestDns,
    free_port,
    web::{fresh_loopback_ip, Canned, TestWeb},
    Hearth, TestCa,
};
use hearth::{config::Config, net::https::HttpsClient};
use http::Method;
use ruma::ServerName;

const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const WELL_KNOWN: &str = "/.well-known/matrix/server";

fn client_with(ca: &TestCa, dns: &TestDns, edit: impl FnOnce(&mut Config)) -> HttpsClient {
    let mut config = Config::default();
    config.federation.nameservers = vec![dns.addr];
    config.federation.extra_ca_file = Some(ca.ca_pem());
    config.federation.allow_private_addresses = true;
    config.federation.request_timeout_secs = 5;
    edit(&mut config);
    HttpsClient::new(&config).expect("client")
}

fn client(ca: &TestCa, dns: &TestDns) -> HttpsClient {
    client_with(ca, dns, |_| {})
}

fn name(s: &str) -> &ServerName {
    <&ServerName>::try_from(s).expect("server name")
}

/// GETs /version of `destination` and returns its `server.name`, or the error.
async fn version(client: &HttpsClient, destination: &str) -> Result<String, String> {
    let response = client
        .request(
            name(destination),
            Method::GET,
            "/_matrix/federation/v1/version",
            None,
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value =
        serde_json::from_slice(&response.body).map_err(|e| e.to_string())?;
    Ok(body["server"]["name"].as_str().unwrap_or("").to_owned())
}

fn hearth_named(ca: &TestCa, server_name: &str) -> (Hearth, u16) {
    let port = free_port();
    let hearth = Hearth::start_at(ca, server_name, SocketAddr::new(LOCALHOST, port), &[]);
    (hearth, port)
}

#[tokio::test]
async fn hostname_with_explicit_port_uses_address_records() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let (_hs, port) = hearth_named(&ca, "placeholder.hearth.test");
    dns.add_ip("hs.hearth.test", LOCALHOST);
    let client = client(&ca, &dns);
    let destination = format!("hs.hearth.test:{port}");
    assert_eq!(version(&client, &destination).await, Ok("hearth".into()));
    let resolution = client.resolve(name(&destination)).await;
    assert_eq!(resolution.authority, destination);
    assert!(
        resolution.well_known.contains("not looked up"),
        "{resolution:?}"
    );
}

#[tokio::test]
async fn well_known_delegation_is_followed_and_cached() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let web = TestWeb::start(&ca);
    let (_hs, port) = hearth_named(&ca, "wk.hearth.test");
    dns.add_ip("wk.hearth.test", web.addr.ip());
    dns.add_ip("hs.hearth.test", LOCALHOST);
    web.set(
        WELL_KNOWN,
        Canned::json(&format!(r#"{{"m.server": "hs.hearth.test:{port}"}}"#))
            .with_header("cache-control", "max-age=3600"),
    );
    let client = client(&ca, &dns);

    assert_eq!(
        version(&client, "wk.hearth.test").await,
        Ok("hearth".into())
    );
    let resolution = client.resolve(name("wk.hearth.test")).await;
    assert_eq!(resolution.authority, format!("hs.hearth.test:{port}"));
    assert!(
        resolution.well_known.starts_with("cached"),
        "{resolution:?}"
    );
    let (hits, queries) = (web.hits(), dns.queries());
    assert_eq!(hits, 1);
    assert_eq!(
        web.hosts(),
        ["wk.hearth.test"],
        "Host is the bare hostname for the well-known"
    );

    // Again: neither the well-known host nor DNS is asked.
    assert_eq!(
        version(&client, "wk.hearth.test").await,
        Ok("hearth".into())
    );
    client
        .dns()
        .endpoints(&resolution.authority)
        .await
        .expect("endpoints");
    assert_eq!(
        (web.hits(), dns.queries()),
        (hits, queries),
        "served from cache"
    );
}

#[tokio::test]
async fn a_signed_request_reaches_a_delegated_hearth() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let web = TestWeb::start(&ca);
    let (b, port) = hearth_named(&ca, "b.hearth.test");
    dns.add_ip("b.hearth.test", web.addr.ip());
    dns.add_ip("hs-b.hearth.test", LOCALHOST);
    web.set(
        WELL_KNOWN,
        Canned::json(&format!(r#"{{"m.server": "hs-b.hearth.test:{port}"}}"#)),
    );
    let (key, value) = dns.env();
    let a = Hearth::start_with(&ca, &[(key, &value)]);
    // A finds B through its well-known; B fetches A's key (an IP literal) and accepts.
    let (_, reply) = a
        .admin(
            "federation/request",
            serde_json::json!({"destination": "b.hearth.test", "method": "GET", "uri": "/_matrix/federation/v1/hearth_probe"}),
        )
        .await;
    assert_eq!(
        reply["status"],
        404,
        "{reply}\nA: {}\nB: {}",
        a.log(),
        b.log()
    );
    assert_eq!(reply["body"]["errcode"], "M_UNRECOGNIZED");
}

#[tokio::test]
async fn well_known_to_an_ip_literal() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let web = TestWeb::start(&ca);
    let (_hs, port) = hearth_named(&ca, "ip.hearth.test");
    dns.add_ip("ip.hearth.test", web.addr.ip());
    web.set(
        WELL_KNOWN,
        Canned::json(&format!(r#"{{"m.server": "127.0.0.1:{port}"}}"#)),
    );
    assert_eq!(
        version(&client(&ca, &dns), "ip.hearth.test").await,
        Ok("hearth".into())
    );
}

#[tokio::test]
async fn delegated_name_without_port_uses_matrix_fed_srv() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let web = TestWeb::start(&ca);
    let (_hs, port) = hearth_named(&ca, "srv.hearth.test");
    dns.add_ip("srv.hearth.test", web.addr.ip());
    web.set(
        WELL_KNOWN,
        Canned::json(r#"{"m.server": "deleg.hearth.test"}"#),
    );
    dns.add_srv(
        "_matrix-fed._tcp.deleg.hearth.test",
        10,
        port,
        "box.hearth.test",
    );
    dns.add_srv(
        "_matrix-fed._tcp.deleg.hearth.test",
        20,
        1,
        "wrong.hearth.test",
    ); // lower preference, never used
    dns.add_ip("box.hearth.test", LOCALHOST);
    let client = client(&ca, &dns);
    assert_eq!(
        version(&client, "srv.hearth.test").await,
        Ok("hearth".into())
    );
    let endpoints = client
        .dns()
        .endpoints("deleg.hearth.test")
        .await
        .expect("endpoints");
    assert_eq!(
        endpoints.tls_name, "deleg.hearth.test",
        "the certificate must be for the delegated name"
    );
    assert_eq!(endpoints.addresses[0], SocketAddr::new(LOCALHOST, port));
}

#[tokio::test]
async fn deprecated_matrix_srv_is_the_fallback() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let (_hs, port) = hearth_named(&ca, "old.hearth.test");
    dns.add_ip("old.hearth.test", fresh_loopback_ip()); // nothing listens on :443 there
    dns.add_srv("_matrix._tcp.old.hearth.test", 10, port, "box.hearth.test");
    dns.add_ip("box.hearth.test", LOCALHOST);
    let client = client(&ca, &dns);
    assert_eq!(
        version(&client, "old.hearth.test").await,
        Ok("hearth".into())
    );
    let endpoints = client
        .dns()
        .endpoints("old.hearth.test")
        .await
        .expect("endpoints");
    assert!(
        endpoints
            .steps
            .iter()
            .any(|s| s.starts_with("SRV _matrix-fed._tcp.old.hearth.test: none")),
        "{endpoints:?}"
    );
}

#[tokio::test]
async fn without_well_known_srv_on_the_hostname_and_failures_are_cached() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let web = TestWeb::start(&ca);
    let (_hs, port) = hearth_named(&ca, "nowk.hearth.test");
    dns.add_ip("nowk.hearth.test", web.addr.ip()); // the web host answers 404 for the well-known
    dns.add_srv(
        "_matrix-fed._tcp.nowk.hearth.test",
        10,
        port,
        "box.hearth.test",
    );
    dns.add_ip("box.hearth.test", LOCALHOST);
    let client = client(&ca, &dns);
    assert_eq!(
        version(&client, "nowk.hearth.test").await,
        Ok("hearth".into())
    );
    assert_eq!(web.hits(), 1);
    let resolution = client.resolve(name("nowk.hearth.test")).await;
    assert_eq!(resolution.authority, "nowk.hearth.test");
    assert!(resolution.well_known.contains("404"), "{resolution:?}");
    assert_eq!(web.hits(), 1, "the failure is cached");
}

#[tokio::test]
async fn last_resort_is_port_8448_of_the_hostname() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let ip = fresh_loopback_ip();
    let _hs = Hearth::start_at(&ca, "plain.hearth.test", SocketAddr::new(ip, 8448), &[]);
    dns.add_ip("plain.hearth.test", ip);
    assert_eq!(
        version(&client(&ca, &dns), "plain.hearth.test").await,
        Ok("hearth".into())
    );
}

#[tokio::test]
async fn redirects_are_followed_but_not_forever() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let (first, second) = (TestWeb::start(&ca), TestWeb::start(&ca));
    let (_hs, port) = hearth_named(&ca, "redir.hearth.test");
    dns.add_ip("redir.hearth.test", first.addr.ip());
    dns.add_ip("elsewhere.hearth.test", second.addr.ip());
    dns.add_ip("hs.hearth.test", LOCALHOST);
    first.set(
        WELL_KNOWN,
        Canned::redirect("https://elsewhere.hearth.test/matrix.json"),
    );
    second.set(
        "/matrix.json",
        Canned::json(&format!(r#"{{"m.server": "hs.hearth.test:{port}"}}"#)),
    );
    let client = client(&ca, &dns);
    assert_eq!(
        client.resolve(name("redir.hearth.test")).await.authority,
        format!("hs.hearth.test:{port}")
    );
    assert_eq!(
        second.hosts(),
        ["elsewhere.hearth.test"],
        "the redirect target gets its own Host"
    );

    dns.add_ip("loop.hearth.test", first.addr.ip());
    first.set("/a", Canned::redirect("/b"));
    first.set("/b", Canned::redirect("https://loop.hearth.test/a"));
    dns.add_ip("chain.hearth.test", second.addr.ip());
    for i in 0..10 {
        second.set(&format!("/{i}"), Canned::redirect(&format!("/{}", i + 1)));
    }
    second.set(WELL_KNOWN, Canned::redirect("/0"));
    first.set(WELL_KNOWN, Canned::redirect("/a"));
    dns.add_ip("loop2.hearth.test", first.addr.ip());
    let looped = client.resolve(name("loop2.hearth.test")).await;
    assert!(looped.well_known.contains("redirect loop"), "{looped:?}");
    assert_eq!(
        looped.authority, "loop2.hearth.test",
        "falls back to the hostname"
    );
    let chained = client.resolve(name("chain.hearth.test")).await;
    assert!(
        chained.well_known.contains("more than 5 redirects"),
        "{chained:?}"
    );
}

#[tokio::test]
async fn bad_well_known_responses_fall_back_with_a_reason() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let client = client(&ca, &dns);
    let cases = [
        (Canned::json("{not json"), "not JSON"),
        (Canned::json(r#"{"m.server": 42}"#), "not a string"),
        (
            Canned::json(r#"{"m.server": "bad name!"}"#),
            "not a server name",
        ),
        (
            Canned::json(&format!(r#"{{"m.server": "{}"}}"#, "x".repeat(100_000))),
            "larger than",
        ),
        (Canned::redirect("http://plain.hearth.test/"), "not https"),
        (Canned::status(500), "500"),
    ];
    for (i, (canned, reason)) in cases.into_iter().enumerate() {
        let web = TestWeb::start(&ca);
        let host = format!("bad{i}.hearth.test");
        dns.add_ip(&host, web.addr.ip());
        web.set(WELL_KNOWN, canned);
        let resolution = client.resolve(name(&host)).await;
        assert_eq!(resolution.authority, host);
        assert!(
            resolution.well_known.contains(reason),
            "{host}: expected {reason:?} in {resolution:?}"
        );
    }
}

#[tokio::test]
async fn srv_target_dot_means_no_service() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    dns.add_ip("dot.hearth.test", fresh_loopback_ip());
    dns.add_srv("_matrix-fed._tcp.dot.hearth.test", 0, 0, ".");
    let error = version(&client(&ca, &dns), "dot.hearth.test")
        .await
        .expect_err("no service");
    assert!(error.contains("not available"), "{error}");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let (_hs, port) = hearth_named(&ca, "mismatch.example");
    dns.add_ip("mismatch.example", LOCALHOST);
    let error = version(&client(&ca, &dns), &format!("mismatch.example:{port}"))
        .await
        .expect_err("bad cert");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let (_hs, port) = hearth_named(&ca, "private.hearth.test");
    dns.add_ip("private.hearth.test", LOCALHOST);
    let destination = format!("private.hearth.test:{port}");
    let strict = client_with(&ca, &dns, |c| c.federation.allow_private_addresses = false);
    let error = version(&strict, &destination).await.expect_err("refused");
    assert!(error.contains("not a public address"), "{error}");
    let literal = version(&strict, &format!("127.0.0.1:{port}"))
        .await
        .expect_err("refused");
    assert!(literal.contains("not a public address"), "{literal}");
    let allowlisted = client_with(&ca, &dns, |c| {
        c.federation.allow_private_addresses = false;
        c.federation.ip_allowlist = vec!["127.0.0.0/8".into()];
    });
    assert_eq!(
        version(&allowlisted, &destination).await,
        Ok("hearth".into())
    );
}

#[tokio::test]
async fn a_silent_well_known_host_is_bounded_by_the_timeout() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let ip = fresh_loopback_ip();
    // Accepts connections, never answers.
    let silent = std::net::TcpListener::bind(SocketAddr::new(ip, 443)).expect("bind");
    dns.add_ip("silent.hearth.test", ip);
    let client = client_with(&ca, &dns, |c| c.federation.request_timeout_secs = 2);
    let started = std::time::Instant::now();
    let resolution = client.resolve(name("silent.hearth.test")).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(
        resolution.well_known.contains("did not answer"),
        "{resolution:?}"
    );
    drop(silent);
}

#[tokio::test]
async fn a_dead_destination_backs_off_until_it_answers() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let port = free_port();
    let destination = format!("127.0.0.1:{port}");
    let client = client(&ca, &dns);
    let first = version(&client, &destination)
        .await
        .expect_err("nothing listens");
    assert!(first.contains("refused"), "{first}");
    let second = version(&client, &destination)
        .await
        .expect_err("backing off");
    assert!(
        second.contains("not trying") && second.contains("refused"),
        "{second}"
    );

    let _hs = Hearth::start_at(&ca, &destination, SocketAddr::new(LOCALHOST, port), &[]);
    let still = version(&client, &destination)
        .await
        .expect_err("still backing off");
    assert!(still.contains("not trying"), "{still}");
    // Key fetches go through regardless, and an answer clears the record.
    let keys = client
        .get_now(name(&destination), "/_matrix/key/v2/server")
        .await
        .expect("reachable");
    assert_eq!(keys.status, 200);
    assert_eq!(version(&client, &destination).await, Ok("hearth".into()));
    assert!(client.backoff().state(name(&destination)).is_none());
}
