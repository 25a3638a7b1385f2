//! End-to-end encryption plumbing between two real hearths: device and
//! one-time keys uploaded on one server are queried and claimed from the
//! other over federation, to-device messages cross servers exactly once
//! and are dropped once acknowledged, and a key change shows up in the
//! other user's `/sync` device lists. The key material is opaque to
//! servers, so made-up keys do.

mod common;

use std::time::{Duration, Instant};

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

/// `inviter` makes a room and `invitee` (of another server) joins it.
async fn share_a_room(inviter: &Client<'_>, invitee: &Client<'_>) -> String {
    let room = inviter
        .ok("POST", "createRoom", json!({"invite": [invitee.user]}))
        .await["room_id"]
        .as_str()
        .expect("room")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, reply) = invitee
            .call("POST", &format!("join/{}", encode(&room)), json!({}))
            .await;
        if status == 200 {
            return room;
        }
        assert!(Instant::now() < deadline, "could not join: {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The curve25519 key of `device` of `user` in a key query's answer.
fn curve<'v>(keys: &'v Value, user: &str, device: &str) -> &'v Value {
    &keys["device_keys"][user][device]["keys"][format!("curve25519:{device}")]
}

#[tokio::test]
async fn keys_and_to_device_messages_cross_servers() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;

    // A shared room, so device list changes reach bob's server.
    share_a_room(&alice, &bob).await;
    let bob_since = bob.ok("GET", "sync", json!(null)).await["next_batch"]
        .as_str()
        .expect("batch")
        .to_owned();

    // Alice's device uploads its keys: two one-time keys and a fallback key.
    let counts = alice
        .ok("POST", "keys/upload", json!({
            "device_keys": alice.device_keys("curve-1"),
            "one_time_keys": {"signed_curve25519:AAAA": {"key": "otk-a", "signatures": {}},
                              "signed_curve25519:AAAB": {"key": "otk-b", "signatures": {}}},
            "fallback_keys": {"signed_curve25519:FFFF": {"key": "fallback", "fallback": true, "signatures": {}}},
        }))
        .await;
    assert_eq!(
        counts["one_time_key_counts"]["signed_curve25519"], 2,
        "{counts}"
    );
    // Uploading someone else's device keys is refused.
    let (status, reply) = bob
        .call(
            "POST",
            "keys/upload",
            json!({"device_keys": alice.device_keys("x")}),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{reply}"
    );

    // Bob's server learns of the change; bob's sync lists alice as changed.
    bob.sync_until(&bob_since, "device list change", |r| {
        r["device_lists"]["changed"]
            .as_array()
            .is_some_and(|c| c.iter().any(|u| u == &json!(alice.user)))
    })
    .await;

    // Bob queries alice's keys through federation.
    let keys = bob
        .ok(
            "POST",
            "keys/query",
            json!({"device_keys": {alice.user.clone(): []}}),
        )
        .await;
    assert_eq!(
        keys["device_keys"][&alice.user][&alice.device]["keys"]
            [format!("curve25519:{}", alice.device)],
        "curve-1",
        "{keys}"
    );
    assert_eq!(keys["failures"], json!({}), "{keys}");

    // Claims take each one-time key once, then the fallback key.
    let claim =
        json!({"one_time_keys": {alice.user.clone(): {alice.device.clone(): "signed_curve25519"}}});
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let reply = bob.ok("POST", "keys/claim", claim.clone()).await;
        let key = reply["one_time_keys"][&alice.user][&alice.device]
            .as_object()
            .cloned()
            .unwrap_or_default();
        claimed.extend(key.values().map(|k| k["key"].clone()));
    }
    assert_eq!(claimed, [json!("otk-a"), json!("otk-b"), json!("fallback")]);
    let alice_sync = alice.ok("GET", "sync", json!(null)).await;
    assert_eq!(
        alice_sync["device_one_time_keys_count"],
        json!({}),
        "{alice_sync}"
    );
    // The fallback key was handed out: the client should replace it.
    assert_eq!(alice_sync["device_unused_fallback_key_types"], json!([]));
    let alice_since = alice_sync["next_batch"].as_str().expect("batch").to_owned();

    // A to-device message from bob reaches alice's device once, even when
    // bob's client retries the transaction.
    let message =
        json!({"messages": {alice.user.clone(): {alice.device.clone(): {"secret": "hello"}}}});
    for _ in 0..2 {
        bob.ok("PUT", "sendToDevice/m.test.secret/txn1", message.clone())
            .await;
    }
    let got = alice
        .sync_until(&alice_since, "to-device message", |r| {
            r["to_device"]["events"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
        })
        .await;
    let events = got["to_device"]["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{got}");
    assert_eq!(
        events[0],
        json!({"sender": bob.user, "type": "m.test.secret", "content": {"secret": "hello"}})
    );
    // Acknowledged by syncing past it: gone.
    let next = got["next_batch"].as_str().expect("batch");
    let after = alice
        .ok("GET", &format!("sync?since={next}&timeout=0"), json!(null))
        .await;
    assert_eq!(after["to_device"]["events"], json!([]), "{after}");

    // `*` reaches every device of the user.
    let phone = Client::login_again(&a, "alice").await;
    bob.ok(
        "PUT",
        "sendToDevice/m.test.secret/txn2",
        json!({"messages": {alice.user.clone(): {"*": {"n": 2}}}}),
    )
    .await;
    for device in [&alice, &phone] {
        device
            .sync_until(next, "broadcast", |r| {
                r["to_device"]["events"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|m| m["content"]["n"] == 2))
            })
            .await;
    }

    // Over federation, alice's server lists her devices with their keys.
    let (status, devices) = common::rooms::federation(
        &b,
        &a,
        "GET",
        &format!(
            "/_matrix/federation/v1/user/devices/{}",
            encode(&alice.user)
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{devices}");
    assert_eq!(
        devices["devices"].as_array().map(Vec::len),
        Some(2),
        "{devices}"
    );
}

/// Servers that do not answer cost a key query their timeout (10 s) once,
/// however many they are: they are asked at once, and named in
/// `failures`; what the others answered is still there.
#[tokio::test]
async fn unresponsive_servers_are_asked_at_once_and_reported() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (c, d) = (Hearth::start(&ca), Hearth::start(&ca));
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    alice
        .ok(
            "POST",
            "keys/upload",
            json!({"device_keys": alice.device_keys("curve-1")}),
        )
        .await;
    // Their servers' keys are known before they stop answering.
    let (carol, dave) = (
        Client::login(&c, "carol").await,
        Client::login(&d, "dave").await,
    );
    for user in [&carol.user, &dave.user] {
        let keys = bob
            .ok(
                "POST",
                "keys/query",
                json!({"device_keys": {user.clone(): []}}),
            )
            .await;
        assert_eq!(keys["failures"], json!({}), "{keys}");
    }
    c.freeze();
    d.freeze();
    let started = Instant::now();
    let keys = bob
        .ok(
            "POST",
            "keys/query",
            json!({"device_keys": {alice.user.clone(): [], carol.user.clone(): [], dave.user.clone(): []}}),
        )
        .await;
    let took = started.elapsed();
    c.thaw();
    d.thaw();
    assert_eq!(
        keys["device_keys"][&alice.user][&alice.device]["keys"]
            [format!("curve25519:{}", alice.device)],
        "curve-1",
        "{keys}"
    );
    for server in [&c.server_name, &d.server_name] {
        assert!(keys["failures"][server].is_object(), "{keys}");
    }
    assert!(
        took < Duration::from_secs(18),
        "asked one after another: {took:?}"
    );
}

