use super::*;
use crate::keys::own::key_pair_from_seed;
use ruma::signatures::hash_and_sign_event;

/// Spec: appendices.md "Cryptographic Test Vectors".
fn spec_key() -> ruma::signatures::Ed25519KeyPair {
    let seed = Base64::<Standard, Vec<u8>>::parse("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
        .expect("seed");
    key_pair_from_seed(seed.as_bytes(), "ed25519:1").expect("key")
}

fn spec_keys() -> PublicKeyMap {
    let public = Base64::new(spec_key().public_key().to_vec());
    BTreeMap::from([(
        "domain".to_owned(),
        BTreeMap::from([("ed25519:1".to_owned(), public)]),
    )])
}

fn object(json: &str) -> CanonicalJsonObject {
    serde_json::from_str(json).expect("JSON object")
}

fn sign(mut event: CanonicalJsonObject, version: &RoomVersionId) -> CanonicalJsonObject {
    hash_and_sign_event(
        "domain",
        &spec_key(),
        &mut event,
        &rules(version).expect("rules").redaction,
    )
    .expect("signs");
    event
}

fn string_at<'a>(object: &'a CanonicalJsonObject, path: &[&str]) -> &'a str {
    let mut value = object.get(path[0]);
    for key in &path[1..] {
        value = match value {
            Some(CanonicalJsonValue::Object(o)) => o.get(*key),
            _ => None,
        };
    }
    value.and_then(|v| v.as_str()).unwrap_or("")
}

const MINIMAL: &str = r#"{"room_id": "!x:domain", "sender": "@a:domain", "origin": "domain",
    "origin_server_ts": 1000000, "signatures": {}, "hashes": {}, "type": "X", "content": {},
    "prev_events": [], "auth_events": [], "depth": 3, "unsigned": {"age_ts": 1000000}}"#;

const MESSAGE_V1: &str = r#"{"content": {"body": "Here is the message content"}, "event_id": "$0:domain",
    "origin": "domain", "origin_server_ts": 1000000, "type": "m.room.message", "room_id": "!r:domain",
    "sender": "@u:domain", "signatures": {}, "unsigned": {"age_ts": 1000000}}"#;

