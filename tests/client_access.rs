//! Who may read and change what, as the spec's "History visibility",
//! "Redactions" and "Room aliases" sections have it: former members read
//! the room as it was when they left, strangers read `world_readable`
//! rooms, redacting others needs the power, a ban holds until lifted, and
//! a canonical alias must point to its room.

mod common;

use common::{
    client::{bodies, Client},
    rooms::encode,
    Hearth, TestCa,
};
use serde_json::{json, Value};

async fn send(client: &Client<'_>, room: &str, text: &str) -> String {
    let path = format!(
        "rooms/{}/send/m.room.message/{}",
        encode(room),
        encode(text)
    );
    client
        .ok("PUT", &path, json!({"msgtype": "m.text", "body": text}))
        .await["event_id"]
        .as_str()
        .expect("event id")
        .to_owned()
}

async fn status(client: &Client<'_>, path: &str) -> u16 {
    client.call("GET", path, json!(null)).await.0
}

#[tokio::test]
async fn former_members_and_strangers_read_what_the_visibility_allows() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let carol = Client::login(&h, "carol").await;
    let dave = Client::login(&h, "dave").await;
    let room = alice
        .create_room(json!({"preset": "public_chat", "topic": "before"}))
        .await;
    let r = encode(&room);
    let m1 = send(&alice, &room, "m1").await;
    let before_bob = alice.ok("GET", "sync", json!(null)).await["next_batch"]
        .as_str()
        .expect("batch")
        .to_owned();
    bob.ok("POST", &format!("join/{r}"), json!({})).await;
    let m2 = send(&bob, &room, "m2").await;
    bob.ok("POST", &format!("rooms/{r}/leave"), json!({})).await;
    let m3 = send(&alice, &room, "m3").await;
    alice
        .ok(
            "PUT",
            &format!("rooms/{r}/state/m.room.topic/"),
            json!({"topic": "after"}),
        )
        .await;

    // Bob left: the room as it was then, the history he could see.
    let topic = bob
        .ok(
            "GET",
            &format!("rooms/{r}/state/m.room.topic/"),
            json!(null),
        )
        .await;
    assert_eq!(topic["topic"], "before");
    let state = bob
        .ok("GET", &format!("rooms/{r}/state"), json!(null))
        .await;
    assert!(!state.to_string().contains("after"), "{state}");
    let members = bob
        .ok("GET", &format!("rooms/{r}/members"), json!(null))
        .await;
    assert!(members.to_string().contains("\"leave\""), "{members}");
    let messages = bob
        .ok("GET", &format!("rooms/{r}/messages?dir=b"), json!(null))
        .await;
    let seen = bodies(&messages["chunk"]);
    assert!(
        seen.contains(&"m2".to_owned()) && seen.contains(&"m1".to_owned()),
        "{seen:?}"
    );
    assert!(!seen.contains(&"m3".to_owned()), "{seen:?}");
    assert_eq!(
        status(&bob, &format!("rooms/{r}/event/{}", encode(&m2))).await,
        200
    );
    assert_eq!(
        status(&bob, &format!("rooms/{r}/event/{}", encode(&m3))).await,
        404
    );

    // Carol was never in it: nothing, while the history is "shared".
    for path in [
        format!("rooms/{r}/state"),
        format!("rooms/{r}/members"),
        format!("rooms/{r}/messages?dir=b"),
        format!("rooms/{r}/event/{}", encode(&m1)),
    ] {
        assert_eq!(status(&carol, &path).await, 403, "{path}");
    }

    // A joined member reads the members at a point before their join
    // when the history is shared.
    dave.ok("POST", &format!("join/{r}"), json!({})).await;
    let then = dave
        .ok(
            "GET",
            &format!("rooms/{r}/members?at={before_bob}"),
            json!(null),
        )
        .await;
    let users: Vec<&str> = then["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter_map(|m| m["state_key"].as_str())
        .collect();
    assert_eq!(users, [alice.user.as_str()], "{then}");

    // World-readable: strangers read the current state and what was sent
    // since, not what was shared with members before.
    alice
        .ok(
            "PUT",
            &format!("rooms/{r}/state/m.room.history_visibility/"),
            json!({"history_visibility": "world_readable"}),
        )
        .await;
    let m4 = send(&alice, &room, "m4").await;
    let topic = carol
        .ok(
            "GET",
            &format!("rooms/{r}/state/m.room.topic/"),
            json!(null),
        )
        .await;
    assert_eq!(topic["topic"], "after");
    let messages = carol
        .ok("GET", &format!("rooms/{r}/messages?dir=b"), json!(null))
        .await;
    let seen = bodies(&messages["chunk"]);
    assert!(seen.contains(&"m4".to_owned()), "{seen:?}");
    assert!(!seen.contains(&"m1".to_owned()), "{seen:?}");
    assert_eq!(
        status(&carol, &format!("rooms/{r}/event/{}", encode(&m4))).await,
        200
    );
    assert_eq!(
        status(&carol, &format!("rooms/{r}/event/{}", encode(&m1))).await,
        404
    );
}

