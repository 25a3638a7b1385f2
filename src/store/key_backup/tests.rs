use super::*;
use serde_json::json;

fn key(index: u64, forwards: u64, verified: bool, data: &str) -> BackedUpKey {
    BackedUpKey {
        first_message_index: index,
        forwarded_count: forwards,
        is_verified: verified,
        session_data: json!({ "ciphertext": data }),
    }
}

fn place(room: &str, session: &str) -> KeyPlace {
    (room.to_owned(), session.to_owned())
}

#[test]
fn the_better_copy_of_a_key_is_kept_by_the_specs_order() {
    assert!(key(5, 9, true, "a").better_than(&key(0, 0, false, "b")));
    assert!(key(0, 9, false, "a").better_than(&key(1, 0, false, "b")));
    assert!(key(1, 0, false, "a").better_than(&key(1, 1, false, "b")));
    assert!(
        !key(1, 1, false, "a").better_than(&key(1, 1, false, "b")),
        "a tie keeps the old"
    );
}

#[test]
fn keys_are_counted_tagged_replaced_and_deleted_per_version() {
    let dir = tempfile::tempdir().expect("dir");
    let store = crate::store::reopen(dir.path());
    let backups = &store.key_backup;
    let alice: &UserId = "@alice:a.example".try_into().expect("user");
    assert!(backups.latest(alice).expect("read").is_none());
    let first = backups
        .create(
            alice,
            "m.megolm_backup.v1.curve25519-aes-sha2",
            json!({"public_key": "x"}),
        )
        .expect("create");
    let keys = [
        (place("!r:a", "s1"), key(3, 0, false, "one")),
        (place("!r:a", "s2"), key(0, 0, false, "two")),
        (place("!q:a", "s1"), key(0, 0, false, "three")),
    ];
    let after = backups
        .put(alice, first, &keys)
        .expect("put")
        .expect("version");
    assert_eq!((after.count, after.etag), (3, 1));
    // A worse copy changes nothing; a better one replaces.
    let worse = backups
        .put(
            alice,
            first,
            &[(place("!r:a", "s1"), key(4, 0, false, "worse"))],
        )
        .expect("put")
        .expect("v");
    assert_eq!((worse.count, worse.etag), (3, 1));
    let better = backups
        .put(
            alice,
            first,
            &[(place("!r:a", "s1"), key(1, 0, false, "better"))],
        )
        .expect("put")
        .expect("v");
    assert_eq!((better.count, better.etag), (3, 2));
    let room = backups
        .keys(alice, first, Some("!r:a"), None)
        .expect("keys");
    assert_eq!(room.len(), 2);
    let one = backups
        .keys(alice, first, Some("!r:a"), Some("s1"))
        .expect("key");
    assert_eq!(one, vec![(place("!r:a", "s1"), key(1, 0, false, "better"))]);

    let second = backups
        .create(alice, "m.megolm_backup.v1.curve25519-aes-sha2", json!({}))
        .expect("create");
    assert!(second > first);
    assert_eq!(
        backups.latest(alice).expect("read").map(|(v, _)| v),
        Some(second)
    );
    assert!(
        backups
            .keys(alice, second, None, None)
            .expect("keys")
            .is_empty(),
        "a new version starts empty"
    );

    let left = backups
        .delete_keys(alice, first, Some("!r:a"), None)
        .expect("delete")
        .expect("v");
    assert_eq!((left.count, left.etag), (1, 3));
    assert!(backups.delete(alice, first).expect("delete"));
    assert!(backups.version(alice, first).expect("read").is_none());
    assert!(
        backups.put(alice, first, &keys).expect("put").is_none(),
        "a deleted version takes nothing"
    );
    assert!(backups
        .keys(alice, first, None, None)
        .expect("keys")
        .is_empty());
}
