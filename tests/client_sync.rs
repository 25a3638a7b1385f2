//! `/sync` as the spec's "Syncing" section has it, on one real hearth:
//! the `state` block is the state at the start of the timeline (never
//! repeating it), rooms joined or left since the token come with what a
//! client needs, lazy loading sends the members the timeline needs,
//! filters (stored or inline) shape the answer, and read markers and
//! receipts arrive.

mod common;

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

fn batch(reply: &Value) -> String {
    reply["next_batch"].as_str().expect("next_batch").to_owned()
}

async fn send_text(client: &Client<'_>, room: &str, text: &str) -> String {
    let path = format!("rooms/{}/send/m.room.message/{}", encode(room), rand_txn());
    client
        .ok("PUT", &path, json!({"msgtype": "m.text", "body": text}))
        .await["event_id"]
        .as_str()
        .expect("event id")
        .to_owned()
}

async fn set_topic(client: &Client<'_>, room: &str, topic: &str) -> String {
    let path = format!("rooms/{}/state/m.room.topic/", encode(room));
    client.ok("PUT", &path, json!({ "topic": topic })).await["event_id"]
        .as_str()
        .expect("event id")
        .to_owned()
}

fn rand_txn() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `/sync` with query parameters (a filter's JSON URL-encoded).
async fn sync(
    client: &Client<'_>,
    since: Option<&str>,
    filter: Option<Value>,
    extra: &str,
) -> Value {
    let mut query = vec!["timeout=0".to_owned()];
    if let Some(since) = since {
        query.push(format!("since={since}"));
    }
    if let Some(filter) = filter {
        query.push(format!("filter={}", encode(&filter.to_string())));
    }
    if !extra.is_empty() {
        query.push(extra.to_owned());
    }
    client
        .ok("GET", &format!("sync?{}", query.join("&")), json!(null))
        .await
}

fn ids(events: &Value) -> Vec<String> {
    events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

/// The topics in a list of events, in order.
fn topics(events: &Value) -> Vec<String> {
    events
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "m.room.topic")
        .map(|e| e["content"]["topic"].as_str().expect("topic").to_owned())
        .collect()
}

fn limit(n: u64) -> Value {
    json!({"room": {"timeline": {"limit": n}}})
}

#[tokio::test]
async fn state_is_the_state_at_the_timeline_start_and_never_repeats_it() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let room = alice.create_room(json!({})).await;
    set_topic(&alice, &room, "one").await;
    for i in 0..3 {
        send_text(&alice, &room, &format!("m{i}")).await;
    }
    let two = set_topic(&alice, &room, "two").await;

    // Initial, two events: the timeline ends with topic "two"; the state
    // is as it was before the timeline, so topic "one".
    let reply = sync(&alice, None, Some(limit(2)), "").await;
    let entry = &reply["rooms"]["join"][&room];
    assert_eq!(
        ids(&entry["timeline"]["events"]).last(),
        Some(&two),
        "{entry}"
    );
    assert_eq!(entry["timeline"]["limited"], true);
    assert_eq!(topics(&entry["state"]["events"]), ["one"], "{entry}");
    let state_ids = ids(&entry["state"]["events"]);
    for id in ids(&entry["timeline"]["events"]) {
        assert!(!state_ids.contains(&id), "{id} in both state and timeline");
    }
    let since = batch(&reply);

    // A gap: topics "a" then "b", many messages, then "c" in the
    // timeline. The state brings "b" (what held at the timeline start).
    set_topic(&alice, &room, "a").await;
    set_topic(&alice, &room, "b").await;
    for i in 0..5 {
        send_text(&alice, &room, &format!("gap {i}")).await;
    }
    set_topic(&alice, &room, "c").await;
    let reply = sync(&alice, Some(&since), Some(limit(2)), "").await;
    let entry = &reply["rooms"]["join"][&room];
    assert_eq!(entry["timeline"]["limited"], true, "{entry}");
    assert_eq!(topics(&entry["timeline"]["events"]), ["c"], "{entry}");
    assert_eq!(topics(&entry["state"]["events"]), ["b"], "{entry}");
    let since = batch(&reply);

    // Not gapped: everything is in the timeline, nothing in the state.
    set_topic(&alice, &room, "d").await;
    let reply = sync(&alice, Some(&since), Some(limit(5)), "").await;
    let entry = &reply["rooms"]["join"][&room];
    assert_eq!(topics(&entry["timeline"]["events"]), ["d"], "{entry}");
    assert_eq!(entry["state"]["events"], json!([]), "{entry}");
    let since = batch(&reply);

    // full_state: all of it, even with nothing new.
    let reply = sync(&alice, Some(&since), None, "full_state=true").await;
    let state = &reply["rooms"]["join"][&room]["state"]["events"];
    let kinds: Vec<&str> = state
        .as_array()
        .expect("state")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for kind in [
        "m.room.create",
        "m.room.member",
        "m.room.power_levels",
        "m.room.topic",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {state}");
    }
    assert_eq!(topics(state), ["d"]);
}

