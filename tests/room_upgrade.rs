//! Room upgrades over a real process: refused without power, for an
//! unknown version or room; then a replacement room with the old one's
//! state and `predecessor`, aliases, canonical alias and directory entry
//! moved, the old room tombstoned and closed to messages, and tags and
//! room push rules following their users (the upgrader at once, others
//! when they join).

mod common;

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

async fn state(client: &Client<'_>, room: &str, kind: &str) -> Value {
    client
        .ok(
            "GET",
            &format!("rooms/{}/state/{kind}/", encode(room)),
            json!(null),
        )
        .await
}

async fn tags(client: &Client<'_>, room: &str) -> Value {
    client
        .ok(
            "GET",
            &format!("user/{}/rooms/{}/tags", encode(&client.user), encode(room)),
            json!(null),
        )
        .await["tags"]
        .clone()
}

async fn push_rule(client: &Client<'_>, kind: &str, id: &str) -> Value {
    client
        .ok(
            "GET",
            &format!("pushrules/global/{kind}/{}", encode(id)),
            json!(null),
        )
        .await
}

#[tokio::test]
async fn a_room_is_upgraded_with_its_state_aliases_and_tags() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let old = alice
        .create_room(
            json!({"room_version": "10", "preset": "public_chat", "visibility": "public",
            "name": "Allotment", "topic": "Beans", "room_alias_name": "allotment"}),
        )
        .await;
    bob.ok("POST", &format!("join/{}", encode(&old)), json!({}))
        .await;
    for (user, tag) in [(&alice, "m.favourite"), (&bob, "u.veg")] {
        user.ok(
            "PUT",
            &format!(
                "user/{}/rooms/{}/tags/{tag}",
                encode(&user.user),
                encode(&old)
            ),
            json!({}),
        )
        .await;
    }
    // Alice mutes the room as Element does; bob gives it a room rule.
    let mute = json!({"actions": [], "conditions": [
        {"kind": "event_match", "key": "room_id", "pattern": old}]});
    let rule = |kind: &str| format!("pushrules/global/{kind}/{}", encode(&old));
    alice.ok("PUT", &rule("override"), mute).await;
    bob.ok("PUT", &rule("room"), json!({"actions": ["notify"]}))
        .await;
    let upgrade = format!("rooms/{}/upgrade", encode(&old));

    // Refusals.
    let (status, reply) = bob
        .call("POST", &upgrade, json!({"new_version": "12"}))
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{reply}"
    );
    let (status, reply) = alice
        .call("POST", &upgrade, json!({"new_version": "99"}))
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_UNSUPPORTED_ROOM_VERSION")),
        "{reply}"
    );
    let unknown = format!("rooms/{}/upgrade", encode("!nowhere:example.org"));
    let (status, _) = alice
        .call("POST", &unknown, json!({"new_version": "12"}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = alice.call("POST", &upgrade, json!({})).await;
    assert_eq!(status, 400);

    let reply = alice
        .ok("POST", &upgrade, json!({"new_version": "12"}))
        .await;
    let new = reply["replacement_room"]
        .as_str()
        .expect("replacement_room")
        .to_owned();
    assert_ne!(new, old);

    // The old room: tombstoned, closed to those without power.
    let tombstone = state(&alice, &old, "m.room.tombstone").await;
    assert_eq!(tombstone["replacement_room"], new.as_str(), "{tombstone}");
    let power = state(&alice, &old, "m.room.power_levels").await;
    assert_eq!(
        (power["events_default"].clone(), power["invite"].clone()),
        (json!(50), json!(50)),
        "{power}"
    );
    let (status, _) = bob
        .call(
            "PUT",
            &format!("rooms/{}/send/m.room.message/late", encode(&old)),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    assert_eq!(status, 403);

    // The new room: version 12, pointing back, with the old state.
    let create = state(&alice, &new, "m.room.create").await;
    assert_eq!(create["room_version"], "12", "{create}");
    assert_eq!(create["predecessor"]["room_id"], old.as_str(), "{create}");
    assert_eq!(
        state(&alice, &new, "m.room.name").await["name"],
        "Allotment"
    );
    assert_eq!(state(&alice, &new, "m.room.topic").await["topic"], "Beans");
    assert_eq!(
        state(&alice, &new, "m.room.join_rules").await["join_rule"],
        "public"
    );
    let power = state(&alice, &new, "m.room.power_levels").await;
    assert!(
        power["users"].get(&alice.user).is_none(),
        "a v12 creator is not listed: {power}"
    );

    // Aliases, the canonical alias and the directory moved.
    let alias = format!("#allotment:{}", h.server_name);
    let resolved = alice
        .ok(
            "GET",
            &format!("directory/room/{}", encode(&alias)),
            json!(null),
        )
        .await;
    assert_eq!(resolved["room_id"], new.as_str(), "{resolved}");
    assert_eq!(
        state(&alice, &new, "m.room.canonical_alias").await["alias"],
        alias.as_str()
    );
    assert!(state(&alice, &old, "m.room.canonical_alias")
        .await
        .get("alias")
        .is_none());
    let public = alice.ok("GET", "publicRooms", json!(null)).await;
    let listed: Vec<&str> = public["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter_map(|r| r["room_id"].as_str())
        .collect();
    assert_eq!(listed, [new.as_str()], "{public}");

    // Tags and push rules: the upgrader's at once, bob's when he joins.
    assert_eq!(tags(&alice, &new).await, json!({"m.favourite": {}}));
    let muted = push_rule(&alice, "override", &new).await;
    assert_eq!(muted["actions"], json!([]), "{muted}");
    assert_eq!(muted["conditions"][0]["pattern"], new.as_str(), "{muted}");
    let (status, _) = bob
        .call(
            "GET",
            &format!("pushrules/global/room/{}", encode(&new)),
            json!(null),
        )
        .await;
    assert_eq!(status, 404, "bob's rule waits for his join");
    bob.ok("POST", &format!("join/{}", encode(&new)), json!({}))
        .await;
    assert_eq!(tags(&bob, &new).await, json!({"u.veg": {}}));
    let bobs = push_rule(&bob, "room", &new).await;
    assert_eq!(bobs["actions"], json!(["notify"]), "{bobs}");
}
