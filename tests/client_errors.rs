//! Bad requests get the spec's errors, and nothing happens because of
//! them: a body that is not JSON is `M_NOT_JSON`, JSON of the wrong shape
//! `M_BAD_JSON` (both 400), whichever route it is sent to; events whose
//! content clients could not render are refused as Synapse refuses them;
//! a federation request that fails authentication is answered once.

mod common;

use common::{client::Client, http, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

/// Sends raw bytes as the body of a client-API request.
async fn raw(client: &Client<'_>, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let auth = format!("Bearer {}", client.token);
    http::request(
        http::Target::Plain(client.h.client),
        method,
        &format!("/_matrix/client/v3/{path}"),
        &[("authorization", auth.as_str())],
        Some(body.to_vec()),
    )
    .await
}

fn errcode(reply: &Value) -> &str {
    reply["errcode"].as_str().unwrap_or("")
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_are_refused_before_anything_happens() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice
        .ok("POST", "createRoom", json!({"preset": "public_chat"}))
        .await["room_id"]
        .as_str()
        .expect("room")
        .to_owned();
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let r = encode(&room);
    let me = encode(&bob.user);
    let routes = [
        ("POST", format!("rooms/{r}/leave")),
        ("POST", format!("join/{r}")),
        ("POST", format!("rooms/{r}/join")),
        ("PUT", format!("rooms/{r}/send/m.room.message/t1")),
        ("PUT", format!("rooms/{r}/state/m.room.topic/")),
        ("PUT", format!("profile/{me}/displayname")),
        ("POST", "keys/query".to_owned()),
        ("POST", "keys/upload".to_owned()),
        ("POST", "keys/claim".to_owned()),
        ("POST", "publicRooms".to_owned()),
        ("POST", "createRoom".to_owned()),
        ("PUT", "sendToDevice/m.test/t2".to_owned()),
        ("POST", format!("user/{me}/filter")),
        ("POST", "keys/device_signing/upload".to_owned()),
    ];
    let cases: [(&[u8], &str); 4] = [
        (b"{not json", "M_NOT_JSON"),
        (b"\xff\xfe{}", "M_NOT_JSON"),
        (b"[]", "M_BAD_JSON"),
        (b"\"text\"", "M_BAD_JSON"),
    ];
    for (body, expected) in cases {
        for (method, path) in &routes {
            let (status, reply) = raw(&bob, method, path, body).await;
            assert_eq!(
                (status, errcode(&reply)),
                (400, expected),
                "{method} {path} with {}: {reply}",
                String::from_utf8_lossy(body)
            );
        }
    }
    // None of it made bob leave, or sent anything.
    let members = alice
        .ok("GET", &format!("rooms/{r}/joined_members"), json!(null))
        .await;
    assert!(members["joined"].get(&bob.user).is_some(), "{members}");
}

#[tokio::test]
async fn content_clients_could_not_render_is_refused_like_synapse_refuses_it() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let room = alice.ok("POST", "createRoom", json!({})).await["room_id"]
        .as_str()
        .expect("room")
        .to_owned();
    let r = encode(&room);
    let me = encode(&alice.user);
    let refused = [
        (
            "PUT",
            format!("rooms/{r}/send/m.room.message/a"),
            json!({"msgtype": "m.text"}),
        ),
        (
            "PUT",
            format!("rooms/{r}/send/m.room.message/b"),
            json!({"msgtype": "m.text", "body": 5}),
        ),
        (
            "PUT",
            format!("rooms/{r}/send/m.room.message/c"),
            json!({"body": "no msgtype"}),
        ),
        (
            "PUT",
            format!("rooms/{r}/state/m.room.topic/"),
            json!({"topic": 5}),
        ),
        (
            "PUT",
            format!("rooms/{r}/state/m.room.name/"),
            json!({"name": ["x"]}),
        ),
        (
            "PUT",
            format!("rooms/{r}/state/m.room.tombstone/"),
            json!({"replacement_room": room, "body": "x"}),
        ),
        (
            "PUT",
            format!("profile/{me}/displayname"),
            json!({"displayname": 5}),
        ),
        ("POST", "keys/query".to_owned(), json!({"device_keys": 5})),
        ("POST", format!("join/{r}"), json!({"displayname": 5})),
        (
            "POST",
            format!("rooms/{r}/leave"),
            json!({"reason": {"no": 1}}),
        ),
    ];
    let before = alice.ok("GET", "sync", json!(null)).await;
    for (method, path, body) in refused {
        let (status, reply) = alice.call(method, &path, body.clone()).await;
        assert_eq!(
            (status, errcode(&reply)),
            (400, "M_BAD_JSON"),
            "{method} {path} {body}: {reply}"
        );
    }
    let since = before["next_batch"].as_str().expect("batch");
    let after = alice
        .ok("GET", &format!("sync?since={since}&timeout=0"), json!(null))
        .await;
    assert!(
        after["rooms"]["join"].get(&room).is_none(),
        "something was sent: {after}"
    );

    // What is well formed goes through.
    alice
        .ok(
            "PUT",
            &format!("rooms/{r}/send/m.room.message/d"),
            json!({"msgtype": "m.text", "body": "fine"}),
        )
        .await;
    alice
        .ok(
            "PUT",
            &format!("rooms/{r}/state/m.room.topic/"),
            json!({"topic": ""}),
        )
        .await;
}