#[tokio::test]
async fn a_room_joined_since_the_token_comes_whole_from_the_join_on() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice
        .create_room(json!({"preset": "public_chat", "initial_state": [{
            "type": "m.room.history_visibility", "state_key": "",
            "content": {"history_visibility": "joined"}}]}))
        .await;
    send_text(&alice, &room, "before bob").await;
    alice
        .ok(
            "PUT",
            &format!("presence/{}/status", encode(&alice.user)),
            json!({"presence": "online", "status_msg": "here"}),
        )
        .await;
    let since = batch(&sync(&bob, None, None, "set_presence=offline").await);

    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    send_text(&alice, &room, "after bob").await;
    let reply = sync(&bob, Some(&since), None, "set_presence=offline").await;
    let entry = &reply["rooms"]["join"][&room];
    let bodies: Vec<&str> = entry["timeline"]["events"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert_eq!(bodies, ["after bob"], "{entry}");
    // State and timeline together hold the whole room state.
    let held: Vec<(&str, &str)> = [&entry["state"]["events"], &entry["timeline"]["events"]]
        .into_iter()
        .flat_map(|events| events.as_array().expect("events"))
        .filter_map(|e| Some((e["type"].as_str()?, e["state_key"].as_str()?)))
        .collect();
    for needed in [
        ("m.room.create", ""),
        ("m.room.power_levels", ""),
        ("m.room.member", alice.user.as_str()),
        ("m.room.member", bob.user.as_str()),
    ] {
        assert!(held.contains(&needed), "no {needed:?} in {entry}");
    }
    // Alice's presence comes with the room, though it did not change.
    let presence = reply["presence"]["events"].as_array().expect("presence");
    assert!(
        presence
            .iter()
            .any(|p| p["sender"] == alice.user.as_str() && p["content"]["status_msg"] == "here"),
        "{reply}"
    );
}

#[tokio::test]
async fn left_rooms_come_with_their_history_up_to_the_leave() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    let since = batch(&sync(&bob, None, None, "").await);

    // Joined and left within one batch, then the room goes on.
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    send_text(&alice, &room, "while bob was there").await;
    bob.ok("POST", &format!("rooms/{}/leave", encode(&room)), json!({}))
        .await;
    send_text(&alice, &room, "after bob left").await;
    let reply = sync(&bob, Some(&since), None, "").await;
    let entry = &reply["rooms"]["leave"][&room];
    let events = entry["timeline"]["events"].as_array().expect("timeline");
    let last = events.last().expect("events");
    assert_eq!(last["type"], "m.room.member", "{entry}");
    assert_eq!(last["content"]["membership"], "leave");
    assert!(
        events
            .iter()
            .any(|e| e["content"]["body"] == "while bob was there"),
        "{entry}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["content"]["body"] == "after bob left"),
        "{entry}"
    );
    assert!(reply["rooms"]["join"].get(&room).is_none());
    let since = batch(&reply);

    // Banned: in leave, with the ban.
    let room2 = alice.create_room(json!({"preset": "public_chat"})).await;
    bob.ok("POST", &format!("join/{}", encode(&room2)), json!({}))
        .await;
    let since = batch(&sync(&bob, Some(&since), None, "").await);
    alice
        .ok(
            "POST",
            &format!("rooms/{}/ban", encode(&room2)),
            json!({"user_id": bob.user}),
        )
        .await;
    let reply = sync(&bob, Some(&since), None, "").await;
    let last = reply["rooms"]["leave"][&room2]["timeline"]["events"]
        .as_array()
        .and_then(|e| e.last().cloned())
        .unwrap_or_default();
    assert_eq!(last["content"]["membership"], "ban", "{reply}");

    // An initial sync lists left rooms only when the filter asks.
    let plain = sync(&bob, None, None, "").await;
    assert!(plain["rooms"]["leave"].get(&room).is_none(), "{plain}");
    let with_leave = sync(
        &bob,
        None,
        Some(json!({"room": {"include_leave": true}})),
        "",
    )
    .await;
    for left in [&room, &room2] {
        assert!(
            with_leave["rooms"]["leave"].get(left).is_some(),
            "{with_leave}"
        );
    }
}

