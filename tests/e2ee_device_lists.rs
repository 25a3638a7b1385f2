//! Device lists as other servers and clients follow them, between real
//! hearth processes: each `m.device_list_update` names the update it
//! follows (`prev_id`), with the stream ID `GET /user/devices` reports,
//! so a server holding the previous one applies it without asking for
//! the whole list again (Synapse resyncs on every empty `prev_id`);
//! keys that did not change are not announced; a signed device is a
//! device list update, and so is a deleted one; `/keys/changes` lists
//! who started and stopped sharing a room, as `/sync` does; malformed
//! keys are refused whole, and no user signs their signature into
//! another's keys; a fallback key handed out is reported used until the
//! device replaces it.

mod common;

use common::{
    client::{Client, PASSWORD},
    rooms::{encode, federation, shared_room},
    Hearth, TestCa,
};
use serde_json::{json, Value};

/// Bob's server's record of alice's device updates, once `ready` holds.
async fn updates_when(b: &Hearth, alice: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let path = format!("users/{}/ephemeral", encode(alice));
    b.admin_get_when(&path, |body| ready(&body["device_updates"]))
        .await["device_updates"]
        .clone()
}

#[tokio::test]
async fn device_list_updates_chain_and_match_the_device_list() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let _bob = Client::login(&b, "bob").await;
    shared_room(&a, &b).await;
    let device = alice.device.clone();

    alice
        .ok(
            "POST",
            "keys/upload",
            json!({"device_keys": alice.device_keys("curve-1")}),
        )
        .await;
    let first = updates_when(&b, &alice.user, |u| u[&device]["keys"].is_object()).await;
    let first_id = first[&device]["stream_id"].as_u64().expect("stream_id");

    // The same keys again (clients re-upload on start): nothing to say.
    alice
        .ok(
            "POST",
            "keys/upload",
            json!({"device_keys": alice.device_keys("curve-1")}),
        )
        .await;
    // New keys: the update names the first as the one it follows.
    alice
        .ok(
            "POST",
            "keys/upload",
            json!({"device_keys": alice.device_keys("curve-2")}),
        )
        .await;
    let second = updates_when(&b, &alice.user, |u| {
        u[&device]["keys"]["keys"][format!("curve25519:{device}")] == "curve-2"
    })
    .await;
    let second_id = second[&device]["stream_id"].as_u64().expect("stream_id");
    assert!(second_id > first_id, "{first} then {second}");
    assert_eq!(second[&device]["prev_id"], json!([first_id]), "{second}");

    // The device list names the latest update, as the chain does.
    let uri = format!(
        "/_matrix/federation/v1/user/devices/{}",
        encode(&alice.user)
    );
    let (status, list) = federation(&b, &a, "GET", &uri, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["stream_id"], second_id, "{list}");

    // Signing her own device (as a self-signing key does) changes its
    // keys: a device list update that follows the second.
    let signed = json!({alice.user.clone(): {device.clone(): {
        "signatures": {alice.user.clone(): {"ed25519:self-signing": "sig"}}}}});
    alice.ok("POST", "keys/signatures/upload", signed).await;
    let third = updates_when(&b, &alice.user, |u| {
        u[&device]["keys"]["signatures"][&alice.user]["ed25519:self-signing"] == "sig"
    })
    .await;
    assert_eq!(third[&device]["prev_id"], json!([second_id]), "{third}");
    let third_id = third[&device]["stream_id"].as_u64().expect("stream_id");

    // A second device with keys, then deleted: the other server is told,
    // and the update follows the last one.
    let phone = Client::login_again(&a, "alice").await;
    phone
        .ok(
            "POST",
            "keys/upload",
            json!({"device_keys": phone.device_keys("phone")}),
        )
        .await;
    let with_phone = updates_when(&b, &alice.user, |u| u[&phone.device]["keys"].is_object()).await;
    let phone_id = with_phone[&phone.device]["stream_id"]
        .as_u64()
        .expect("stream_id");
    assert_eq!(
        with_phone[&phone.device]["prev_id"],
        json!([third_id]),
        "{with_phone}"
    );
    let devices = json!({"devices": [phone.device]});
    let (status, challenge) = alice.call("POST", "delete_devices", devices.clone()).await;
    assert_eq!(status, 401, "{challenge}");
    let mut confirmed = json!({"auth": {"type": "m.login.password", "password": PASSWORD,
        "session": challenge["session"], "identifier": {"type": "m.id.user", "user": alice.user}}});
    confirmed["devices"] = devices["devices"].clone();
    alice.ok("POST", "delete_devices", confirmed).await;
    let gone = updates_when(&b, &alice.user, |u| u[&phone.device]["deleted"] == true).await;
    assert_eq!(gone[&phone.device]["prev_id"], json!([phone_id]), "{gone}");
}

#[tokio::test]
async fn keys_changes_lists_who_started_and_stopped_sharing() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let carol = Client::login(&a, "carol").await;
    let since = |reply: Value| reply["next_batch"].as_str().expect("batch").to_owned();
    let room = alice
        .ok("POST", "createRoom", json!({"invite": [carol.user]}))
        .await["room_id"]
        .as_str()
        .expect("room")
        .to_owned();
    let before_join = since(alice.ok("GET", "sync", json!(null)).await);
    carol
        .ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let after_join = since(alice.ok("GET", "sync", json!(null)).await);
    carol
        .ok("POST", &format!("rooms/{}/leave", encode(&room)), json!({}))
        .await;
    let after_leave = since(alice.ok("GET", "sync", json!(null)).await);

    let changes = |from: &str, to: &str| format!("keys/changes?from={from}&to={to}");
    let joined = alice
        .ok("GET", &changes(&before_join, &after_join), json!(null))
        .await;
    assert_eq!(joined, json!({"changed": [carol.user], "left": []}));
    let left = alice
        .ok("GET", &changes(&after_join, &after_leave), json!(null))
        .await;
    assert_eq!(left, json!({"changed": [], "left": [carol.user]}));
}

