//! Server-side key backups over a real process: versions created, read,
//! updated and deleted; keys stored by the spec's "better copy" rules at
//! each of the three scopes, read back, counted and tagged; a stale
//! version refused with the current one named; nothing shown to another
//! user; everything acknowledged still there after `kill -9`. And Element's
//! "secure backup" through its own library (matrix-js-sdk): a new device
//! reads encrypted history once it restores the backup.

mod common;

use std::time::Duration;

use common::{
    client::{Client, PASSWORD},
    js,
    rooms::encode,
    Hearth, TestCa,
};
use serde_json::{json, Value};

const ALGORITHM: &str = "m.megolm_backup.v1.curve25519-aes-sha2";

fn key(index: u64, forwards: u64, verified: bool, text: &str) -> Value {
    json!({
        "first_message_index": index,
        "forwarded_count": forwards,
        "is_verified": verified,
        "session_data": {"ephemeral": "e", "ciphertext": text, "mac": "m"},
    })
}

#[tokio::test]
async fn keys_are_backed_up_by_the_specs_rules_and_survive_kill_9() {
    let ca = TestCa::new();
    let mut h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;

    let (status, reply) = alice.call("GET", "room_keys/version", json!(null)).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND")),
        "{reply}"
    );
    let (status, reply) = alice
        .call(
            "POST",
            "room_keys/version",
            json!({"algorithm": "m.other", "auth_data": {}}),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM"))
    );
    let auth_data = json!({"public_key": "abc", "signatures": {}});
    let created = alice
        .ok(
            "POST",
            "room_keys/version",
            json!({"algorithm": ALGORITHM, "auth_data": auth_data}),
        )
        .await;
    let version = created["version"].as_str().expect("version").to_owned();
    let info = alice.ok("GET", "room_keys/version", json!(null)).await;
    assert_eq!(info["version"], version.as_str());
    assert_eq!(info["auth_data"], auth_data);
    assert_eq!(info["count"], 0);

    let room = "!room:example.org";
    let session = "sess/ion+1";
    let one = |session: &str| {
        format!(
            "room_keys/keys/{}/{}?version={version}",
            encode(room),
            encode(session)
        )
    };
    let stored = alice
        .ok("PUT", &one(session), key(5, 0, false, "first"))
        .await;
    assert_eq!(stored["count"], 1);
    let etag = stored["etag"].clone();
    // A worse copy is not kept (same etag); a better one is.
    let worse = alice
        .ok("PUT", &one(session), key(7, 0, false, "worse"))
        .await;
    assert_eq!(worse["etag"], etag);
    let better = alice
        .ok("PUT", &one(session), key(7, 0, true, "verified"))
        .await;
    assert_ne!(better["etag"], etag);
    let read = alice.ok("GET", &one(session), json!(null)).await;
    assert_eq!(read["session_data"]["ciphertext"], "verified");

    // A room's keys and all keys, in their shapes.
    let room_path = format!("room_keys/keys/{}?version={version}", encode(room));
    alice
        .ok(
            "PUT",
            &room_path,
            json!({"sessions": {"s2": key(0, 0, false, "two")}}),
        )
        .await;
    let all_path = format!("room_keys/keys?version={version}");
    let other_room = "!other:example.org";
    let all = alice
        .ok(
            "PUT",
            &all_path,
            json!({"rooms": {other_room: {"sessions": {"s3": key(0, 1, false, "three")}}}}),
        )
        .await;
    assert_eq!(all["count"], 3);
    let everything = alice.ok("GET", &all_path, json!(null)).await;
    assert_eq!(
        everything["rooms"][room]["sessions"]
            .as_object()
            .map(|s| s.len()),
        Some(2)
    );
    assert_eq!(
        everything["rooms"][other_room]["sessions"]["s3"]["forwarded_count"],
        1
    );
    let in_room = alice.ok("GET", &room_path, json!(null)).await;
    assert_eq!(
        in_room["sessions"]["s2"]["session_data"]["ciphertext"],
        "two"
    );

    // Nothing of it is anyone else's.
    let (status, _) = bob.call("GET", "room_keys/version", json!(null)).await;
    assert_eq!(status, 404);
    let (status, _) = bob.call("GET", &all_path, json!(null)).await;
    assert_eq!(status, 404);

    let token = alice.token.clone();
    h.kill();
    h.restart();
    let alice = Client {
        h: &h,
        token,
        user: String::new(),
        device: String::new(),
    };
    let read = alice.ok("GET", &one(session), json!(null)).await;
    assert_eq!(
        read["session_data"]["ciphertext"], "verified",
        "lost in the kill"
    );
    assert_eq!(
        alice.ok("GET", "room_keys/version", json!(null)).await["count"],
        3
    );

    // A newer version takes the keys from now on; the old one is stale.
    let newer = alice
        .ok(
            "POST",
            "room_keys/version",
            json!({"algorithm": ALGORITHM, "auth_data": {"public_key": "def"}}),
        )
        .await["version"]
        .as_str()
        .expect("version")
        .to_owned();
    let (status, reply) = alice
        .call("PUT", &one("s9"), key(0, 0, false, "late"))
        .await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(reply["errcode"], "M_WRONG_ROOM_KEYS_VERSION");
    assert_eq!(reply["current_version"], newer.as_str());

    let deleted = alice.ok("DELETE", &one(session), json!(null)).await;
    assert_eq!(deleted["count"], 2);
    let (status, _) = alice.call("GET", &one(session), json!(null)).await;
    assert_eq!(status, 404);
    alice
        .ok(
            "DELETE",
            &format!("room_keys/version/{version}"),
            json!(null),
        )
        .await;
    let (status, reply) = alice
        .call("GET", &format!("room_keys/version/{version}"), json!(null))
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND"))
    );
    let (status, _) = alice.call("GET", &all_path, json!(null)).await;
    assert_eq!(status, 404);
    assert_eq!(
        alice.ok("GET", "room_keys/version", json!(null)).await["version"],
        newer.as_str()
    );

    // auth_data is updated in place; the algorithm must stay.
    let path = format!("room_keys/version/{newer}");
    alice
        .ok(
            "PUT",
            &path,
            json!({"algorithm": ALGORITHM, "auth_data": {"public_key": "ghi"}, "version": newer}),
        )
        .await;
    assert_eq!(
        alice.ok("GET", &path, json!(null)).await["auth_data"]["public_key"],
        "ghi"
    );
    let (status, _) = alice
        .call(
            "PUT",
            &path,
            json!({"algorithm": ALGORITHM, "auth_data": {}, "version": "1"}),
        )
        .await;
    assert_eq!(status, 400);
}