/// Keys of a user sharing a room are kept: asked again, they come from
/// bob's server while carol's is down; a device list update from carol's
/// server outdates them, and the next query asks again.
#[tokio::test]
async fn kept_keys_answer_while_the_server_is_down_until_an_update() {
    let ca = TestCa::new();
    let b = Hearth::start(&ca);
    let c = Hearth::start(&ca);
    let bob = Client::login(&b, "bob").await;
    let carol = Client::login(&c, "carol").await;
    share_a_room(&bob, &carol).await;
    let since = |reply: Value| reply["next_batch"].as_str().expect("batch").to_owned();
    let carol_changed = |r: &Value| {
        r["device_lists"]["changed"]
            .as_array()
            .is_some_and(|c| c.iter().any(|u| u == &json!(carol.user)))
    };
    let before = since(bob.ok("GET", "sync", json!(null)).await);
    carol
        .ok(
            "POST",
            "keys/upload",
            json!({"device_keys": carol.device_keys("curve-c1")}),
        )
        .await;
    // Asked once bob's server has the update: an update after the answer
    // would outdate it.
    let after = since(bob.sync_until(&before, "carol's keys", carol_changed).await);
    let query = json!({"device_keys": {carol.user.clone(): []}});
    let keys = bob.ok("POST", "keys/query", query.clone()).await;
    assert_eq!(
        curve(&keys, &carol.user, &carol.device),
        "curve-c1",
        "{keys}"
    );

    c.freeze();
    let started = Instant::now();
    let kept = bob.ok("POST", "keys/query", query.clone()).await;
    let took = started.elapsed();
    c.thaw();
    assert_eq!(kept["failures"], json!({}), "{kept}");
    assert_eq!(kept["device_keys"], keys["device_keys"]);
    assert!(
        took < Duration::from_secs(5),
        "asked the frozen server: {took:?}"
    );

    // A second device of carol's: her server tells bob's, which asks again.
    let second = Client::login_again(&c, "carol").await;
    second
        .ok(
            "POST",
            "keys/upload",
            json!({"device_keys": second.device_keys("curve-c2")}),
        )
        .await;
    bob.sync_until(&after, "carol's new device", carol_changed)
        .await;
    let keys = bob.ok("POST", "keys/query", query).await;
    assert_eq!(
        curve(&keys, &carol.user, &carol.device),
        "curve-c1",
        "{keys}"
    );
    assert_eq!(
        curve(&keys, &carol.user, &second.device),
        "curve-c2",
        "{keys}"
    );
}

