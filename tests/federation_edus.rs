//! EDUs in transactions between real hearth processes: typing, receipts,
//! presence, to-device messages and device list updates are kept for
//! clients; EDUs about another server's users, malformed and unknown EDUs
//! are ignored without failing the transaction. A backlog of receipts
//! built up while a server was down reaches it in one transaction.

mod common;

use common::{
    client::Client,
    rooms::{encode, federation, say, shared_room, user, wait_for_events},
    Hearth, TestCa,
};
use serde_json::{json, Value};

/// Sends `edus` from `from` to `to` in a transaction named `txn`.
async fn send_edus(from: &Hearth, to: &Hearth, txn: &str, edus: Value) {
    let body = json!({"origin": from.server_name, "origin_server_ts": 1, "pdus": [], "edus": edus});
    let uri = format!("/_matrix/federation/v1/send/{txn}");
    let (status, reply) = federation(from, to, "PUT", &uri, Some(body)).await;
    assert_eq!(status, 200, "{reply}\n{}", to.log());
}

#[tokio::test]
async fn edus_are_kept_for_clients_and_checked_against_their_origin() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (room, alice, bob) = shared_room(&a, &b).await;
    let carol = user(&b, "carol");
    let message = say(&a, &room, &alice, "read me").await;
    wait_for_events(&b, &room, std::slice::from_ref(&message), 10).await;

    let device = Client::login(&a, "alice").await.device;
    let ghost = user(&a, "ghost");
    // Only the device that exists gets a message: the others would wait
    // forever for a sync that never comes.
    let to_device = json!({"edu_type": "m.direct_to_device", "content": {
        "sender": bob, "type": "m.room_key_request", "message_id": "m1",
        "messages": {alice.clone(): {device.clone(): {"secret": 1}, "NOSUCHDEVICE": {"secret": 2}},
                     ghost: {"*": {"secret": 3}, "GHOSTDEVICE": {"secret": 4}}}}});
    send_edus(&b, &a, "edus-1", json!([
        {"edu_type": "m.typing", "content": {"room_id": room, "user_id": bob, "typing": true}},
        // Not B's user, and not in the room: ignored.
        {"edu_type": "m.typing", "content": {"room_id": room, "user_id": alice, "typing": true}},
        {"edu_type": "m.typing", "content": {"room_id": room, "user_id": carol, "typing": true}},
        {"edu_type": "m.receipt", "content": {room.clone(): {"m.read": {
            bob.clone(): {"event_ids": [message], "data": {"ts": 1}},
            carol.clone(): {"event_ids": [message], "data": {"ts": 2}}}}}},
        {"edu_type": "m.presence", "content": {"push": [
            {"user_id": bob, "presence": "online", "last_active_ago": 5},
            {"user_id": alice, "presence": "offline", "last_active_ago": 5}]}},
        to_device.clone(),
        {"edu_type": "m.device_list_update", "content": {"user_id": bob, "device_id": "BOBPHONE",
            "stream_id": 3, "prev_id": [2], "deleted": false}},
        // carol shares no room with A's users: nobody there needs her keys.
        {"edu_type": "m.device_list_update", "content": {"user_id": carol, "device_id": "CAROLPC",
            "stream_id": 1, "prev_id": [], "deleted": false}},
        {"edu_type": "org.example.unknown", "content": {"x": 1}},
        {"not": "an edu"},
    ]))
    .await;
    // The same to-device message again, in another transaction: taken once.
    send_edus(&b, &a, "edus-2", json!([to_device])).await;
    // Both transactions are taken in, in order, once the second's
    // to-device message has been looked at: a presence EDU sent with it
    // marks that.
    send_edus(
        &b,
        &a,
        "edus-2b",
        json!([
        {"edu_type": "m.presence", "content": {"push": [
            {"user_id": bob, "presence": "unavailable", "last_active_ago": 5}]}}]),
    )
    .await;
    let bob_path = format!("users/{}/ephemeral", encode(&bob));
    let on_bob = a
        .admin_get_when(&bob_path, |v| v["presence"]["presence"] == "unavailable")
        .await;

    let (status, ephemeral) = a
        .admin_get(&format!("rooms/{}/ephemeral", encode(&room)))
        .await;
    assert_eq!(status, 200, "{ephemeral}");
    assert_eq!(ephemeral["typing"], json!([bob]), "{ephemeral}");
    assert_eq!(
        ephemeral["receipts"],
        json!([["m.read", bob, {"event_ids": [message], "data": {"ts": 1}}]]),
        "{ephemeral}"
    );

    let (_, on_alice) = a
        .admin_get(&format!("users/{}/ephemeral", encode(&alice)))
        .await;
    assert_eq!(
        on_alice["to_device"],
        json!([{"device_id": device, "message": {"sender": bob, "type": "m.room_key_request", "content": {"secret": 1}}}]),
        "{on_alice}"
    );
    assert!(
        on_alice["presence"].is_null(),
        "B cannot speak for alice: {on_alice}"
    );
    assert_eq!(
        on_bob["device_updates"]["BOBPHONE"]["stream_id"], 3,
        "{on_bob}"
    );
    let (_, on_carol) = a
        .admin_get(&format!("users/{}/ephemeral", encode(&carol)))
        .await;
    assert_eq!(on_carol["device_updates"], json!({}), "{on_carol}");

    // Typing stops when told.
    send_edus(
        &b,
        &a,
        "edus-3",
        json!([
        {"edu_type": "m.typing", "content": {"room_id": room, "user_id": bob, "typing": false}}]),
    )
    .await;
    let room_path = format!("rooms/{}/ephemeral", encode(&room));
    a.admin_get_when(&room_path, |v| v["typing"] == json!([]))
        .await;
}

