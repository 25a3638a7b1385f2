use super::*;
use crate::store::encode;

fn meta(room: &OwnedRoomId, stream: u64) -> EventMeta {
    EventMeta {
        room_id: room.clone(),
        depth: stream,
        stream,
        status: Status::Accepted,
        state_before: 1,
        state_after: 1,
        outlier: false,
        auth_events: None,
    }
}

/// The next event of a linear room: replaces the previous extremity.
fn append(room: &OwnedRoomId, n: u64) -> Append {
    let id = OwnedEventId::try_from(format!("$event{n}")).expect("id");
    let previous = OwnedEventId::try_from(format!("$event{}", n - 1)).expect("id");
    Append {
        event: Some((
            id.clone(),
            format!("{{\"n\":{n}}}").into_bytes(),
            meta(room, n),
        )),
        new_event_shorts: vec![(id.clone(), 1000 + n)],
        extremities_removed: vec![previous],
        extremity_added: Some(id),
        timeline: Some(n),
        room: Some((
            room.clone(),
            RoomRecord {
                version: "12".into(),
                current_state: n,
            },
        )),
        ..Append::default()
    }
}

use crate::store::reopen as open;

#[tokio::test]
async fn staged_appends_are_read_at_once_and_written_together_by_flush() {
    let dir = tempfile::tempdir().expect("dir");
    let room = OwnedRoomId::try_from("!room:example.org").expect("room");
    let ids = |range: std::ops::RangeInclusive<u64>| -> Vec<OwnedEventId> {
        range
            .map(|n| OwnedEventId::try_from(format!("$event{n}")).expect("id"))
            .collect()
    };
    let last;
    {
        let store = open(dir.path());
        let trees = &store.rooms;
        for n in 1..=3 {
            trees.commit(append(&room, n)).expect("commit");
        }
        // Readable before any write: each append saw the one before.
        assert_eq!(trees.timeline(room.as_str()).expect("timeline"), ids(1..=3));
        assert_eq!(
            trees.extremities(room.as_str()).expect("extremities"),
            ids(3..=3)
        );
        assert_eq!(trees.event_short("$event2").expect("short"), Some(1002));
        assert_eq!(trees.short_event(1003).expect("id").as_str(), "$event3");
        assert_eq!(
            trees
                .room(room.as_str())
                .expect("room")
                .map(|r| r.current_state),
            Some(3)
        );
        trees.flush().await.expect("flush");
        // Staged and written entries read as one timeline.
        trees.commit(append(&room, 4)).expect("commit");
        assert_eq!(trees.timeline(room.as_str()).expect("timeline"), ids(1..=4));
        trees.flush().await.expect("flush");
        last = trees.position();
    }
    let store = open(dir.path());
    let trees = &store.rooms;
    assert_eq!(trees.timeline(room.as_str()).expect("timeline"), ids(1..=4));
    assert_eq!(
        trees.extremities(room.as_str()).expect("extremities"),
        ids(4..=4)
    );
    // Positions are handed out at commit, in order, and survive.
    let stream = |id: &str| trees.event_meta(id).expect("meta").expect("stored").stream;
    assert_eq!(stream("$event4"), last);
    assert!(trees.position() > last);
    let between = |after, limit, newest| -> Vec<OwnedEventId> {
        trees
            .timeline_between(room.as_str(), after, u64::MAX, limit, newest)
            .expect("between")
            .into_iter()
            .map(|(_, id)| id)
            .collect()
    };
    assert_eq!(between(stream("$event2"), 10, false), ids(3..=4));
    assert_eq!(between(0, 2, false), ids(1..=2));
    assert_eq!(between(0, 1, true), ids(4..=4));
    assert_eq!(
        trees.event_json("$event2").expect("json"),
        Some(serde_json::from_str("{\"n\":2}").expect("json"))
    );
    assert_eq!(
        trees
            .room(room.as_str())
            .expect("room")
            .map(|r| r.current_state),
        Some(4)
    );
}