/// Alice verifies bob, of another server: her signature of his master key
/// stays on her server, where her queries show it and others' do not, and
/// her devices are told bob changed. A block without her signature is
/// refused in `failures`.
#[tokio::test]
async fn a_signature_of_a_remote_users_key_is_kept_for_its_signer() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let dave = Client::login(&a, "dave").await;
    let bob = Client::login(&b, "bob").await;
    share_a_room(&alice, &bob).await;
    let master = json!({"user_id": bob.user, "usage": ["master"],
                        "keys": {"ed25519:BOBMASTER": "BOBMASTER"}});
    bob.ok(
        "POST",
        "keys/device_signing/upload",
        json!({"master_key": master}),
    )
    .await;
    let since = alice.ok("GET", "sync", json!(null)).await["next_batch"]
        .as_str()
        .expect("batch")
        .to_owned();
    let query = json!({"device_keys": {bob.user.clone(): []}});

    let mut signed = master.clone();
    signed["signatures"] = json!({alice.user.clone(): {"ed25519:ALICEUSK": "alice-sig"}});
    let reply = alice
        .ok(
            "POST",
            "keys/signatures/upload",
            json!({bob.user.clone(): {"BOBMASTER": signed}}),
        )
        .await;
    assert_eq!(reply["failures"], json!({}), "{reply}");
    alice
        .sync_until(&since, "bob changed", |r| {
            r["device_lists"]["changed"]
                .as_array()
                .is_some_and(|c| c.iter().any(|u| u == &json!(bob.user)))
        })
        .await;
    let keys = alice.ok("POST", "keys/query", query.clone()).await;
    let signatures = &keys["master_keys"][&bob.user]["signatures"];
    assert_eq!(
        signatures[&alice.user]["ed25519:ALICEUSK"], "alice-sig",
        "{keys}"
    );
    let keys = dave.ok("POST", "keys/query", query).await;
    assert!(keys["master_keys"][&bob.user].is_object(), "{keys}");
    assert!(
        keys["master_keys"][&bob.user]["signatures"][&alice.user].is_null(),
        "shown to another user: {keys}"
    );

    let reply = alice
        .ok(
            "POST",
            "keys/signatures/upload",
            json!({bob.user.clone(): {"BOBMASTER": master}}),
        )
        .await;
    assert_eq!(
        reply["failures"][&bob.user]["BOBMASTER"]["errcode"], "M_INVALID_PARAM",
        "{reply}"
    );
}

