use ruma::{OwnedEventId, OwnedRoomId};

use super::*;
use crate::store::{
    encode, reopen as open,
    rooms::{join_record, Append, EVENTS},
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
        searchable: Searchable::of(&id, &pdu, &meta),
        event: Some((id, serde_json::to_vec(&pdu).expect("json"), meta)),
        timeline: Some(0),
        ..Append::default()
    }
}

fn found(trees: &RoomTrees, term: &str) -> Vec<(bool, u16)> {
    trees
        .postings(room().as_str(), term, BODY | NAME | TOPIC, 1000)
        .expect("postings")
        .into_iter()
        .map(|p| (p.exact, p.words))
        .collect()
}

#[test]
fn words_are_lowercased_runs_of_letters_and_digits() {
    let all: Vec<String> = words("Hello, WORLD! naïve café 42x — ÉTÉ").collect();
    assert_eq!(all, ["hello", "world", "naïve", "café", "42x", "été"]);
    let long = "a".repeat(100);
    assert_eq!(words(&long).next().map(|w| w.len()), Some(MAX_WORD));
}

#[tokio::test]
async fn terms_find_the_words_they_begin_staged_written_and_until_redacted() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path());
    let trees = &store.rooms;
    trees
        .commit(said("one", "Hello hello world"))
        .expect("commit");
    trees.flush().await.expect("flush");
    trees.commit(said("two", "help")).expect("commit");
    // "hel" begins both words; "hello" only the first, exactly.
    assert_eq!(found(trees, "hel").len(), 2);
    assert_eq!(found(trees, "hello"), [(true, 2)]);
    assert!(found(trees, "cake").is_empty());
    // A field not asked about is not searched.
    assert!(trees
        .postings(room().as_str(), "hello", NAME, 10)
        .expect("postings")
        .is_empty());
    // A redaction takes the words out.
    let mut stream = 0;
    trees
        .timeline_between(room().as_str(), 0, u64::MAX, 10, false)
        .expect("timeline")
        .iter()
        .filter(|(_, id)| id.as_str() == "$one")
        .for_each(|(s, _)| stream = *s);
    let mut gone = meta(stream);
    gone.stream = stream;
    let id = OwnedEventId::try_from("$one").expect("id");
    let redaction = Append {
        unsearchable: Searchable::of(&id, &message("Hello hello world"), &gone),
        ..Append::default()
    };
    trees.commit(redaction).expect("commit");
    assert_eq!(found(trees, "hel"), [(false, 1)]);
    trees.flush().await.expect("flush");
    drop(store);
    let store = open(dir.path());
    assert_eq!(found(&store.rooms, "hel"), [(false, 1)]);
    assert!(found(&store.rooms, "world").is_empty());
}

#[tokio::test]
async fn events_stored_before_the_index_are_indexed_on_open() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let db = sled::open(dir.path().join("db")).expect("sled");
        let events = db.open_tree(EVENTS).expect("events");
        let record = |pdu: &CanonicalJsonObject, meta: &EventMeta| {
            join_record(
                &encode(meta).expect("meta"),
                &serde_json::to_vec(pdu).expect("json"),
            )
        };
        events
            .insert("$old", record(&message("ancient words"), &meta(3)))
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