/// matrix-js-sdk sets up cross-signing, secret storage and a backup on one
/// device, sends two encrypted messages and backs their session up; a new
/// device of the same user sees them undecryptable until it opens secret
/// storage with the recovery key and restores the backup from hearth.
#[tokio::test]
async fn a_new_device_reads_encrypted_history_from_the_backup_matrix_js_sdk() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let args = [
        format!("http://{}", h.client),
        "alice".to_owned(),
        PASSWORD.to_owned(),
    ];
    let out = js::run_script("key_backup.mjs", &args, Duration::from_secs(240))
        .unwrap_or_else(|e| panic!("{e}"));
    let last = out.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{out}: {e}"));

    assert_eq!(report["cross_signing_ready"], true, "{report}");
    assert_eq!(report["secret_storage_ready"], true, "{report}");
    assert_eq!(report["backup_algorithm"], ALGORITHM, "{report}");
    assert_eq!(report["trusted_on_a"], true, "{report}");
    // One Megolm session carried both messages.
    assert_eq!(report["backup_count"], 1, "{report}");
    assert_eq!(
        report["before_restore"],
        json!(["unable to decrypt", "unable to decrypt"]),
        "{report}"
    );
    assert_eq!(report["backup_found_on_b"], report["backup_version"]);
    assert_eq!(report["restored"], json!({"total": 1, "imported": 1}));
    assert_eq!(
        report["after_restore"],
        json!([
            "the spare key is under the flowerpot",
            "and the wifi password is hunter2"
        ]),
        "{report}"
    );

    // What the library uploaded is what hearth holds.
    let info = alice.ok("GET", "room_keys/version", json!(null)).await;
    assert_eq!(info["version"], report["backup_version"]);
    assert_eq!(info["count"], 1);
    let version = info["version"].as_str().expect("version");
    let keys = alice
        .ok(
            "GET",
            &format!("room_keys/keys?version={version}"),
            json!(null),
        )
        .await;
    let rooms = keys["rooms"].as_object().expect("rooms");
    assert_eq!(rooms.len(), 1, "{keys}");
}
