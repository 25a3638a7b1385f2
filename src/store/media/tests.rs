use super::*;

fn file(byte: u8, size: u64) -> StoredFile {
    StoredFile {
        sha256: [byte; 32],
        size,
        content_type: "image/png".into(),
    }
}

fn upload(user: &str, file: StoredFile) -> MediaRecord {
    MediaRecord {
        file: Some(file),
        filename: None,
        uploader: Some(user.try_into().expect("user")),
        created_ms: 1,
        accessed_ms: 1,
    }
}

const OURS: &str = "a.example";

fn at(media_id: &str) -> MediaKey<'_> {
    MediaKey {
        server: OURS,
        media_id,
    }
}

#[test]
fn one_file_named_twice_is_freed_by_the_second_removal_only() {
    let dir = tempfile::tempdir().expect("dir");
    let store = crate::store::reopen(dir.path());
    let media = &store.media;
    let alice: &UserId = "@alice:a.example".try_into().expect("user");
    media
        .insert(at("one"), &upload(alice.as_str(), file(1, 100)))
        .expect("one");
    media
        .insert(at("two"), &upload(alice.as_str(), file(1, 100)))
        .expect("two");
    assert!(media
        .insert(at("two"), &upload(alice.as_str(), file(2, 5)))
        .is_err());
    assert_eq!(media.usage(alice).expect("usage"), 200);
    let thumb = ThumbnailSpec {
        width: 32,
        height: 32,
        crop: true,
    };
    media
        .insert_thumbnail(at("one"), thumb, &file(3, 10))
        .expect("thumb");
    media
        .insert_thumbnail(at("one"), thumb, &file(3, 10))
        .expect("again");

    let first = media.remove(at("one")).expect("removed").expect("there");
    assert_eq!(
        first.unreferenced,
        vec![[3; 32]],
        "the thumbnail's file only"
    );
    assert!(media.file_in_use(&[1; 32]).expect("read"));
    let second = media.remove(at("two")).expect("removed").expect("there");
    assert!(
        media.remove(at("two")).expect("read").is_none(),
        "gone already"
    );
    assert_eq!(second.unreferenced, vec![[1; 32]]);
    assert!(!media.file_in_use(&[1; 32]).expect("read"));
    assert_eq!(media.usage(alice).expect("usage"), 0);
    assert!(media.get(at("one")).expect("read").is_none());
}

#[test]
fn a_reserved_id_is_filled_once_and_expires_unfilled() {
    let dir = tempfile::tempdir().expect("dir");
    let store = crate::store::reopen(dir.path());
    let media = &store.media;
    let alice: &UserId = "@alice:a.example".try_into().expect("user");
    let mut reserved = upload(alice.as_str(), file(1, 10));
    reserved.file = None;
    media.reserve(at("r1"), &reserved, 1000).expect("reserve");
    media.reserve(at("r2"), &reserved, 1000).expect("reserve");
    assert_eq!(media.pending_count(alice, 500).expect("count"), 2);

    let filled = upload(alice.as_str(), file(1, 10));
    assert_eq!(
        media.fill_reserved(at("r1"), &filled).expect("fill"),
        Filled::Stored
    );
    assert_eq!(
        media.fill_reserved(at("r1"), &filled).expect("fill"),
        Filled::AlreadyFilled
    );
    assert_eq!(
        media.fill_reserved(at("never"), &filled).expect("fill"),
        Filled::NotReserved
    );
    assert_eq!(media.pending_count(alice, 500).expect("count"), 1);

    assert_eq!(media.drop_expired_reservations(2000).expect("drop"), 1);
    assert!(media.get(at("r2")).expect("read").is_none());
    assert!(media.get(at("r1")).expect("read").is_some(), "filled stays");
    assert_eq!(media.pending_count(alice, 0).expect("count"), 0);
}

#[test]
fn stats_tell_ours_from_other_servers() {
    let dir = tempfile::tempdir().expect("dir");
    let store = crate::store::reopen(dir.path());
    let media = &store.media;
    media
        .insert(at("x"), &upload("@a:a.example", file(1, 7)))
        .expect("ours");
    let mut remote = upload("@a:a.example", file(2, 11));
    remote.uploader = None;
    let theirs = MediaKey {
        server: "b.example",
        media_id: "y",
    };
    media.insert(theirs, &remote).expect("theirs");
    let stats = media.stats(OURS).expect("stats");
    assert_eq!(
        (
            stats.local_items,
            stats.local_bytes,
            stats.remote_items,
            stats.remote_bytes,
            stats.files
        ),
        (1, 7, 1, 11, 2)
    );
    let listed = media.remote(OURS).expect("remote");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].0.as_str(), listed[0].1.as_str()),
        ("b.example", "y")
    );
}