#[tokio::test]
async fn a_backlog_of_receipts_goes_in_one_transaction() {
    const RECEIPTS: usize = 250;
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let mut b = Hearth::start_with(&ca, &[("HEARTH_METRICS__ENABLED", "true")]);
    let (room, _, _) = shared_room(&a, &b).await;
    let alice = Client::login(&a, "alice").await;
    let messages = [
        say(&a, &room, &alice.user, "one").await,
        say(&a, &room, &alice.user, "two").await,
    ];
    wait_for_events(&b, &room, &messages, 10).await;

    b.kill();
    for i in 0..RECEIPTS {
        let event = &messages[i % 2];
        let path = format!("rooms/{}/receipt/m.read/{}", encode(&room), encode(event));
        alice.ok("POST", &path, json!({})).await;
    }
    let (status, depth) = a.admin_get("federation/status").await;
    assert_eq!(status, 200);
    assert!(
        depth["destinations"][0]["queued"].as_u64() >= Some(RECEIPTS as u64),
        "each receipt is queued: {depth}"
    );
    b.restart();
    // B reaching A clears A's backoff for it: A sends at once.
    federation(&b, &a, "GET", "/_matrix/federation/v1/version", None).await;
    let last = &messages[(RECEIPTS - 1) % 2];
    let started = std::time::Instant::now();
    loop {
        let (_, ephemeral) = b
            .admin_get(&format!("rooms/{}/ephemeral", encode(&room)))
            .await;
        let receipts = ephemeral["receipts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if receipts
            .iter()
            .any(|r| r[1] == alice.user && r[2]["event_ids"] == json!([last]))
        {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "alice's last receipt never reached B: {ephemeral}\n{}",
            a.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Counted since B restarted.
    assert_eq!(
        b.metric("hearth_federation_inbound_transaction_seconds_count")
            .await,
        1,
        "{RECEIPTS} receipts of one user in one room are one EDU in one transaction"
    );
}

/// A joined remote user cannot make every member's `/sync` huge through
/// receipts: only `m.read` is kept, cut to its event IDs, `ts` and
/// `thread_id`; and an incremental `/sync` carries only the receipts that
/// changed since its token, not every receipt of the room.
#[tokio::test]
async fn remote_receipts_are_cut_to_the_spec_and_synced_once() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (room, _, bob) = shared_room(&a, &b).await;
    let alice = Client::login(&a, "alice").await;
    let message = say(&a, &room, &alice.user, "read me").await;
    wait_for_events(&b, &room, std::slice::from_ref(&message), 10).await;

    let mut kinds = serde_json::Map::new();
    for n in 0..50 {
        kinds.insert(
            format!("org.example.made_up.{n}"),
            json!({bob.clone(): {"event_ids": [message]}}),
        );
    }
    kinds.insert(
        "m.read".into(),
        json!({bob.clone(): {"event_ids": [message],
        "data": {"ts": 7, "thread_id": "main", "junk": "x".repeat(50_000)}}}),
    );
    send_edus(
        &b,
        &a,
        "receipts-1",
        json!([{"edu_type": "m.receipt", "content": {room.clone(): kinds}}]),
    )
    .await;
    let path = format!("rooms/{}/ephemeral", encode(&room));
    let view = a
        .admin_get_when(&path, |v| {
            v["receipts"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await;
    assert_eq!(
        view["receipts"],
        json!([["m.read", bob, {"event_ids": [message], "data": {"ts": 7, "thread_id": "main"}}]]),
        "{view}"
    );

    // Alice's own receipt changes; her incremental sync names only it.
    let since = alice.ok("GET", "sync", json!(null)).await["next_batch"]
        .as_str()
        .expect("batch")
        .to_owned();
    let receipt = format!(
        "rooms/{}/receipt/m.read/{}",
        encode(&room),
        encode(&message)
    );
    alice.ok("POST", &receipt, json!({})).await;
    let reply = alice
        .sync_until(&since, "alice's receipt", |r| {
            r["rooms"]["join"][&room]["ephemeral"]["events"]
                .as_array()
                .is_some_and(|events| events.iter().any(|e| e["type"] == "m.receipt"))
        })
        .await;
    let events = &reply["rooms"]["join"][&room]["ephemeral"]["events"];
    let receipt = events
        .as_array()
        .and_then(|e| e.iter().find(|e| e["type"] == "m.receipt"))
        .expect("receipt");
    let readers = receipt["content"][&message]["m.read"]
        .as_object()
        .expect("readers");
    assert_eq!(
        readers.keys().collect::<Vec<_>>(),
        [&alice.user],
        "{receipt}"
    );
}

/// Presence is kept only for users who share a room with one of ours, and
/// a status message only up to 1 KiB: a stranger cannot fill memory (or
/// every `/sync`) with made-up users or huge messages.
#[tokio::test]
async fn remote_presence_is_kept_only_for_room_sharers_and_bounded() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (_, _, bob) = shared_room(&a, &b).await;
    let ghost = user(&b, "ghost");
    let long = "é".repeat(5_000);
    send_edus(
        &b,
        &a,
        "presence-1",
        json!([{"edu_type": "m.presence", "content": {"push": [
        {"user_id": ghost, "presence": "online", "last_active_ago": 1},
        {"user_id": bob, "presence": "online", "last_active_ago": 1, "status_msg": long}]}}]),
    )
    .await;
    let bob_path = format!("users/{}/ephemeral", encode(&bob));
    let on_bob = a
        .admin_get_when(&bob_path, |v| v["presence"]["presence"] == "online")
        .await;
    let kept = on_bob["presence"]["status_msg"]
        .as_str()
        .expect("status_msg");
    assert!(
        kept.len() <= 1024 && long.starts_with(kept),
        "{} bytes",
        kept.len()
    );
    let (_, on_ghost) = a
        .admin_get(&format!("users/{}/ephemeral", encode(&ghost)))
        .await;
    assert!(on_ghost["presence"].is_null(), "{on_ghost}");
}

#[tokio::test]
async fn another_server_cannot_fill_a_devices_inbox() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (_, alice, bob) = shared_room(&a, &b).await;
    let device = Client::login(&a, "alice").await.device;
    for batch in 0..11 {
        let edus: Vec<Value> = (0..100)
            .map(|i| {
                json!({"edu_type": "m.direct_to_device", "content": {
                    "sender": bob, "type": "m.room_key", "message_id": format!("m{batch}-{i}"),
                    "messages": {alice.clone(): {device.clone(): {"n": batch * 100 + i}}}}})
            })
            .collect();
        send_edus(&b, &a, &format!("inbox-{batch}"), Value::Array(edus)).await;
    }
    let path = format!("users/{}/ephemeral", encode(&alice));
    let view = a
        .admin_get_when(&path, |v| {
            v["to_device"].as_array().is_some_and(|m| m.len() >= 1000)
        })
        .await;
    // Give the last transaction time to be taken in, then count again.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, view_after) = a.admin_get(&path).await;
    assert_eq!(view["to_device"].as_array().map(Vec::len), Some(1000));
    assert_eq!(view_after["to_device"].as_array().map(Vec::len), Some(1000));
}
