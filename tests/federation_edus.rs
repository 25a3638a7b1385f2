//! EDUs in transactions between real hearth processes: typing, receipts,
//! presence, to-device messages and device list updates are kept for
//! clients; EDUs about another server's users, malformed and unknown EDUs
//! are ignored without failing the transaction.

mod common;

use common::{
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

    let to_device = json!({"edu_type": "m.direct_to_device", "content": {
        "sender": bob, "type": "m.room_key_request", "message_id": "m1",
        "messages": {alice.clone(): {"DEVICE1": {"secret": 1}}}}});
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
        {"edu_type": "org.example.unknown", "content": {"x": 1}},
        {"not": "an edu"},
    ]))
    .await;
    // The same to-device message again, in another transaction: taken once.
    send_edus(&b, &a, "edus-2", json!([to_device])).await;

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
        json!([{"device_id": "DEVICE1", "message": {"sender": bob, "type": "m.room_key_request", "content": {"secret": 1}}}]),
        "{on_alice}"
    );
    assert!(
        on_alice["presence"].is_null(),
        "B cannot speak for alice: {on_alice}"
    );
    let (_, on_bob) = a
        .admin_get(&format!("users/{}/ephemeral", encode(&bob)))
        .await;
    assert_eq!(on_bob["presence"]["presence"], "online", "{on_bob}");
    assert_eq!(
        on_bob["device_updates"]["BOBPHONE"]["stream_id"], 3,
        "{on_bob}"
    );

    // Typing stops when told.
    send_edus(
        &b,
        &a,
        "edus-3",
        json!([
        {"edu_type": "m.typing", "content": {"room_id": room, "user_id": bob, "typing": false}}]),
    )
    .await;
    let (_, ephemeral) = a
        .admin_get(&format!("rooms/{}/ephemeral", encode(&room)))
        .await;
    assert_eq!(ephemeral["typing"], json!([]), "{ephemeral}");
}