/// The writer drains while appends keep coming in two rooms: each is
/// readable the moment it is committed, whether still staged, being
/// written or written, and what lands is each room's last state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_stay_readable_while_the_writer_drains_them() {
    let dir = tempfile::tempdir().expect("dir");
    let rooms = [
        OwnedRoomId::try_from("!one:example.org").expect("room"),
        OwnedRoomId::try_from("!two:example.org").expect("room"),
    ];
    let count = 600;
    {
        let store = open(dir.path());
        let trees = &store.rooms;
        for n in 1..=count {
            let room = &rooms[(n % 2) as usize];
            let mut staged = append(room, n);
            staged.extremities_removed = vec![];
            if n > 2 {
                staged.extremities_removed =
                    vec![OwnedEventId::try_from(format!("$event{}", n - 2)).expect("id")];
            }
            trees.commit(staged).expect("commit");
            let id = format!("$event{n}");
            assert!(trees.event_meta(&id).expect("meta").is_some(), "{id}");
            assert_eq!(trees.event_short(&id).expect("short"), Some(1000 + n));
            assert_eq!(
                trees.extremities(room.as_str()).expect("extremities"),
                vec![OwnedEventId::try_from(id).expect("id")]
            );
            if n % 100 == 0 {
                trees.flush().await.expect("flush");
            }
        }
        trees.flush().await.expect("flush");
        assert_eq!(
            trees.timeline(rooms[0].as_str()).expect("timeline").len(),
            300
        );
    }
    let store = open(dir.path());
    let trees = &store.rooms;
    for (room, last) in rooms.iter().zip([count, count - 1]) {
        assert_eq!(trees.timeline(room.as_str()).expect("timeline").len(), 300);
        assert_eq!(
            trees.extremities(room.as_str()).expect("extremities"),
            vec![OwnedEventId::try_from(format!("$event{last}")).expect("id")]
        );
        assert_eq!(
            trees
                .room(room.as_str())
                .expect("room")
                .map(|r| r.current_state),
            Some(last)
        );
    }
}

/// Written metadata and short ids are served from the cache; a record
/// written again replaces the cached one, and a stale read from the
/// trees never replaces what the writer settled meanwhile.
#[test]
fn cached_records_follow_what_is_written() {
    let dir = tempfile::tempdir().expect("dir");
    let room = OwnedRoomId::try_from("!room:example.org").expect("room");
    let store = open(dir.path());
    let trees = &store.rooms;
    // Outside a runtime, each commit is written before it returns.
    trees.commit(append(&room, 1)).expect("commit");
    let status = |trees: &RoomTrees| trees.event_meta("$event1").expect("meta").map(|m| m.status);
    assert_eq!(status(trees), Some(Status::Accepted));
    let id = OwnedEventId::try_from("$event1").expect("id");
    let mut rewritten = meta(&room, 1);
    rewritten.status = Status::SoftFailed("later".into());
    let again = Append {
        also_stored: vec![(id, b"{}".to_vec(), rewritten)],
        ..Append::default()
    };
    trees.commit(again).expect("commit");
    assert_eq!(status(trees), Some(Status::SoftFailed("later".into())));

    // "No short id yet" is cached, then replaced once there is one.
    let known = b"m.room.member\0@known:example.org";
    assert_eq!(trees.statekey_short(known).expect("short"), None);
    let assigned = Append {
        new_statekey_shorts: vec![(known.to_vec(), 76)],
        ..Append::default()
    };
    trees.commit(assigned).expect("commit");
    assert_eq!(trees.statekey_short(known).expect("short"), Some(76));

    let key = b"m.room.member\0@a:example.org";
    // A reader that read "no short id" while the key got one must not
    // cache its answer.
    let stale = trees
        .read_through(
            |staged| staged.cached.statekey_short.get(key.as_slice()),
            || {
                let before = trees
                    .statekey_short
                    .get(key)?
                    .map(|v| u64_value(STATEKEY_SHORT, &v));
                let assigned = Append {
                    new_statekey_shorts: vec![(key.to_vec(), 77)],
                    ..Append::default()
                };
                trees.commit(assigned)?;
                before.transpose()
            },
            |cached, short| cached.statekey_short.put(key.to_vec(), *short),
        )
        .expect("read");
    assert_eq!(stale, None);
    assert_eq!(trees.statekey_short(key).expect("short"), Some(77));
    assert_eq!(trees.short_statekey(77).expect("key"), key.to_vec());
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        status(&store.rooms),
        Some(Status::SoftFailed("later".into()))
    );
}

