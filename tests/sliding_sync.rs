//! Simplified sliding sync (MSC4186) over a real hearth: a user in 25
//! rooms and invited to one more gets the 20 most recent in a window,
//! counted, ordered by recency, with the state and timeline asked for and
//! the invite's stripped state; a message in a room outside the window
//! brings that room alone into the next answer; typing, receipts,
//! to-device messages (once, acknowledged) and key counts come through
//! extensions; a room subscription reaches outside the window, and one
//! with a larger timeline limit expands a room's timeline; an unknown
//! `pos` is `M_UNKNOWN_POS`. A room joined over federation from a real
//! Synapse appears with its state and history.

mod common;

use std::collections::BTreeSet;

use common::{client::Client, rooms::encode, synapse::Synapse, Hearth, TestCa};
use serde_json::{json, Value};

const SLIDING: &str = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

/// Room creation and messages without the per-user limits.
const BUSY: [(&str, &str); 4] = [
    ("HEARTH_LIMITS__MESSAGES_BURST", "1000000"),
    ("HEARTH_LIMITS__MESSAGES_PER_MINUTE", "1000000"),
    ("HEARTH_LIMITS__JOINS_BURST", "1000000"),
    ("HEARTH_LIMITS__JOINS_PER_MINUTE", "1000000"),
];

async fn sliding(client: &Client<'_>, pos: Option<&str>, timeout_ms: u64, body: &Value) -> Value {
    let query = match pos {
        Some(pos) => format!("?pos={pos}&timeout={timeout_ms}"),
        None => String::new(),
    };
    let (status, reply) = client
        .call_at("POST", &format!("{SLIDING}{query}"), body.clone())
        .await;
    assert_eq!(status, 200, "{reply}\n{}", client.h.log());
    reply
}

fn pos(reply: &Value) -> String {
    reply["pos"].as_str().expect("pos").to_owned()
}