#[tokio::test]
async fn join_keeps_the_clients_fields_and_twice_is_once() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice
        .ok("POST", "createRoom", json!({"preset": "public_chat"}))
        .await["room_id"]
        .as_str()
        .expect("room")
        .to_owned();
    let r = encode(&room);
    let body =
        json!({"reason": "hello", "org.example.badge": {"colour": "blue"}, "displayname": "Bobby"});
    bob.ok("POST", &format!("join/{r}"), body.clone()).await;
    let member_path = format!("rooms/{r}/state/m.room.member/{}", encode(&bob.user));
    let first = bob
        .ok("GET", &format!("{member_path}?format=event"), json!(null))
        .await;
    let content = &first["content"];
    assert_eq!(content["membership"], "join", "{first}");
    assert_eq!(content["reason"], "hello", "{first}");
    assert_eq!(
        content["org.example.badge"],
        json!({"colour": "blue"}),
        "{first}"
    );
    assert_eq!(content["displayname"], "Bobby", "{first}");

    // The same join again changes nothing.
    bob.ok("POST", &format!("rooms/{r}/join"), body).await;
    let again = bob
        .ok("GET", &format!("{member_path}?format=event"), json!(null))
        .await;
    assert_eq!(again["event_id"], first["event_id"]);

    // A leave keeps its reason.
    bob.ok(
        "POST",
        &format!("rooms/{r}/leave"),
        json!({"reason": "bye"}),
    )
    .await;
    let left = alice
        .ok("GET", &format!("{member_path}?format=event"), json!(null))
        .await;
    assert_eq!(
        left["content"],
        json!({"membership": "leave", "reason": "bye"})
    );
}

#[tokio::test]
async fn a_federation_request_that_fails_authentication_is_answered_once() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    for (method, path) in [
        ("PUT", "/_matrix/federation/v1/send/t1"),
        ("PUT", "/_matrix/federation/v2/invite/!a:x/$e"),
        ("POST", "/_matrix/federation/v1/user/keys/query"),
        ("POST", "/_matrix/federation/v1/no/such/endpoint"),
    ] {
        let (status, reply) = h
            .federation_request(&ca, method, path, &[], Some(b"{not json".to_vec()))
            .await;
        assert_eq!(
            (status, errcode(&reply)),
            (401, "M_UNAUTHORIZED"),
            "{path}: {reply}"
        );
    }
    assert!(
        !h.log().contains("already taken"),
        "a body was read twice:\n{}",
        h.log()
    );
}