#[tokio::test]
async fn lazy_loading_sends_the_members_the_timeline_needs() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let carol = Client::login(&h, "carol").await;
    let room = alice
        .create_room(json!({"preset": "public_chat", "name": "named"}))
        .await;
    for who in [&bob, &carol] {
        who.ok("POST", &format!("join/{}", encode(&room)), json!({}))
            .await;
    }
    send_text(&bob, &room, "bob speaks").await;
    let lazy = |redundant: bool| {
        json!({"room": {"timeline": {"limit": 1}, "state": {
            "lazy_load_members": true, "include_redundant_members": redundant}}})
    };
    let members = |entry: &Value| -> Vec<String> {
        let mut keys: Vec<String> = entry["state"]["events"]
            .as_array()
            .expect("state")
            .iter()
            .filter(|e| e["type"] == "m.room.member")
            .map(|e| e["state_key"].as_str().expect("key").to_owned())
            .collect();
        keys.sort();
        keys
    };

    // Initial: bob (the sender) and alice (the syncing user); not carol.
    let reply = sync(&alice, None, Some(lazy(false)), "").await;
    let mut expected = vec![alice.user.clone(), bob.user.clone()];
    expected.sort();
    assert_eq!(members(&reply["rooms"]["join"][&room]), expected);
    let since = batch(&reply);

    // Incremental, bob again: his member event was sent already...
    send_text(&bob, &room, "bob again").await;
    let reply = sync(&alice, Some(&since), Some(lazy(false)), "").await;
    assert_eq!(
        members(&reply["rooms"]["join"][&room]),
        Vec::<String>::new()
    );
    // ...unless the filter asks for redundant members.
    let reply = sync(&alice, Some(&since), Some(lazy(true)), "").await;
    assert_eq!(members(&reply["rooms"]["join"][&room]), [bob.user.as_str()]);
    let since = batch(&reply);

    // Carol speaks for the first time: her member event comes along.
    send_text(&carol, &room, "carol speaks").await;
    let reply = sync(&alice, Some(&since), Some(lazy(false)), "").await;
    assert_eq!(
        members(&reply["rooms"]["join"][&room]),
        [carol.user.as_str()]
    );

    // The lazy-loading fields are booleans, stored or inline.
    for bad in [
        json!({"room": {"state": {"lazy_load_members": "true"}}}),
        json!({"room": {"state": {"lazy_load_members": true, "include_redundant_members": "yes"}}}),
    ] {
        let path = format!("user/{}/filter", encode(&alice.user));
        let (status, reply) = alice.call("POST", &path, bad.clone()).await;
        assert_eq!(
            (status, reply["errcode"].as_str()),
            (400, Some("M_BAD_JSON")),
            "{reply}"
        );
        let query = format!("sync?timeout=0&filter={}", encode(&bad.to_string()));
        let (status, reply) = alice.call("GET", &query, json!(null)).await;
        assert_eq!(
            (status, reply["errcode"].as_str()),
            (400, Some("M_BAD_JSON")),
            "{reply}"
        );
    }
    let (status, reply) = alice
        .call("GET", "sync?filter=%7Bnot%20json", json!(null))
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_NOT_JSON")),
        "{reply}"
    );
}

