//! What a stranger can do at the client API without an account: guess
//! passwords only slowly, and not learn which accounts exist.

mod common;

use std::time::{Duration, Instant};

use common::{
    client::{Client, PASSWORD},
    http,
    rooms::{encode, user},
    Hearth, TestCa,
};
use serde_json::{json, Value};

/// A password login for `user`, as if forwarded by a proxy on this
/// machine for `address` (127.0.0.1 is a proxy address by default).
async fn login(hearth: &Hearth, user: &str, password: &str, address: &str) -> (u16, Value) {
    let body = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    });
    http::request(
        http::Target::Plain(hearth.client),
        "POST",
        "/_matrix/client/v3/login",
        &[("x-forwarded-for", address)],
        Some(body.to_string().into_bytes()),
    )
    .await
}

#[tokio::test]
async fn logins_are_limited_per_address_and_failures_per_account() {
    let ca = TestCa::new();
    let hearth = Hearth::start(&ca);
    user(&hearth, "alice");
    // One address: a burst of 5 attempts, then 429 with a wait.
    for i in 0..5 {
        let (status, reply) = login(&hearth, &format!("nobody{i}"), "guess", "203.0.113.5").await;
        assert_eq!(status, 403, "attempt {i}: {reply}");
    }
    let (status, reply) = login(&hearth, "nobody9", "guess", "203.0.113.5").await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (429, Some("M_LIMIT_EXCEEDED")),
        "{reply}"
    );
    let wait = reply["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!((1..=10_000).contains(&wait), "{wait}");
    // Another address is not held up by it.
    let (status, reply) = login(&hearth, "alice", PASSWORD, "203.0.113.6").await;
    assert_eq!(status, 200, "{reply}");

    // Wrong passwords for one account from many addresses: after 5, the
    // account takes no more guesses for a while, the right one included.
    for i in 0..5 {
        let address = format!("198.51.100.{i}");
        assert_eq!(login(&hearth, "alice", "wrong", &address).await.0, 403);
    }
    let (status, reply) = login(&hearth, "alice", PASSWORD, "198.51.100.99").await;
    assert_eq!(status, 429, "{reply}");
}

#[tokio::test]
async fn an_unknown_account_answers_as_slowly_as_a_wrong_password() {
    let ca = TestCa::new();
    let hearth = Hearth::start_with(&ca, &[("HEARTH_LIMITS__LOGIN_BURST", "100")]);
    user(&hearth, "alice");
    let mut known = Duration::ZERO;
    let mut unknown = Duration::ZERO;
    // Alternated, so that the machine's drift falls on both alike.
    for i in 0..4 {
        let address = format!("192.0.2.{i}");
        let started = Instant::now();
        assert_eq!(login(&hearth, "alice", "wrong", &address).await.0, 403);
        known += started.elapsed();
        let started = Instant::now();
        assert_eq!(login(&hearth, "mallory", "wrong", &address).await.0, 403);
        unknown += started.elapsed();
    }
    assert!(
        // Within 3x (a loaded machine drifts); before, 100x apart.
        unknown * 3 > known && known * 3 > unknown,
        "wrong password took {known:?}, unknown account {unknown:?}"
    );
}