/// A server answers a key query or claim for its own users only: what it
/// says of anyone else's (here alice's, a user of A) is dropped.
#[tokio::test]
async fn a_server_answering_for_others_users_is_not_believed() {
    let (ca, dns) = (TestCa::new(), common::dns::TestDns::start());
    let (key, value) = dns.env();
    let a = Hearth::start(&ca);
    let b = Hearth::start_with(&ca, &[(key, &value)]);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    let web = common::web::TestWeb::start(&ca);
    dns.add_ip("mallory.hearth.test", web.addr.ip());
    web.set(
        "/.well-known/matrix/server",
        common::web::Canned::json(r#"{"m.server": "mallory.hearth.test:443"}"#),
    );
    let mallory = "@mallory:mallory.hearth.test";
    let keys = |user: &str| json!({"DEVICE": {"user_id": user, "device_id": "DEVICE", "keys": {"curve25519:DEVICE": "forged"}}});
    let answer = json!({
        "device_keys": {mallory: keys(mallory), alice.user.clone(): keys(&alice.user)},
        "one_time_keys": {mallory: {"DEVICE": {"signed_curve25519:A": {"key": "m"}}},
                          alice.user.clone(): {"DEVICE": {"signed_curve25519:A": {"key": "forged"}}}},
    });
    for path in ["query", "claim"] {
        web.set(
            &format!("/_matrix/federation/v1/user/keys/{path}"),
            common::web::Canned::json(&answer.to_string()),
        );
    }
    let reply = bob
        .ok("POST", "keys/query", json!({"device_keys": {mallory: []}}))
        .await;
    assert_eq!(curve(&reply, mallory, "DEVICE"), "forged", "{reply}");
    assert!(reply["device_keys"].get(&alice.user).is_none(), "{reply}");
    let reply = bob
        .ok(
            "POST",
            "keys/claim",
            json!({"one_time_keys": {mallory: {"DEVICE": "signed_curve25519"}}}),
        )
        .await;
    assert!(reply["one_time_keys"][mallory].is_object(), "{reply}");
    assert!(reply["one_time_keys"].get(&alice.user).is_none(), "{reply}");
}

/// A user who starts sharing a room with ours appears in their
/// `device_lists.changed`, both ways and across servers (else the sender's
/// client never fetches the joiner's devices, and the joiner cannot
/// decrypt what is sent after their join); one who no longer shares any
/// room appears in `left`.
#[tokio::test]
async fn users_who_start_sharing_a_room_are_listed_as_changed() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let carol = Client::login(&a, "carol").await;
    let bob = Client::login(&b, "bob").await;
    let since = |reply: Value| reply["next_batch"].as_str().expect("batch").to_owned();
    let alice_since = since(alice.ok("GET", "sync", json!(null)).await);
    let bob_since = since(bob.ok("GET", "sync", json!(null)).await);
    let listed = |reply: &Value, field: &str, user: &str| {
        reply["device_lists"][field]
            .as_array()
            .is_some_and(|users| users.iter().any(|u| u == user))
    };

    // Bob (another server) joins alice's room: each sees the other.
    let room = share_a_room(&alice, &bob).await;
    let reply = alice
        .sync_until(&alice_since, "bob as changed", |r| {
            listed(r, "changed", &bob.user)
        })
        .await;
    let alice_since = since(reply);
    bob.sync_until(&bob_since, "alice as changed", |r| {
        listed(r, "changed", &alice.user)
    })
    .await;

    // Carol (alice's server) joins too.
    let carol_since = since(carol.ok("GET", "sync", json!(null)).await);
    alice.invite(&room, &carol.user).await;
    carol
        .ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let reply = alice
        .sync_until(&alice_since, "carol as changed", |r| {
            listed(r, "changed", &carol.user)
        })
        .await;
    let alice_since = since(reply);
    carol
        .sync_until(&carol_since, "alice and bob as changed", |r| {
            listed(r, "changed", &alice.user) && listed(r, "changed", &bob.user)
        })
        .await;

    // Carol leaves: she shares no room with alice any more.
    carol
        .ok("POST", &format!("rooms/{}/leave", encode(&room)), json!({}))
        .await;
    let reply = alice
        .sync_until(&alice_since, "carol as left", |r| {
            listed(r, "left", &carol.user)
        })
        .await;
    assert!(!listed(&reply, "changed", &carol.user), "{reply}");
    let alice_since = since(reply);

    // Alice leaves: bob, still in the room, shares none with her now.
    alice
        .ok("POST", &format!("rooms/{}/leave", encode(&room)), json!({}))
        .await;
    alice
        .sync_until(&alice_since, "bob as left", |r| {
            listed(r, "left", &bob.user)
        })
        .await;
}
