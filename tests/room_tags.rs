//! Room tags over a real process: set with an order, read, delivered as
//! the room's `m.tag` account data in `/sync`, removed; only the user's
//! own; an order outside 0 to 1 refused.

mod common;

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

fn tags_in_sync(reply: &Value, room: &str) -> Option<Value> {
    reply["rooms"]["join"][room]["account_data"]["events"]
        .as_array()?
        .iter()
        .find(|event| event["type"] == "m.tag")
        .map(|event| event["content"]["tags"].clone())
}

#[tokio::test]
async fn tags_are_set_synced_and_removed() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice.create_room(json!({})).await;
    let since = alice.ok("GET", "sync?timeout=0", json!(null)).await["next_batch"]
        .as_str()
        .expect("batch")
        .to_owned();
    let base = format!("user/{}/rooms/{}/tags", encode(&alice.user), encode(&room));
    assert_eq!(
        alice.ok("GET", &base, json!(null)).await,
        json!({"tags": {}})
    );
    alice
        .ok(
            "PUT",
            &format!("{base}/m.favourite"),
            json!({"order": 0.25}),
        )
        .await;
    alice.ok("PUT", &format!("{base}/u.work"), json!({})).await;
    let tags = alice.ok("GET", &base, json!(null)).await;
    assert_eq!(
        tags,
        json!({"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}})
    );

    let synced = alice
        .sync_until(&since, "m.tag", |reply| {
            tags_in_sync(reply, &room).is_some()
        })
        .await;
    assert_eq!(tags_in_sync(&synced, &room), Some(tags["tags"].clone()));
    let since = synced["next_batch"].as_str().expect("batch").to_owned();

    alice
        .ok("DELETE", &format!("{base}/u.work"), json!(null))
        .await;
    let synced = alice
        .sync_until(&since, "the removal", |reply| {
            tags_in_sync(reply, &room).is_some()
        })
        .await;
    assert_eq!(
        tags_in_sync(&synced, &room),
        Some(json!({"m.favourite": {"order": 0.25}}))
    );

    let (status, reply) = alice
        .call("PUT", &format!("{base}/u.bad"), json!({"order": 2}))
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_BAD_JSON")),
        "{reply}"
    );
    let (status, _) = bob.call("GET", &base, json!(null)).await;
    assert_eq!(status, 403);
    let (status, _) = bob.call("PUT", &format!("{base}/u.mine"), json!({})).await;
    assert_eq!(status, 403);
}
