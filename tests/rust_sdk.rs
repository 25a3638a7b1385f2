//! Element X's room list on hearth: matrix-rust-sdk's `SyncService` (the
//! room list over simplified sliding sync, with the encryption sync beside
//! it) logs in, lists a user's rooms and an invite, sees a new message move
//! its room to the top with an unread count, a read receipt clear it, and
//! the room opened show its messages.
//! A separate target: the client takes minutes to build the first time.

mod common;

use std::time::Duration;

use common::{client::Client, client::PASSWORD, rust_sdk, Hearth, TestCa};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn element_x_room_list_shows_rooms_messages_and_unread_counts() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;

    // Three rooms with bob, created oldest first, and an invite from him.
    let mut joined = Vec::new();
    for name in ["garden", "kitchen", "attic"] {
        let room = alice
            .create_room(json!({"name": name, "invite": [bob.user]}))
            .await;
        bob.ok(
            "POST",
            &format!("join/{}", common::rooms::encode(&room)),
            json!({}),
        )
        .await;
        alice.say(&room, &format!("welcome to the {name}")).await;
        joined.push(room);
    }
    let invite = bob
        .create_room(json!({"name": "cellar", "invite": [alice.user]}))
        .await;

    let args = [
        format!("http://{}", h.client),
        "alice".to_owned(),
        PASSWORD.to_owned(),
        "4".to_owned(),
        "bob".to_owned(),
        PASSWORD.to_owned(),
        joined[0].clone(),
    ];
    let out = rust_sdk::run_client(&args, Duration::from_secs(900))
        .unwrap_or_else(|e| panic!("{e}\n{}", h.log()));
    let steps: Vec<Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    let step = |name: &str| -> Vec<Value> {
        let found = steps.iter().find(|s| s["step"] == name);
        let rooms = found.unwrap_or_else(|| panic!("no step {name} in {out}"));
        rooms["rooms"].as_array().cloned().unwrap_or_default()
    };
    let summary = |rooms: &[Value]| -> Vec<(String, String, u64)> {
        rooms
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap_or_default().to_owned(),
                    r["state"].as_str().unwrap_or_default().to_owned(),
                    r["notification_count"].as_u64().unwrap_or(u64::MAX),
                )
            })
            .collect()
    };

    // Named, with their memberships; nothing unread: alice said the last
    // word in each room, and was invited to the cellar.
    let mut listed = summary(&step("listed"));
    listed.sort();
    let expected = [
        ("attic", "join"),
        ("cellar", "invite"),
        ("garden", "join"),
        ("kitchen", "join"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string(), 0))
        .collect();
    assert_eq!(listed, expected, "{out}");
    let cellar = step("listed").into_iter().find(|r| r["name"] == "cellar");
    assert_eq!(cellar.map(|r| r["room_id"].clone()), Some(json!(invite)));

    // bob's word in the oldest room brings it to the top, one unread.
    let moved = step("message");
    assert_eq!(moved[0]["room_id"], joined[0].as_str(), "{out}");
    assert_eq!(moved[0]["notification_count"], 1, "{out}");
    assert_eq!(moved[0]["unread_messages"], 1, "{out}");
    let others: Vec<_> = moved[1..]
        .iter()
        .map(|r| &r["notification_count"])
        .collect();
    assert!(others.iter().all(|c| **c == 0), "{out}");

    // alice's read receipt, sent by the client, clears it.
    let read = step("read");
    assert_eq!(read[0]["room_id"], joined[0].as_str(), "{out}");
    assert_eq!(read[0]["notification_count"], 0, "{out}");

    // Opened, the room shows both its messages, though the list had sent
    // only the last (from the expanded timeline or the SDK's own
    // back-pagination: tests/sliding_sync.rs checks the expansion itself).
    let opened = steps.iter().find(|s| s["step"] == "opened");
    let opened = opened.unwrap_or_else(|| panic!("not opened: {out}"));
    assert_eq!(
        opened["messages"],
        json!(["welcome to the garden", "hello from the other side"]),
        "{out}"
    );
}