#[tokio::test]
async fn redacting_others_needs_the_power_and_a_ban_holds_until_lifted() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    let r = encode(&room);
    bob.ok("POST", &format!("join/{r}"), json!({})).await;
    let alices = send(&alice, &room, "alice's").await;
    let bobs = send(&bob, &room, "bob's").await;

    let (code, reply) = bob
        .call(
            "PUT",
            &format!("rooms/{r}/redact/{}/t1", encode(&alices)),
            json!({}),
        )
        .await;
    assert_eq!(
        (code, reply["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{reply}"
    );
    let event = alice
        .ok(
            "GET",
            &format!("rooms/{r}/event/{}", encode(&alices)),
            json!(null),
        )
        .await;
    assert_eq!(
        event["content"]["body"], "alice's",
        "redacted anyway: {event}"
    );
    // One's own, and (the creator of a v12 room) anyone's.
    bob.ok(
        "PUT",
        &format!("rooms/{r}/redact/{}/t2", encode(&bobs)),
        json!({}),
    )
    .await;
    let bobs2 = send(&bob, &room, "bob's second").await;
    alice
        .ok(
            "PUT",
            &format!("rooms/{r}/redact/{}/t3", encode(&bobs2)),
            json!({}),
        )
        .await;
    let event = alice
        .ok(
            "GET",
            &format!("rooms/{r}/event/{}", encode(&bobs2)),
            json!(null),
        )
        .await;
    assert_eq!(event["content"], json!({}), "{event}");

    // Banned: no way back in until unbanned.
    alice
        .ok(
            "POST",
            &format!("rooms/{r}/ban"),
            json!({"user_id": bob.user}),
        )
        .await;
    let (code, reply) = bob.call("POST", &format!("join/{r}"), json!({})).await;
    assert_eq!(code, 403, "{reply}");
    alice
        .ok(
            "POST",
            &format!("rooms/{r}/unban"),
            json!({"user_id": bob.user}),
        )
        .await;
    bob.ok("POST", &format!("join/{r}"), json!({})).await;
}

#[tokio::test]
async fn a_canonical_alias_must_point_to_its_room() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let carol = Client::login(&h, "carol").await;
    let here = alice.create_room(json!({"preset": "public_chat"})).await;
    let there = alice.create_room(json!({})).await;
    let name = |local: &str| format!("#{local}:{}", h.server_name);
    for (local, room) in [("here", &here), ("there", &there)] {
        alice
            .ok(
                "PUT",
                &format!("directory/room/{}", encode(&name(local))),
                json!({"room_id": room}),
            )
            .await;
    }
    let canonical = format!("rooms/{}/state/m.room.canonical_alias/", encode(&here));
    for bad in [
        json!({"alias": name("there")}),
        json!({"alias": name("nowhere")}),
        json!({"alias": name("here"), "alt_aliases": [name("there")]}),
    ] {
        let (code, reply) = alice.call("PUT", &canonical, bad.clone()).await;
        assert_eq!(
            (code, reply["errcode"].as_str()),
            (400, Some("M_BAD_ALIAS")),
            "{bad}: {reply}"
        );
    }
    alice
        .ok("PUT", &canonical, json!({"alias": name("here")}))
        .await;

    // Bob's alias for the room; the room's admin may remove it.
    bob.ok("POST", &format!("join/{}", encode(&here)), json!({}))
        .await;
    bob.ok(
        "PUT",
        &format!("directory/room/{}", encode(&name("bobs"))),
        json!({"room_id": here}),
    )
    .await;
    let listed = bob
        .ok(
            "GET",
            &format!("rooms/{}/aliases", encode(&here)),
            json!(null),
        )
        .await;
    let mut aliases: Vec<&str> = listed["aliases"]
        .as_array()
        .expect("aliases")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    aliases.sort();
    assert_eq!(aliases, [name("bobs"), name("here")], "{listed}");
    let (code, _) = carol
        .call(
            "GET",
            &format!("rooms/{}/aliases", encode(&here)),
            json!(null),
        )
        .await;
    assert_eq!(code, 403);
    alice
        .ok(
            "DELETE",
            &format!("directory/room/{}", encode(&name("bobs"))),
            json!(null),
        )
        .await;
    // Bob may not remove alice's.
    let (code, _) = bob
        .call(
            "DELETE",
            &format!("directory/room/{}", encode(&name("here"))),
            json!(null),
        )
        .await;
    assert_eq!(code, 403);

    // Deleting the canonical alias clears it from the room.
    alice
        .ok(
            "DELETE",
            &format!("directory/room/{}", encode(&name("here"))),
            json!(null),
        )
        .await;
    let content = alice.ok("GET", &canonical, json!(null)).await;
    assert!(content.get("alias").is_none(), "{content}");
}
