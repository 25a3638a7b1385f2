//! The r0 endpoints older clients, bots and test tools still call, on a
//! real hearth: `/_matrix/client/r0/…` paths (`/versions` lists r0.6.1),
//! `POST …/send/{eventType}` without a transaction ID, `GET /initialSync`,
//! `GET /rooms/{roomId}/initialSync` and the `GET /events` stream, also
//! peeking into a `world_readable` room; each under the access rules of
//! `/messages`.

mod common;

use common::{
    client::{bodies, Client},
    http,
    rooms::encode,
    Hearth, TestCa,
};
use serde_json::{json, Value};

/// Sends a message the r0 way: `POST`, no transaction ID.
async fn post(client: &Client<'_>, room: &str, text: &str) -> String {
    let path = format!("rooms/{}/send/m.room.message", encode(room));
    client
        .ok("POST", &path, json!({"msgtype": "m.text", "body": text}))
        .await["event_id"]
        .as_str()
        .expect("event id")
        .to_owned()
}

/// The entry of `room` in an `/initialSync` answer.
fn entry<'v>(answer: &'v Value, room: &str) -> Option<&'v Value> {
    answer["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["room_id"] == room)
}

#[tokio::test]
async fn r0_paths_and_posts_without_a_transaction_id() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let auth = format!("Bearer {}", alice.token);
    let (status, reply) = http::request(
        http::Target::Plain(h.client),
        "GET",
        "/_matrix/client/r0/account/whoami",
        &[("authorization", auth.as_str())],
        None,
    )
    .await;
    assert_eq!(
        (status, &reply["user_id"]),
        (200, &json!(alice.user)),
        "{reply}"
    );

    let room = alice.create_room(json!({})).await;
    // Not idempotent: the same body twice is two events.
    let first = post(&alice, &room, "same").await;
    let second = post(&alice, &room, "same").await;
    assert_ne!(first, second);
    let messages = alice
        .ok(
            "GET",
            &format!("rooms/{}/messages?dir=b&limit=2", encode(&room)),
            json!(null),
        )
        .await;
    assert_eq!(bodies(&messages["chunk"]), ["same", "same"], "{messages}");
    let (status, reply) = alice
        .call(
            "POST",
            &format!("rooms/{}/send/m.room.message", encode(&room)),
            json!({"body": 1}),
        )
        .await;
    assert_eq!(
        (status, &reply["errcode"]),
        (400, &json!("M_BAD_JSON")),
        "{reply}"
    );
}

#[tokio::test]
async fn initial_sync_shows_joined_invited_and_archived_rooms() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let joined = alice
        .create_room(json!({"preset": "public_chat", "visibility": "public"}))
        .await;
    for text in ["one", "two", "three"] {
        post(&alice, &joined, text).await;
    }
    let invited = bob.create_room(json!({"invite": [alice.user]})).await;
    let left = bob.create_room(json!({"preset": "public_chat"})).await;
    alice
        .ok("POST", &format!("join/{}", encode(&left)), json!({}))
        .await;
    post(&bob, &left, "before the leave").await;
    alice
        .ok("POST", &format!("rooms/{}/leave", encode(&left)), json!({}))
        .await;
    post(&bob, &left, "after the leave").await;

    let answer = alice.ok("GET", "initialSync?limit=2", json!(null)).await;
    let room = entry(&answer, &joined).expect("the joined room");
    assert_eq!(room["membership"], "join", "{room}");
    assert_eq!(room["visibility"], "public", "{room}");
    assert_eq!(
        bodies(&room["messages"]["chunk"]),
        ["two", "three"],
        "{room}"
    );
    let state_types: Vec<&str> = room["state"]
        .as_array()
        .expect("state")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(state_types.contains(&"m.room.create"), "{room}");
    // The start token pages back to what came before.
    let start = room["messages"]["start"].as_str().expect("start");
    let older = alice
        .ok(
            "GET",
            &format!(
                "rooms/{}/messages?dir=b&limit=1&from={start}",
                encode(&joined)
            ),
            json!(null),
        )
        .await;
    assert_eq!(bodies(&older["chunk"]), ["one"], "{older}");

    let invite = entry(&answer, &invited).expect("the invite");
    assert_eq!(invite["membership"], "invite", "{invite}");
    assert_eq!(invite["invite"]["state_key"], alice.user, "{invite}");
    assert!(
        entry(&answer, &left).is_none(),
        "left rooms only when archived: {answer}"
    );
    assert!(
        answer["end"].is_string() && answer["presence"].is_array(),
        "{answer}"
    );

    let archived = alice
        .ok("GET", "initialSync?archived=true", json!(null))
        .await;
    let room = entry(&archived, &left).expect("the left room");
    assert_eq!(room["membership"], "leave", "{room}");
    let seen = bodies(&room["messages"]["chunk"]);
    assert!(seen.contains(&"before the leave".to_owned()), "{room}");
    assert!(!seen.contains(&"after the leave".to_owned()), "{room}");
    let (status, reply) = alice
        .call("GET", "initialSync?archived=maybe", json!(null))
        .await;
    assert_eq!(status, 400, "{reply}");
}