#[tokio::test]
async fn malformed_keys_are_refused_and_none_kept() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let mut no_algorithms = alice.device_keys("curve-1");
    no_algorithms["algorithms"] = json!("m.megolm.v1.aes-sha2");
    let mut bad_key = alice.device_keys("curve-1");
    bad_key["keys"] = json!({"curve25519:X": 5});
    let bad_uploads = [
        json!({"device_keys": no_algorithms}),
        json!({"device_keys": bad_key}),
        json!({"device_keys": alice.device_keys("curve-1"), "one_time_keys": {"nocolon": "k"}}),
        json!({"device_keys": alice.device_keys("curve-1"),
               "one_time_keys": {"signed_curve25519:AAAA": {"key": "k"}}}),
        json!({"fallback_keys": {"signed_curve25519:AAAB": ["not", "a", "key"]}}),
    ];
    for body in bad_uploads {
        let (status, reply) = alice.call("POST", "keys/upload", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {reply}");
        assert_eq!(reply["errcode"], "M_BAD_JSON", "{body} -> {reply}");
    }
    let query = json!({"device_keys": {alice.user.clone(): []}});
    let keys = alice.ok("POST", "keys/query", query).await;
    assert_eq!(keys["device_keys"][&alice.user], json!({}), "{keys}");

    let (status, reply) = alice
        .call(
            "POST",
            "keys/device_signing/upload",
            json!({"master_key": {
            "user_id": alice.user, "usage": ["self_signing"], "keys": {"ed25519:m": "m"}}}),
        )
        .await;
    assert_eq!(status, 400, "a master key of another usage: {reply}");

    // Another user's signature of alice's device is kept for its signer,
    // never merged into the keys everyone is given.
    alice
        .ok(
            "POST",
            "keys/upload",
            json!({"device_keys": alice.device_keys("curve-1")}),
        )
        .await;
    let mallory = Client::login(&a, "mallory").await;
    let forged = json!({alice.user.clone(): {alice.device.clone(): {
        "signatures": {mallory.user.clone(): {"ed25519:forged": "sig"}}}}});
    mallory.ok("POST", "keys/signatures/upload", forged).await;
    let query = json!({"device_keys": {alice.user.clone(): []}});
    let keys = alice.ok("POST", "keys/query", query).await;
    let signers = &keys["device_keys"][&alice.user][&alice.device]["signatures"];
    assert!(signers.get(&mallory.user).is_none(), "{keys}");
}

/// Once a claim hands out a device's fallback key, /sync stops listing it
/// in `device_unused_fallback_key_types`, so the client uploads a new one
/// (and the old one is not given out forever); a new one is listed again.
#[tokio::test]
async fn a_claimed_fallback_key_is_reported_used_until_replaced() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&a, "bob").await;
    let fallback = |id: &str| {
        json!({"fallback_keys": {format!("signed_curve25519:{id}"):
            {"key": id, "fallback": true, "signatures": {}}}})
    };
    let unused = |reply: Value| reply["device_unused_fallback_key_types"].clone();
    alice.ok("POST", "keys/upload", fallback("F1")).await;
    let reply = alice.ok("GET", "sync", json!(null)).await;
    assert_eq!(unused(reply), json!(["signed_curve25519"]));

    let claim =
        json!({"one_time_keys": {alice.user.clone(): {alice.device.clone(): "signed_curve25519"}}});
    let claimed = bob.ok("POST", "keys/claim", claim.clone()).await;
    let keys = &claimed["one_time_keys"][&alice.user][&alice.device];
    assert_eq!(keys["signed_curve25519:F1"]["key"], "F1", "{claimed}");
    let reply = alice.ok("GET", "sync", json!(null)).await;
    assert_eq!(unused(reply), json!([]));

    alice.ok("POST", "keys/upload", fallback("F2")).await;
    let reply = alice.ok("GET", "sync", json!(null)).await;
    assert_eq!(unused(reply), json!(["signed_curve25519"]));
    let claimed = bob.ok("POST", "keys/claim", claim).await;
    let keys = &claimed["one_time_keys"][&alice.user][&alice.device];
    assert_eq!(keys["signed_curve25519:F2"]["key"], "F2", "{claimed}");
}

/// Logging out removes the device: its keys leave key queries, so other
/// users' clients stop encrypting for a device that is gone.
#[tokio::test]
async fn a_logged_out_device_leaves_the_key_queries() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&a, "bob").await;
    let phone = Client::login_again(&a, "alice").await;
    for client in [&alice, &phone] {
        client
            .ok(
                "POST",
                "keys/upload",
                json!({"device_keys": client.device_keys("k")}),
            )
            .await;
    }
    let query = json!({"device_keys": {alice.user.clone(): []}});
    let devices = |keys: &Value| -> Vec<String> {
        let mut ids: Vec<String> = keys["device_keys"][&alice.user]
            .as_object()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    };
    let mut both = vec![alice.device.clone(), phone.device.clone()];
    both.sort();
    assert_eq!(
        devices(&bob.ok("POST", "keys/query", query.clone()).await),
        both
    );
    phone.ok("POST", "logout", json!({})).await;
    let keys = bob.ok("POST", "keys/query", query).await;
    assert_eq!(devices(&keys), vec![alice.device.clone()], "{keys}");
}
