//! Push rules evaluated on the server, over a real process: unread counts
//! in `/sync` for a plain message, a display-name mention, an `m.mentions`
//! mention, a notice and the user's own message, in a two-member and a
//! three-member room; counts moved on by a read receipt and, per thread,
//! by a threaded receipt; `GET /notifications` (with `only=highlight` and
//! `read` flags); a room muted by a push rule; all of it still there after
//! `kill -9`.

mod common;

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

/// Alice's counts in `room` from an initial sync, thread-aware or not.
async fn counts(alice: &Client<'_>, room: &str, threads: bool) -> Value {
    let filter =
        json!({"room": {"timeline": {"limit": 1, "unread_thread_notifications": threads}}});
    let sync = alice
        .ok(
            "GET",
            &format!("sync?filter={}", encode(&filter.to_string())),
            json!(null),
        )
        .await;
    let entry = &sync["rooms"]["join"][room];
    json!({
        "main": entry["unread_notifications"],
        "threads": entry.get("unread_thread_notifications").cloned().unwrap_or(json!({})),
    })
}

fn n(notifications: u64, highlights: u64) -> Value {
    json!({"notification_count": notifications, "highlight_count": highlights})
}

async fn send(client: &Client<'_>, room: &str, content: Value) -> String {
    let txn = format!("t{}", rand_txn());
    client
        .ok(
            "PUT",
            &format!("rooms/{}/send/m.room.message/{txn}", encode(room)),
            content,
        )
        .await["event_id"]
        .as_str()
        .expect("event_id")
        .to_owned()
}

fn rand_txn() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn receipt(client: &Client<'_>, room: &str, event: &str, body: Value) {
    client
        .ok(
            "POST",
            &format!("rooms/{}/receipt/m.read/{}", encode(room), encode(event)),
            body,
        )
        .await;
}