fn rooms(reply: &Value) -> BTreeSet<String> {
    reply["rooms"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default()
}

/// The types of a room entry's `required_state` events.
fn state_types(room: &Value) -> BTreeSet<&str> {
    room["required_state"]
        .as_array()
        .expect("required_state")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect()
}

fn bodies(room: &Value) -> Vec<String> {
    room["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_of_rooms_and_what_changes_in_it() {
    let ca = TestCa::new();
    let hearth = Hearth::start_with(&ca, &BUSY);
    let alice = Client::login(&hearth, "alice").await;
    let bob = Client::login(&hearth, "bob").await;

    let versions = alice
        .call_at("GET", "/_matrix/client/versions", json!(null))
        .await
        .1;
    assert_eq!(
        versions["unstable_features"]["org.matrix.simplified_msc3575"], true,
        "{versions}"
    );

    // 25 rooms, each with a message, oldest first; then an invite.
    let mut created = Vec::new();
    for i in 0..25 {
        let room = alice
            .create_room(json!({"name": format!("room {i}")}))
            .await;
        alice.say(&room, &format!("hello {i}")).await;
        created.push(room);
    }
    let invite = bob.create_room(json!({"name": "bob's"})).await;
    bob.invite(&invite, &alice.user).await;

    let request = json!({
        "lists": {"all": {
            "ranges": [[0, 19]],
            "timeline_limit": 1,
            "required_state": [["m.room.name", ""], ["m.room.member", "$ME"]],
        }},
        "extensions": {
            "to_device": {"enabled": true},
            "e2ee": {"enabled": true},
            "typing": {"enabled": true},
            "receipts": {"enabled": true},
            "account_data": {"enabled": true},
        },
    });
    let first = sliding(&alice, None, 0, &request).await;
    assert_eq!(first["lists"]["all"]["count"], 26, "{first}");
    // The 20 most recent: the invite, then rooms 24 down to 6.
    let mut expected: BTreeSet<String> = created[6..].iter().cloned().collect();
    expected.insert(invite.clone());
    assert_eq!(rooms(&first), expected, "{first}");
    let newest = &first["rooms"][&created[24]];
    assert_eq!(newest["initial"], true, "{newest}");
    assert_eq!(newest["name"], "room 24", "{newest}");
    assert_eq!(bodies(newest), ["hello 24"], "{newest}");
    assert_eq!(newest["limited"], true, "{newest}");
    assert_eq!(newest["joined_count"], 1, "{newest}");
    assert_eq!(
        state_types(newest),
        BTreeSet::from(["m.room.name", "m.room.member"]),
        "{newest}"
    );
    // Recency: the newer room has the greater bump_stamp.
    let stamp = |room: &str| {
        first["rooms"][room]["bump_stamp"]
            .as_u64()
            .expect("bump_stamp")
    };
    assert!(stamp(&created[24]) > stamp(&created[23]), "{first}");
    assert!(stamp(&invite) > stamp(&created[24]), "{first}");
    // The invite carries its stripped state, no timeline.
    let invited = &first["rooms"][&invite];
    let names: Vec<&Value> = invited["invite_state"]
        .as_array()
        .expect("invite_state")
        .iter()
        .filter(|e| e["type"] == "m.room.name")
        .collect();
    assert_eq!(names.len(), 1, "{invited}");
    assert_eq!(names[0]["content"]["name"], "bob's", "{invited}");
    assert!(invited.get("timeline").is_none(), "{invited}");

    // A message in room 3, outside the window, brings it alone in.
    let since = pos(&first);
    alice.say(&created[3], "bump").await;
    let next = sliding(&alice, Some(&since), 10_000, &request).await;
    assert_eq!(rooms(&next), BTreeSet::from([created[3].clone()]), "{next}");
    let moved = &next["rooms"][&created[3]];
    assert_eq!(bodies(moved), ["bump"], "{moved}");
    assert_eq!(
        moved["initial"], true,
        "never sent on this connection: {moved}"
    );
    assert_eq!(moved["num_live"], 1, "{moved}");
    assert_eq!(next["lists"]["all"]["count"], 26, "{next}");

    // A message in a room already sent: only the new event.
    let since = pos(&next);
    alice.say(&created[24], "again").await;
    let next = sliding(&alice, Some(&since), 10_000, &request).await;
    let again = &next["rooms"][&created[24]];
    assert_eq!(bodies(again), ["again"], "{again}");
    assert!(again.get("initial").is_none(), "{again}");
    assert!(
        again.get("name").is_none(),
        "the name did not change: {again}"
    );
    // `limited` is left out when false.
    assert!(again.get("limited").is_none_or(|l| l == false), "{again}");

    // Typing and a read receipt through the extensions.
    let since = pos(&next);
    let last = alice.say(&created[24], "read me").await;
    let quiet = sliding(&alice, Some(&since), 0, &request).await;
    let since = pos(&quiet);
    alice.typing(&created[24]).await;
    alice.read(&created[24], &last).await;
    let mut since = since;
    let (mut typed, mut receipted) = (false, false);
    for _ in 0..10 {
        let reply = sliding(&alice, Some(&since), 5_000, &request).await;
        let ext = &reply["extensions"];
        typed |= ext["typing"]["rooms"][&created[24]]["content"]["user_ids"]
            .as_array()
            .is_some_and(|u| u.contains(&json!(alice.user)));
        receipted |= ext["receipts"]["rooms"][&created[24]]["content"][&last]["m.read"]
            .get(&alice.user)
            .is_some();
        since = pos(&reply);
        if typed && receipted {
            break;
        }
    }
    assert!(typed && receipted, "typing {typed}, receipt {receipted}");

    // A to-device message, delivered once and acknowledged.
    bob.ok(
        "PUT",
        "sendToDevice/m.test/td1",
        json!({"messages": {alice.user.clone(): {alice.device.clone(): {"n": 1}}}}),
    )
    .await;
    let reply = sliding(&alice, Some(&since), 5_000, &request).await;
    let to_device = &reply["extensions"]["to_device"];
    assert_eq!(to_device["events"][0]["content"]["n"], 1, "{reply}");
    let next_batch = to_device["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();
    let mut acked = request.clone();
    acked["extensions"]["to_device"]["since"] = json!(next_batch);
    let reply = sliding(&alice, Some(&pos(&reply)), 0, &acked).await;
    assert_eq!(
        reply["extensions"]["to_device"]["events"]
            .as_array()
            .map_or(0, Vec::len),
        0,
        "{reply}"
    );

    // Key counts in the e2ee extension.
    alice
        .ok(
            "POST",
            "keys/upload",
            json!({"one_time_keys": {
                "signed_curve25519:AAAA": {"key": "a", "signatures": {}},
                "signed_curve25519:AAAB": {"key": "b", "signatures": {}},
            }}),
        )
        .await;
    let reply = sliding(&alice, Some(&pos(&reply)), 0, &acked).await;
    assert_eq!(
        reply["extensions"]["e2ee"]["device_one_time_keys_count"]["signed_curve25519"], 2,
        "{reply}"
    );

    // A subscription to a room outside the window.
    let mut subscribed = acked.clone();
    subscribed["room_subscriptions"] = json!({created[0].clone(): {
        "timeline_limit": 5, "required_state": [["*", "*"]],
    }});
    let reply = sliding(&alice, Some(&pos(&reply)), 0, &subscribed).await;
    let room0 = &reply["rooms"][&created[0]];
    assert_eq!(bodies(room0), ["hello 0"], "{reply}");
    assert!(state_types(room0).contains("m.room.create"), "{room0}");

    // Opening a room of the window (a larger timeline limit) expands its
    // timeline to its latest events; asked again, nothing is new.
    let mut opened = subscribed.clone();
    opened["room_subscriptions"][&created[24]] = json!({"timeline_limit": 3});
    let reply = sliding(&alice, Some(&pos(&reply)), 0, &opened).await;
    let room24 = &reply["rooms"][&created[24]];
    assert_eq!(room24["expanded_timeline"], true, "{reply}");
    assert_eq!(bodies(room24), ["hello 24", "again", "read me"], "{reply}");
    assert!(reply["rooms"].get(&created[0]).is_none(), "{reply}");
    let reply = sliding(&alice, Some(&pos(&reply)), 0, &opened).await;
    assert!(reply["rooms"].get(&created[24]).is_none(), "{reply}");

    // A request asking for unbounded work is refused.
    let mut greedy = request.clone();
    let entries: Vec<Value> = (0..101)
        .map(|n| json!([format!("m.test.{n}"), ""]))
        .collect();
    greedy["lists"]["all"]["required_state"] = json!(entries);
    let (status, reply) = alice.call_at("POST", SLIDING, greedy).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{reply}"
    );

    // An unknown pos: the client must start over.
    let (status, reply) = alice
        .call_at(
            "POST",
            &format!("{SLIDING}?pos=nonsense_7"),
            request.clone(),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_UNKNOWN_POS")),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_room_joined_over_federation_from_synapse_appears_with_its_state() {
    let ca = TestCa::new();
    let syn = Synapse::start(&ca);
    let hearth = Hearth::start(&ca);
    let token = syn.register("sam").await;
    let room = syn
        .create_room(
            &token,
            json!({"preset": "public_chat", "name": "synapse room"}),
        )
        .await;
    syn.say(&token, &room, "from synapse", "s1").await;

    let alice = Client::login(&hearth, "alice").await;
    let request = json!({"lists": {"all": {
        "ranges": [[0, 9]], "timeline_limit": 10,
        "required_state": [["m.room.create", ""], ["m.room.name", ""]],
    }}});
    let first = sliding(&alice, None, 0, &request).await;
    assert_eq!(first["lists"]["all"]["count"], 0, "{first}");
    let mut since = pos(&first);

    let path = format!("join/{}?server_name={}", encode(&room), syn.server_name);
    let (status, reply) = alice.call("POST", &path, json!({})).await;
    assert_eq!(status, 200, "{reply}\n{}\n{}", hearth.log(), syn.log());

    // The room comes in whole on this connection: its state, its
    // timeline up to alice's join.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let entry = loop {
        let reply = sliding(&alice, Some(&since), 5_000, &request).await;
        since = pos(&reply);
        if let Some(entry) = reply["rooms"].get(&room) {
            assert_eq!(reply["lists"]["all"]["count"], 1, "{reply}");
            break entry.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{reply}\n{}",
            hearth.log()
        );
    };
    assert_eq!(entry["initial"], true, "{entry}");
    assert_eq!(entry["name"], "synapse room", "{entry}");
    let joined = entry["timeline"].as_array().is_some_and(|t| {
        t.iter()
            .any(|e| e["type"] == "m.room.member" && e["state_key"] == json!(alice.user))
    });
    assert!(joined, "{entry}");
    assert!(state_types(&entry).contains("m.room.create"), "{entry}");

    // Synapse's next message reaches the connection, and once the
    // partial-state join completes, the count of both members.
    syn.say(&token, &room, "after the join", "s2").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (mut message, mut both) = (false, false);
    while !(message && both) {
        let reply = sliding(&alice, Some(&since), 5_000, &request).await;
        since = pos(&reply);
        if let Some(entry) = reply["rooms"].get(&room) {
            message |= bodies(entry).contains(&"after the join".to_owned());
            both |= entry["joined_count"] == 2;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "message {message}, both {both}: {reply}\n{}",
            hearth.log()
        );
    }
}