#[test]
fn spec_vector_minimal_event() {
    let signed = sign(object(MINIMAL), &RoomVersionId::V6);
    assert_eq!(
        string_at(&signed, &["hashes", "sha256"]),
        "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    );
    assert_eq!(
        string_at(&signed, &["signatures", "domain", "ed25519:1"]),
        "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
    );
    let checked = verify_with_keys(
        signed,
        &rules(&RoomVersionId::V6).expect("rules"),
        &spec_keys(),
    )
    .expect("valid");
    assert!(!checked.redacted_for_hash_mismatch);
    assert!(checked.event_id.as_str().starts_with('$') && !checked.event_id.as_str().contains(':'));
}

#[test]
fn spec_vector_event_with_redactable_content() {
    let signed = sign(object(MESSAGE_V1), &RoomVersionId::V1);
    assert_eq!(
        string_at(&signed, &["hashes", "sha256"]),
        "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"
    );
    assert_eq!(
        string_at(&signed, &["signatures", "domain", "ed25519:1"]),
        "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
    );
}

/// A message in the v3+ event format (event IDs are hashes).
fn message() -> CanonicalJsonObject {
    object(
        r#"{"room_id": "!r:domain", "sender": "@u:domain", "origin_server_ts": 1000000,
        "type": "m.room.message", "content": {"body": "hello", "msgtype": "m.text"},
        "prev_events": ["$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
        "auth_events": ["$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"], "depth": 5}"#,
    )
}

#[test]
fn event_ids_follow_the_room_version() {
    for (version, standard) in [
        (RoomVersionId::V3, true),
        (RoomVersionId::V4, false),
        (RoomVersionId::V10, false),
    ] {
        let rules = rules(&version).expect("rules");
        let checked =
            verify_with_keys(sign(message(), &version), &rules, &spec_keys()).expect("valid");
        let hash = &checked.event_id.as_str()[1..];
        assert_eq!(hash.len(), 43, "{version}");
        let url_safe = !hash.contains('+') && !hash.contains('/');
        assert!(standard || url_safe, "{version}: {hash}");
        assert_eq!(
            checked.event_id,
            event_id(&checked.object, &rules).expect("stable")
        );
    }
}

#[test]
fn a_content_hash_mismatch_redacts_but_keeps_the_event() {
    let version = RoomVersionId::V10;
    let mut signed = sign(message(), &version);
    signed.insert(
        "content".into(),
        object(r#"{"body": "forged", "msgtype": "m.text"}"#).into(),
    );
    let checked =
        verify_with_keys(signed, &rules(&version).expect("rules"), &spec_keys()).expect("kept");
    assert!(checked.redacted_for_hash_mismatch);
    assert_eq!(
        checked.object.get("content"),
        Some(&CanonicalJsonValue::Object(CanonicalJsonObject::new()))
    );
}

#[test]
fn bad_signatures_sizes_and_formats_are_refused() {
    let version = RoomVersionId::V10;
    let rules = rules(&version).expect("rules");
    let mut forged = sign(message(), &version);
    forged.insert("depth".into(), CanonicalJsonValue::Integer(6u32.into()));
    let refused = verify_with_keys(forged, &rules, &spec_keys()).expect_err("forged");
    assert!(refused.0.contains("signature"), "{refused}");

    let unsigned = message();
    assert!(verify_with_keys(unsigned, &rules, &spec_keys()).is_err());

    // Padding outside what is signed still counts towards the 65,536 bytes.
    let mut huge = sign(message(), &version);
    huge.insert(
        "unsigned".into(),
        object(&format!(r#"{{"pad": "{}"}}"#, "x".repeat(70_000))).into(),
    );
    let refused = verify_with_keys(huge, &rules, &spec_keys()).expect_err("too large");
    assert!(refused.0.contains("format"), "{refused}");

    let mut no_sender = sign(message(), &version);
    no_sender.remove("sender");
    assert!(verify_with_keys(no_sender, &rules, &spec_keys()).is_err());

    assert!(super::rules(&RoomVersionId::try_from("v99").expect("id")).is_err());
}

/// Which content keys survive redaction of a tampered event of `kind`,
/// or `None` when the tampering broke the signature (content the
/// redaction keeps is signed).
fn kept_after_redaction(
    version: &RoomVersionId,
    kind: &str,
    content: serde_json::Value,
) -> Option<Vec<String>> {
    let mut event = message();
    event.insert("type".into(), kind.into());
    event.insert("state_key".into(), "".into());
    event.insert(
        "content".into(),
        serde_json::from_value(content).expect("content"),
    );
    let mut signed = sign(event, version);
    // Tampering with the content breaks the hash but not the signature.
    if let Some(CanonicalJsonValue::Object(content)) = signed.get_mut("content") {
        content.insert("tampered".into(), true.into());
    }
    let checked = verify_with_keys(signed, &rules(version).expect("rules"), &spec_keys()).ok()?;
    assert!(checked.redacted_for_hash_mismatch);
    match checked.object.get("content") {
        Some(CanonicalJsonValue::Object(content)) => Some(content.keys().cloned().collect()),
        _ => Some(Vec::new()),
    }
}

/// Spec: rooms/v1 "Redactions", v6, v8 (join_rules `allow`), v9
/// (`join_authorised_via_users_server`), v11 (create content, `invite`).
#[test]
fn redaction_follows_each_version_family() {
    use RoomVersionId::{V11, V3, V6, V8, V9};
    let create =
        serde_json::json!({"creator": "@u:domain", "room_version": "x", "m.federate": true});
    let power = serde_json::json!({"ban": 50, "invite": 50, "users": {}, "events": {}});
    let rules = serde_json::json!({"join_rule": "restricted", "allow": []});
    let member = serde_json::json!({"membership": "join", "join_authorised_via_users_server": "@a:domain", "displayname": "x"});
    let aliases = serde_json::json!({"aliases": ["#a:domain"]});
    // v11 keeps the whole create content, so tampering with it is refused outright.
    let cases: [(RoomVersionId, &str, &serde_json::Value, Option<&[&str]>); 12] = [
        (V3, "m.room.create", &create, Some(&["creator"])),
        (V11, "m.room.create", &create, None),
        (
            V6,
            "m.room.power_levels",
            &power,
            Some(&["ban", "events", "users"]),
        ),
        (
            V11,
            "m.room.power_levels",
            &power,
            Some(&["ban", "events", "invite", "users"]),
        ),
        (V6, "m.room.join_rules", &rules, Some(&["join_rule"])),
        (
            V8,
            "m.room.join_rules",
            &rules,
            Some(&["allow", "join_rule"]),
        ),
        (V8, "m.room.member", &member, Some(&["membership"])),
        (
            V9,
            "m.room.member",
            &member,
            Some(&["join_authorised_via_users_server", "membership"]),
        ),
        (V3, "m.room.aliases", &aliases, Some(&["aliases"])),
        (V6, "m.room.aliases", &aliases, Some(&[])),
        (
            V11,
            "m.room.message",
            &serde_json::json!({"body": "x"}),
            Some(&[]),
        ),
        (
            V3,
            "m.room.history_visibility",
            &serde_json::json!({"history_visibility": "shared", "x": 1}),
            Some(&["history_visibility"]),
        ),
    ];
    for (version, kind, content, expected) in cases {
        let expected = expected.map(|keys| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
        assert_eq!(
            kept_after_redaction(&version, kind, content.clone()),
            expected,
            "{kind} in {version}"
        );
    }
}

/// A key service for server `hearth.test` with its own fresh key.
fn key_service(dir: &std::path::Path) -> KeyService {
    let config = crate::config::Config {
        server_name: "hearth.test".try_into().expect("name"),
        ..Default::default()
    };
    let store = crate::store::Store::open(dir).expect("store");
    let client = std::sync::Arc::new(crate::net::https::HttpsClient::new(&config).expect("client"));
    KeyService::new(&config, store, client).expect("keys")
}

fn local_message(keys: &KeyService, version: &RoomVersionId, ts: u64) -> CanonicalJsonObject {
    let mut event = message();
    event.insert("sender".into(), "@u:hearth.test".into());
    event.insert(
        "origin_server_ts".into(),
        CanonicalJsonValue::Integer(ruma::Int::try_from(ts).expect("ts")),
    );
    keys.hash_and_sign_event(&mut event, &rules(version).expect("rules").redaction)
        .expect("signs");
    event
}

#[tokio::test]
async fn retired_keys_vouch_only_for_events_before_they_expired_from_v5() {
    let dir = tempfile::tempdir().expect("dir");
    let keys = key_service(dir.path());
    let now = crate::time::now_ms();
    let (v10, v4) = (RoomVersionId::V10, RoomVersionId::V4);
    let before = local_message(&keys, &v10, now - 60_000);
    let after = local_message(&keys, &v10, now + 3_600_000);
    let old_room = local_message(&keys, &v4, now + 3_600_000);
    check(&keys, &v10, before.clone())
        .await
        .expect("current key");
    keys.rotate().expect("rotate");
    check(&keys, &v10, before)
        .await
        .expect("signed before the key expired");
    let refused = check(&keys, &v10, after)
        .await
        .expect_err("signed after expiry");
    assert!(
        refused.0.contains("no usable signature by hearth.test"),
        "{refused}"
    );
    check(&keys, &v4, old_room)
        .await
        .expect("v1-v4 rooms have no validity period");
}