#[tokio::test]
async fn unread_counts_follow_push_rules_receipts_and_threads() {
    let ca = TestCa::new();
    let mut h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let carol = Client::login(&h, "carol").await;
    let two = alice.create_room(json!({"preset": "private_chat"})).await;
    let three = alice.create_room(json!({"preset": "private_chat"})).await;
    for room in [&two, &three] {
        alice.invite(room, &bob.user).await;
        bob.ok("POST", &format!("join/{}", encode(room)), json!({}))
            .await;
    }
    alice.invite(&three, &carol.user).await;
    carol
        .ok("POST", &format!("join/{}", encode(&three)), json!({}))
        .await;

    // A one-to-one room: every message notifies.
    send(&bob, &two, json!({"msgtype": "m.text", "body": "hello"})).await;
    assert_eq!(counts(&alice, &two, false).await["main"], n(1, 0));

    // Three members: a plain message, a display-name mention, an
    // m.mentions mention, a notice (quiet) and alice's own (never counts).
    let plain = send(&bob, &three, json!({"msgtype": "m.text", "body": "lunch?"})).await;
    let named = send(
        &bob,
        &three,
        json!({"msgtype": "m.text", "body": "alice: are you coming?"}),
    )
    .await;
    let mentioned = send(
        &carol,
        &three,
        json!({"msgtype": "m.text", "body": "ping", "m.mentions": {"user_ids": [alice.user]}}),
    )
    .await;
    send(
        &bob,
        &three,
        json!({"msgtype": "m.notice", "body": "bot says hi"}),
    )
    .await;
    send(
        &alice,
        &three,
        json!({"msgtype": "m.text", "body": "on my way"}),
    )
    .await;
    // The display-name mention highlights too, as on Synapse (a legacy
    // rule the spec dropped in v1.17, kept for clients without m.mentions).
    assert_eq!(counts(&alice, &three, false).await["main"], n(3, 2));
    // Bob is counted for carol's and alice's messages, not his own nor
    // his invite from before he joined.
    assert_eq!(counts(&bob, &three, false).await["main"], n(2, 0));

    // The receipt at the display-name mention leaves the m.mentions one.
    receipt(&alice, &three, &named, json!({})).await;
    assert_eq!(counts(&alice, &three, false).await["main"], n(1, 1));

    // /notifications: newest first; highlights only; read flags.
    let all = alice.ok("GET", "notifications", json!(null)).await;
    let ids: Vec<&str> = all["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter_map(|n| n["event"]["event_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 4, "{all}");
    assert_eq!(
        &ids[..3],
        [mentioned.as_str(), named.as_str(), plain.as_str()]
    );
    let read: Vec<bool> = all["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .map(|n| n["read"] == true)
        .collect();
    assert_eq!(read, [false, true, true, false], "{all}");
    let highlights = alice
        .ok("GET", "notifications?only=highlight", json!(null))
        .await;
    assert_eq!(
        highlights["notifications"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        highlights["notifications"][0]["event"]["event_id"],
        mentioned.as_str()
    );
    let first = alice.ok("GET", "notifications?limit=1", json!(null)).await;
    assert_eq!(
        first["notifications"][0]["event"]["event_id"],
        mentioned.as_str()
    );
    let token = first["next_token"].as_str().expect("next_token");
    let rest = alice
        .ok(
            "GET",
            &format!("notifications?limit=2&from={token}"),
            json!(null),
        )
        .await;
    let rest: Vec<&str> = rest["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter_map(|n| n["event"]["event_id"].as_str())
        .collect();
    assert_eq!(rest, [named.as_str(), plain.as_str()]);

    // A thread: counted apart for a client that asks, and read apart.
    let reply = send(
        &bob,
        &three,
        json!({"msgtype": "m.text", "body": "in a thread",
            "m.relates_to": {"rel_type": "m.thread", "event_id": plain}}),
    )
    .await;
    let threaded = counts(&alice, &three, true).await;
    assert_eq!(threaded["main"], n(1, 1), "{threaded}");
    assert_eq!(threaded["threads"], json!({ plain.clone(): n(1, 0) }));
    assert_eq!(counts(&alice, &three, false).await["main"], n(2, 1));
    receipt(&alice, &three, &reply, json!({"thread_id": plain})).await;
    let threaded = counts(&alice, &three, true).await;
    assert_eq!(threaded, json!({"main": n(1, 1), "threads": {}}));

    // Alice mutes the room: bob's next message does not count.
    let mute = json!({"actions": [], "conditions": [
        {"kind": "event_match", "key": "room_id", "pattern": three}]});
    alice
        .ok(
            "PUT",
            &format!("pushrules/global/override/{}", encode(&three)),
            mute,
        )
        .await;
    send(
        &bob,
        &three,
        json!({"msgtype": "m.text", "body": "anyone?"}),
    )
    .await;
    assert_eq!(counts(&alice, &three, false).await["main"], n(1, 1));

    // Everything acknowledged survives kill -9.
    h.kill();
    h.restart();
    let alice = Client::login_again(&h, "alice").await;
    assert_eq!(counts(&alice, &three, false).await["main"], n(1, 1));
    assert_eq!(counts(&alice, &two, false).await["main"], n(1, 0));
    let all = alice.ok("GET", "notifications", json!(null)).await;
    assert_eq!(all["notifications"].as_array().map(Vec::len), Some(5));
}

/// Events from another hearth notify like local ones: bob of `b` writes
/// in a room alice of `a` is in; her counts and `/notifications` on `a`
/// show his plain message and his mention.
#[tokio::test]
async fn events_from_another_server_notify() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (room, alice_id, _) = common::rooms::shared_room(&a, &b).await;
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    send(&bob, &room, json!({"msgtype": "m.text", "body": "hi all"})).await;
    let mention = json!({"msgtype": "m.text", "body": "see this",
        "m.mentions": {"user_ids": [alice_id]}});
    let mentioned = send(&bob, &room, mention).await;

    let started = std::time::Instant::now();
    // Two members make a one-to-one room: the plain message notifies too.
    while counts(&alice, &room, false).await["main"] != n(2, 1) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "counts on a: {}\n{}",
            counts(&alice, &room, false).await,
            a.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let highlights = alice
        .ok("GET", "notifications?only=highlight", json!(null))
        .await;
    let listed = highlights["notifications"].as_array().expect("list");
    assert_eq!(listed.len(), 1, "{highlights}");
    assert_eq!(listed[0]["event"]["event_id"], mentioned.as_str());
    assert_eq!(listed[0]["room_id"], room.as_str());
}
