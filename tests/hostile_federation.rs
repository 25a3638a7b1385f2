//! Unauthenticated federation requests that would make the server contact
//! others: a stranger must not be able to use it to send requests.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use common::{http, Hearth, TestCa};
use serde_json::{json, Map, Value};

/// `count` listeners on loopback that count the connections made to them.
async fn counting_servers(count: usize) -> (Vec<String>, Arc<AtomicUsize>) {
    let contacted = Arc::new(AtomicUsize::new(0));
    let mut names = Vec::new();
    for _ in 0..count {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        names.push(listener.local_addr().expect("addr").to_string());
        let contacted = contacted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                contacted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
    }
    (names, contacted)
}

/// Loopback is an address like any other here (not a trusted proxy).
fn start(ca: &TestCa) -> Hearth {
    Hearth::start_with(ca, &[("HEARTH_LIMITS__PROXY_ADDRESSES", "[]")])
}

#[tokio::test]
async fn key_queries_make_a_bounded_number_of_fetches_per_address() {
    let ca = TestCa::new();
    let hearth = start(&ca);
    let (servers, contacted) = counting_servers(30).await;
    let server_keys: Map<String, Value> = servers.iter().map(|s| (s.clone(), json!({}))).collect();
    let (status, reply) = hearth
        .federation_request(
            &ca,
            "POST",
            "/_matrix/key/v2/query",
            &[],
            Some(
                json!({ "server_keys": server_keys })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fetched = contacted.load(Ordering::SeqCst);
    assert!(
        (1..=10).contains(&fetched),
        "one query naming 30 servers made {fetched} connections"
    );
    // The same address's single lookups now come from the cache only.
    let before = contacted.load(Ordering::SeqCst);
    let uri = format!("/_matrix/key/v2/query/{}", servers[29]);
    let (status, _) = hearth.federation_request(&ca, "GET", &uri, &[], None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(contacted.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn a_binding_for_a_user_we_do_not_have_is_refused() {
    let ca = TestCa::new();
    let hearth = start(&ca);
    let (servers, contacted) = counting_servers(1).await;
    let nobody = format!("@nobody:{}", hearth.server_name);
    let invite = json!({
        "address": "a@example.org", "medium": "email", "mxid": nobody,
        "room_id": format!("!r:{}", servers[0]), "sender": format!("@s:{}", servers[0]),
        "signed": {"mxid": nobody, "token": "t", "signatures": {}},
    });
    let body =
        json!({"address": "a@example.org", "medium": "email", "mxid": nobody, "invites": [invite]});
    let (status, reply) = http::request(
        http::Target::Tls(hearth.federation, ca.ca_pem()),
        "PUT",
        "/_matrix/federation/v1/3pid/onbind",
        &[],
        Some(body.to_string().into_bytes()),
    )
    .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND")),
        "{reply}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(contacted.load(Ordering::SeqCst), 0);
}