/// `PUT`/`POST` as a logged-in user; the status and errcode.
async fn put(client: &Client<'_>, method: &str, path: &str, body: Value) -> (u16, String) {
    let (status, reply) = client.call(method, path, body).await;
    (status, reply["errcode"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn what_a_user_stores_is_bounded() {
    let ca = TestCa::new();
    let hearth = Hearth::start(&ca);
    let alice = Client::login(&hearth, "alice").await;
    let me = encode(&alice.user);
    let name = |n: usize| json!({"displayname": "n".repeat(n)});
    let path = format!("profile/{me}/displayname");
    assert_eq!(put(&alice, "PUT", &path, name(200)).await.0, 200);
    assert_eq!(
        put(&alice, "PUT", &path, name(100_000)).await,
        (400, "M_INVALID_PARAM".into())
    );
    let path = format!("profile/{me}/avatar_url");
    let avatar = json!({"avatar_url": format!("mxc://x/{}", "a".repeat(5000))});
    assert_eq!(
        put(&alice, "PUT", &path, avatar).await,
        (400, "M_INVALID_PARAM".into())
    );

    let not_rooms: Vec<String> = (0..5000).map(|i| format!("!room{i}:example.org")).collect();
    let filter = json!({"room": {"not_rooms": not_rooms}});
    let path = format!("user/{me}/filter");
    assert_eq!(
        put(&alice, "POST", &path, filter).await,
        (413, "M_TOO_LARGE".into())
    );

    let path = format!("user/{me}/account_data/org.example.big");
    let big = json!({"blob": "b".repeat(300_000)});
    assert_eq!(
        put(&alice, "PUT", &path, big).await,
        (413, "M_TOO_LARGE".into())
    );
    assert_eq!(put(&alice, "PUT", &path, json!({"small": 1})).await.0, 200);

    let (status, reply) = http::request(
        http::Target::Plain(hearth.client),
        "POST",
        "/_matrix/client/v3/login",
        &[],
        Some(
            json!({"type": "m.login.password", "user": "alice", "password": PASSWORD,
                   "device_id": "D".repeat(1000)})
            .to_string()
            .into_bytes(),
        ),
    )
    .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{reply}"
    );
}

#[tokio::test]
async fn a_remote_profile_needs_a_token() {
    let ca = TestCa::new();
    let hearth = Hearth::start(&ca);
    // A server that counts the connections made to it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let remote = listener.local_addr().expect("addr");
    let path = format!(
        "/_matrix/client/v3/profile/{}",
        encode(&format!("@a:{remote}"))
    );
    let (status, reply) =
        http::request(http::Target::Plain(hearth.client), "GET", &path, &[], None).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (401, Some("M_MISSING_TOKEN")),
        "{reply}"
    );
    let contacted = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
    assert!(contacted.is_err(), "the server was contacted");
    // Our own users' profiles stay public.
    let alice = user(&hearth, "alice");
    let path = format!("/_matrix/client/v3/profile/{}", encode(&alice));
    let (status, _) =
        http::request(http::Target::Plain(hearth.client), "GET", &path, &[], None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn messages_and_joins_are_limited_per_user_and_counted() {
    let ca = TestCa::new();
    let hearth = Hearth::start_with(
        &ca,
        &[
            ("HEARTH_LIMITS__MESSAGES_BURST", "5"),
            ("HEARTH_LIMITS__JOINS_BURST", "2"),
            ("HEARTH_METRICS__ENABLED", "true"),
        ],
    );
    let alice = Client::login(&hearth, "alice").await;
    let bob = Client::login(&hearth, "bob").await;
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    let body = json!({"msgtype": "m.text", "body": "hi"});
    for i in 0..5 {
        let path = format!("rooms/{}/send/m.room.message/t{i}", encode(&room));
        assert_eq!(put(&alice, "PUT", &path, body.clone()).await.0, 200);
    }
    let path = format!("rooms/{}/send/m.room.message/t5", encode(&room));
    assert_eq!(
        put(&alice, "PUT", &path, body.clone()).await,
        (429, "M_LIMIT_EXCEEDED".into())
    );
    // A retried transaction is an answer, not another message.
    let path = format!("rooms/{}/send/m.room.message/t0", encode(&room));
    assert_eq!(put(&alice, "PUT", &path, body.clone()).await.0, 200);
    // bob has his own allowance.
    assert_eq!(
        put(&bob, "POST", &format!("join/{}", encode(&room)), json!({}))
            .await
            .0,
        200
    );
    let path = format!("rooms/{}/send/m.room.message/b0", encode(&room));
    assert_eq!(put(&bob, "PUT", &path, body).await.0, 200);

    let rooms = [
        alice.create_room(json!({"preset": "public_chat"})).await,
        alice.create_room(json!({"preset": "public_chat"})).await,
    ];
    assert_eq!(
        put(
            &bob,
            "POST",
            &format!("join/{}", encode(&rooms[0])),
            json!({})
        )
        .await
        .0,
        200
    );
    let third = put(
        &bob,
        "POST",
        &format!("join/{}", encode(&rooms[1])),
        json!({}),
    )
    .await;
    assert_eq!(third, (429, "M_LIMIT_EXCEEDED".into()));

    let metrics = hearth.metrics().await.expect("metrics are enabled");
    for line in [
        "hearth_requests_refused_total{reason=\"messages\"} 1",
        "hearth_requests_refused_total{reason=\"joins\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert!(metrics.contains("hearth_connections_open "), "{metrics}");
}