/// Threads meeting the same new state keys at the same moment get one
/// id per key, and that id is what the trees hold.
#[test]
fn a_new_state_key_met_at_once_gets_one_id() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path());
    let key = |i: usize| format!("m.room.member\0@u{i}:example.org").into_bytes();
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (trees, barrier) = (store.rooms.clone(), barrier.clone());
            std::thread::spawn(move || {
                (0..200)
                    .map(|i| {
                        barrier.wait();
                        trees.statekey_shorts_or_new(&[key(i)]).expect("id")[0]
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let ids: Vec<Vec<u64>> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    for other in &ids[1..] {
        assert_eq!(other, &ids[0]);
    }
    for (i, short) in ids[0].iter().enumerate() {
        assert_eq!(
            store.rooms.statekey_short(&key(i)).expect("id"),
            Some(*short)
        );
        assert_eq!(store.rooms.short_statekey(*short).expect("key"), key(i));
    }
    // A batch: known keys keep their ids, a new one named twice gets one.
    let batch = [key(0), key(500), key(500), key(1)];
    let shorts = store.rooms.statekey_shorts_or_new(&batch).expect("ids");
    assert_eq!(shorts[0], ids[0][0]);
    assert_eq!(shorts[3], ids[0][1]);
    assert_eq!(shorts[1], shorts[2]);
    assert!(!ids[0].contains(&shorts[1]));
    assert_eq!(
        store.rooms.short_statekey(shorts[1]).expect("key"),
        key(500)
    );
}

/// A data directory from before metadata moved into `events`, with a
/// merge that was interrupted after its first events: opening it
/// finishes the merge, and every event reads as it was written.
#[tokio::test]
async fn event_metadata_kept_apart_before_is_merged_on_open() {
    let dir = tempfile::tempdir().expect("dir");
    let room = OwnedRoomId::try_from("!room:example.org").expect("room");
    let count = 2 * MERGE_BATCH as u64 + 5;
    let json = |n: u64| format!("{{\"n\":{n}}}");
    {
        let db = sled::open(dir.path().join("db")).expect("sled");
        let events = db.open_tree(EVENTS).expect("events");
        let old = db.open_tree(EVENT_META).expect("event_meta");
        for n in 1..=count {
            let id = format!("$event{n}");
            let meta = encode(&meta(&room, n)).expect("meta");
            if n <= 10 {
                // Merged before the interruption.
                events
                    .insert(&id, join_record(&meta, json(n).as_bytes()))
                    .expect("insert");
            } else {
                events.insert(&id, json(n).as_bytes()).expect("insert");
                old.insert(&id, meta).expect("insert");
            }
        }
        old.insert("$lost", encode(&meta(&room, 0)).expect("meta"))
            .expect("insert");
        db.flush().expect("flush");
    }
    let store = open(dir.path());
    let trees = &store.rooms;
    for n in [1, 10, 11, MERGE_BATCH as u64 + 3, count] {
        let id = format!("$event{n}");
        let meta = trees.event_meta(&id).expect("meta").expect("stored");
        assert_eq!((meta.stream, &meta.room_id), (n, &room), "{id}");
        let stored = trees.event_bytes(&id).expect("json").expect("stored");
        assert_eq!(stored, json(n).into_bytes(), "{id}");
    }
    assert!(trees.event_meta("$lost").expect("meta").is_none());
    assert_eq!(trees.events.len(), count as usize);
    assert!(!trees
        .db
        .sled()
        .tree_names()
        .iter()
        .any(|name| name == EVENT_META.as_bytes()));
}

/// Every event citing `id`, in order.
fn citing(trees: &RoomTrees, id: &str) -> Vec<String> {
    let mut all = BTreeSet::new();
    trees
        .find_citing(id, |child| {
            all.insert(child.to_owned());
            false
        })
        .expect("read");
    all.into_iter().collect()
}

#[tokio::test]
async fn events_citing_an_event_are_read_staged_written_and_after_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let room = OwnedRoomId::try_from("!room:example.org").expect("room");
    let id = |name: &str| OwnedEventId::try_from(format!("${name}")).expect("id");
    let store = open(dir.path());
    let trees = &store.rooms;
    let mut first = append(&room, 1);
    first.cited = vec![(id("create"), id("event1")), (id("pl"), id("event1"))];
    trees.commit(first).expect("commit");
    let mut second = append(&room, 2);
    second.cited = vec![(id("create"), id("event2"))];
    trees.commit(second).expect("commit");
    // Staged or written, the answer is the same.
    assert_eq!(citing(trees, "$create"), ["$event1", "$event2"]);
    trees.flush().await.expect("flush");
    assert_eq!(citing(trees, "$create"), ["$event1", "$event2"]);
    assert_eq!(citing(trees, "$pl"), ["$event1"]);
    assert!(citing(trees, "$event1").is_empty());
    // The walk stops where asked.
    let mut met = 0;
    let found = trees.find_citing("$create", |_| {
        met += 1;
        true
    });
    assert_eq!((found.expect("read"), met), (true, 1));
    drop(store);
    let store = open(dir.path());
    assert_eq!(citing(&store.rooms, "$pl"), ["$event1"]);
}

#[tokio::test]
async fn events_stored_before_the_auth_index_are_indexed_on_open() {
    let dir = tempfile::tempdir().expect("dir");
    let room = OwnedRoomId::try_from("!room:example.org").expect("room");
    {
        let db = sled::open(dir.path().join("db")).expect("sled");
        let events = db.open_tree(EVENTS).expect("events");
        let record =
            |json: &str| join_record(&encode(&meta(&room, 1)).expect("meta"), json.as_bytes());
        // Room version 12 cites IDs, version 1 [ID, hashes] pairs; a
        // message and a rejected event cite too but are not indexed.
        let member =
            r#"{"type":"m.room.member","state_key":"@a:x","auth_events":["$create","$pl"]}"#;
        let old = r#"{"type":"m.room.topic","state_key":"","auth_events":[["$create:x",{"sha256":"abc"}]]}"#;
        let message = r#"{"type":"m.room.message","auth_events":["$create"]}"#;
        events.insert("$member", record(member)).expect("insert");
        events.insert("$topic:x", record(old)).expect("insert");
        events.insert("$message", record(message)).expect("insert");
        let mut rejected = meta(&room, 1);
        rejected.status = Status::Rejected("not allowed".into());
        let rejected = join_record(&encode(&rejected).expect("meta"), member.as_bytes());
        events.insert("$rejected", rejected).expect("insert");
        // An interrupted indexing left an entry but no completion mark.
        let index = db
            .open_tree(super::auth_children::AUTH_CHILDREN)
            .expect("index");
        index
            .insert(super::auth_children::key("$pl", "$member"), &[])
            .expect("insert");
        db.flush().expect("flush");
    }
    let store = open(dir.path());
    assert_eq!(citing(&store.rooms, "$create"), ["$member"]);
    assert_eq!(citing(&store.rooms, "$pl"), ["$member"]);
    assert_eq!(citing(&store.rooms, "$create:x"), ["$topic:x"]);
    assert!(citing(&store.rooms, "$message").is_empty());
}
