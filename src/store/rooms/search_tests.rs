use ruma::{OwnedEventId, OwnedRoomId};

use super::*;
use crate::store::{
    encode, reopen as open,
    rooms::{join_record, Append, EVENTS, TIMELINE},
};

fn room() -> OwnedRoomId {
    OwnedRoomId::try_from("!room:example.org").expect("room")
}

fn meta(stream: u64) -> EventMeta {
    EventMeta {
        room_id: room(),
        depth: stream,
        stream,
        status: Status::Accepted,
        state_before: 1,
        state_after: 1,
        outlier: false,
        auth_events: None,
    }
}

fn message(body: &str) -> CanonicalJsonObject {
    serde_json::from_value(serde_json::json!({
        "type": "m.room.message", "sender": "@a:example.org",
        "content": {"msgtype": "m.text", "body": body},
    }))
    .expect("object")
}

fn said(name: &str, body: &str) -> Append {
    let id = OwnedEventId::try_from(format!("${name}")).expect("id");
    let pdu = message(body);
    let meta = meta(1);
    Append {
        searchable: Searchable::of(&pdu, &meta),
        event: Some((id, serde_json::to_vec(&pdu).expect("json"), meta)),
        timeline: Some(0),
        room: Some((
            room(),
            super::super::RoomRecord {
                version: "12".into(),
                current_state: 1,
            },
        )),
        ..Append::default()
    }
}

fn found(trees: &RoomTrees, term: &str) -> Vec<(bool, u16)> {
    let mut found: Vec<(bool, u16)> = trees
        .postings(room().as_str(), term, BODY | NAME | TOPIC, 100_000)
        .expect("postings")
        .into_iter()
        .map(|p| (p.exact, p.words))
        .collect();
    found.sort();
    found
}

#[test]
fn words_are_lowercased_runs_of_letters_and_digits() {
    let all: Vec<String> = words("Hello, WORLD! naïve café 42x — ÉTÉ").collect();
    assert_eq!(all, ["hello", "world", "naïve", "café", "42x", "été"]);
    let long = "a".repeat(100);
    assert_eq!(words(&long).next().map(|w| w.len()), Some(MAX_WORD));
}

#[test]
fn blocks_round_trip() {
    let postings = [(5, BODY, 3), (6, NAME, 1), (900, BODY | TOPIC, 512)];
    let block = encode_block(5, &postings);
    assert!(block.len() <= 3 * 4, "{} bytes", block.len());
    assert_eq!(decode_block(5, &block).expect("decode"), postings);
    assert!(decode_block(5, &block[..block.len() - 1]).is_err());
}

#[tokio::test]
async fn terms_find_words_in_the_tail_in_blocks_and_after_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path());
    let trees = &store.rooms;
    trees
        .commit(said("one", "Hello hello world"))
        .expect("commit");
    trees.commit(said("two", "help")).expect("commit");
    // In the tail: "hel" begins both words; "hello" only the first, exactly.
    assert_eq!(found(trees, "hel"), [(false, 1), (false, 2)]);
    assert_eq!(found(trees, "hello"), [(true, 2)]);
    assert!(found(trees, "cake").is_empty());
    assert!(trees
        .postings(room().as_str(), "hello", NAME, 10)
        .expect("postings")
        .is_empty());
    // Enough events to write a block: the same answers from the tree.
    for n in 0..FLUSH_EVENTS {
        trees
            .commit(said(&format!("filler{n}"), "filler"))
            .expect("commit");
    }
    assert!(
        trees.search.tail().postings.len() < 3,
        "the tail was written"
    );
    assert_eq!(found(trees, "hel"), [(false, 1), (false, 2)]);
    trees.commit(said("three", "hello again")).expect("commit");
    assert_eq!(found(trees, "hello"), [(true, 2), (true, 2)]);
    trees.flush().await.expect("flush");
    drop(store);
    // The tail of the last run is taken in again from the timeline.
    let store = open(dir.path());
    assert_eq!(found(&store.rooms, "hello"), [(true, 2), (true, 2)]);
    assert_eq!(found(&store.rooms, "filler").len(), FLUSH_EVENTS);
}

#[tokio::test]
async fn events_stored_before_the_index_are_indexed_on_open() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let db = sled::open(dir.path().join("db")).expect("sled");
        let events = db.open_tree(EVENTS).expect("events");
        let timeline = db.open_tree(TIMELINE).expect("timeline");
        let rooms = db.open_tree(super::super::ROOMS).expect("rooms");
        let record = |pdu: &CanonicalJsonObject, meta: &EventMeta| {
            join_record(
                &encode(meta).expect("meta"),
                &serde_json::to_vec(pdu).expect("json"),
            )
        };
        events
            .insert("$old", record(&message("ancient words"), &meta(3)))
            .expect("insert");
        timeline
            .insert(
                crate::store::key::join(&[room().as_bytes(), &3u64.to_be_bytes()]),
                "$old",
            )
            .expect("insert");
        rooms
            .insert(
                room().as_bytes(),
                br#"{"version":"12","current_state":1}"#.as_slice(),
            )
            .expect("insert");
        // Outside the timeline: not searchable.
        events
            .insert("$outlier", record(&message("ancient too"), &meta(0)))
            .expect("insert");
        db.flush().expect("flush");
    }
    let store = open(dir.path());
    assert_eq!(found(&store.rooms, "ancient"), [(true, 2)]);
}