#[tokio::test]
async fn filters_inline_or_stored_shape_events_and_formats() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let room = alice.create_room(json!({})).await;
    let other = alice.create_room(json!({})).await;
    send_text(&alice, &room, "hello").await;
    set_topic(&alice, &room, "topic").await;

    // Inline: only messages, only one room.
    let filter = json!({"room": {"rooms": [room], "timeline": {"types": ["m.room.message"]}}});
    let reply = sync(&alice, None, Some(filter.clone()), "").await;
    assert!(reply["rooms"]["join"].get(&other).is_none(), "{reply}");
    let timeline = &reply["rooms"]["join"][&room]["timeline"]["events"];
    let kinds: Vec<&str> = timeline
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds, ["m.room.message"], "{timeline}");

    // Stored, with the federation format: PDUs as servers see them.
    let path = format!("user/{}/filter", encode(&alice.user));
    let stored = alice
        .ok(
            "POST",
            &path,
            json!({"event_format": "federation", "room": {"timeline": {"limit": 3}}}),
        )
        .await["filter_id"]
        .as_str()
        .expect("filter id")
        .to_owned();
    let reply = alice
        .ok("GET", &format!("sync?filter={stored}"), json!(null))
        .await;
    let events = reply["rooms"]["join"][&room]["timeline"]["events"]
        .as_array()
        .expect("timeline")
        .clone();
    assert!(!events.is_empty());
    for event in events {
        for field in [
            "auth_events",
            "prev_events",
            "hashes",
            "signatures",
            "room_id",
        ] {
            assert!(event.get(field).is_some(), "no {field} in {event}");
        }
    }
}

#[tokio::test]
async fn read_markers_receipts_and_room_account_data_reach_sync() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let event = send_text(&alice, &room, "read me").await;
    let since = batch(&sync(&bob, None, None, "").await);
    let alice_since = batch(&sync(&alice, None, None, "").await);

    bob.ok(
        "POST",
        &format!("rooms/{}/read_markers", encode(&room)),
        json!({"m.fully_read": event, "m.read": event, "m.read.private": event}),
    )
    .await;
    // Bob: his read marker (room account data) and both his receipts.
    let reply = sync(&bob, Some(&since), None, "").await;
    let entry = &reply["rooms"]["join"][&room];
    let data = entry["account_data"]["events"]
        .as_array()
        .expect("account data");
    assert!(
        data.iter()
            .any(|d| d["type"] == "m.fully_read" && d["content"]["event_id"] == event.as_str()),
        "{entry}"
    );
    let receipts = entry["ephemeral"]["events"]
        .as_array()
        .expect("ephemeral")
        .iter()
        .find(|e| e["type"] == "m.receipt")
        .cloned()
        .unwrap_or_default();
    assert!(
        receipts["content"][&event]["m.read"]
            .get(&bob.user)
            .is_some(),
        "{entry}"
    );
    assert!(
        receipts["content"][&event]["m.read.private"]
            .get(&bob.user)
            .is_some(),
        "{entry}"
    );
    // An initial sync has the marker too.
    let reply = sync(&bob, None, None, "").await;
    let data = &reply["rooms"]["join"][&room]["account_data"]["events"];
    assert!(data.to_string().contains("m.fully_read"), "{reply}");

    // Alice: bob's public receipt, not his private one.
    let reply = sync(&alice, Some(&alice_since), None, "").await;
    let ephemeral = reply["rooms"]["join"][&room]["ephemeral"].to_string();
    assert!(ephemeral.contains("m.read\""), "{reply}");
    assert!(!ephemeral.contains("m.read.private"), "{reply}");
}

/// A typing notification that lapses is a change: a long-polling `/sync`
/// wakes for it and shows the user no longer typing, though nothing else
/// happened in the room.
#[tokio::test]
async fn a_lapsed_typing_notification_reaches_sync() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let since = batch(&bob.ok("GET", "sync", json!(null)).await);
    let path = format!("rooms/{}/typing/{}", encode(&room), encode(&alice.user));
    alice
        .ok("PUT", &path, json!({"typing": true, "timeout": 1500}))
        .await;
    let typing = |reply: &Value| -> Option<Value> {
        reply["rooms"]["join"][&room]["ephemeral"]["events"]
            .as_array()?
            .iter()
            .find(|e| e["type"] == "m.typing")
            .map(|e| e["content"]["user_ids"].clone())
    };
    let reply = bob
        .sync_until(&since, "alice typing", |r| {
            typing(r) == Some(json!([alice.user]))
        })
        .await;
    let since = batch(&reply);
    // One long poll, woken by the lapse alone.
    let started = std::time::Instant::now();
    let reply = bob
        .ok(
            "GET",
            &format!("sync?since={since}&timeout=10000"),
            json!(null),
        )
        .await;
    let (_, view) = h
        .admin_get(&format!("rooms/{}/ephemeral", encode(&room)))
        .await;
    assert_eq!(typing(&reply), Some(json!([])), "{since} {reply} {view}");
    assert!(started.elapsed().as_secs() < 8, "woken late: {reply}");
}