#[tokio::test]
async fn room_initial_sync_and_events_follow_the_access_rules() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let eve = Client::login(&h, "eve").await;
    let private = alice.create_room(json!({})).await;
    let open = alice
        .create_room(json!({"preset": "public_chat", "initial_state": [
        {"type": "m.room.history_visibility", "state_key": "",
         "content": {"history_visibility": "world_readable"}}]}))
        .await;
    post(&alice, &open, "for everyone").await;

    let one = alice
        .ok(
            "GET",
            &format!("rooms/{}/initialSync", encode(&open)),
            json!(null),
        )
        .await;
    assert_eq!(
        (&one["room_id"], &one["membership"]),
        (&json!(open), &json!("join")),
        "{one}"
    );
    assert_eq!(bodies(&one["messages"]["chunk"]), ["for everyone"], "{one}");
    // A stranger reads the world_readable room, not the private one.
    let peeked = eve
        .ok(
            "GET",
            &format!("rooms/{}/initialSync", encode(&open)),
            json!(null),
        )
        .await;
    assert_eq!(
        bodies(&peeked["messages"]["chunk"]),
        ["for everyone"],
        "{peeked}"
    );
    let (status, reply) = eve
        .call(
            "GET",
            &format!("rooms/{}/initialSync", encode(&private)),
            json!(null),
        )
        .await;
    assert_eq!(status, 403, "{reply}");
    let (status, reply) = eve
        .call(
            "GET",
            &format!("events?room_id={}", encode(&private)),
            json!(null),
        )
        .await;
    assert_eq!(status, 403, "{reply}");

    // The stream: what happens after `from`, waiting for it.
    let from = alice.ok("GET", "initialSync?limit=0", json!(null)).await["end"]
        .as_str()
        .expect("end")
        .to_owned();
    let eve_from = peeked["messages"]["end"].as_str().expect("end").to_owned();
    let stream = {
        let alice = &alice;
        let from = from.clone();
        async move {
            alice
                .ok(
                    "GET",
                    &format!("events?from={from}&timeout=10000"),
                    json!(null),
                )
                .await
        }
    };
    let sending = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        post(&alice, &private, "later").await
    };
    let (events, later) = tokio::join!(stream, sending);
    let chunk = events["chunk"].as_array().expect("chunk");
    assert!(chunk.iter().any(|e| e["event_id"] == later), "{events}");
    assert_eq!(events["start"], from, "{events}");
    // The end token goes on from there: nothing new, an empty chunk.
    let end = events["end"].as_str().expect("end");
    let quiet = alice
        .ok("GET", &format!("events?from={end}&timeout=0"), json!(null))
        .await;
    assert_eq!(quiet["chunk"], json!([]), "{quiet}");

    // Peeking: the world_readable room's new events, none of the private one's.
    post(&alice, &open, "peeked at").await;
    let peek = eve
        .ok(
            "GET",
            &format!("events?room_id={}&from={eve_from}&timeout=0", encode(&open)),
            json!(null),
        )
        .await;
    assert_eq!(bodies(&peek["chunk"]), ["peeked at"], "{peek}");
}
