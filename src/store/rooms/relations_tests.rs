use ruma::{OwnedRoomId, RoomId};

use super::*;
use crate::store::{
    encode, reopen as open,
    rooms::{join_record, Append, EVENTS},
};

fn room() -> OwnedRoomId {
    OwnedRoomId::try_from("!room:example.org").expect("room")
}

fn id(name: &str) -> OwnedEventId {
    OwnedEventId::try_from(format!("${name}")).expect("id")
}

fn meta(room: &RoomId, stream: u64) -> EventMeta {
    EventMeta {
        room_id: room.to_owned(),
        depth: stream,
        stream,
        status: Status::Accepted,
        state_before: 1,
        state_after: 1,
        outlier: stream == 0,
        auth_events: None,
    }
}

fn pdu(rel_type: &str, parent: &str) -> CanonicalJsonObject {
    let json = serde_json::json!({
        "type": "m.room.message",
        "sender": "@a:example.org",
        "content": {"body": "x", "m.relates_to": {"rel_type": rel_type, "event_id": format!("${parent}")}},
    });
    serde_json::from_value(json).expect("object")
}

/// An append storing `name` at `stream` (0: an outlier), relating to `parent`.
fn child(name: &str, stream: u64, rel_type: &str, parent: &str) -> Append {
    let object = pdu(rel_type, parent);
    let meta = meta(&room(), stream);
    let related = Related::of(&id(name), &object, &meta).into_iter().collect();
    let json = serde_json::to_vec(&object).expect("json");
    let stored = (id(name), json, meta);
    let (event, also_stored) = if stream == 0 {
        (None, vec![stored])
    } else {
        (Some(stored), Vec::new())
    };
    Append {
        event,
        also_stored,
        timeline: (stream > 0).then_some(stream),
        related,
        ..Append::default()
    }
}

fn children(trees: &RoomTrees, parent: &str, back: bool) -> Vec<(String, String)> {
    let mut found = Vec::new();
    trees
        .walk_children::<StoreError>(room().as_str(), parent, None, back, |child| {
            found.push((child.id.to_string(), child.relation.rel_type));
            Ok(true)
        })
        .expect("walk");
    found
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (format!("${a}"), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn children_are_walked_staged_written_both_ways_and_after_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path());
    let trees = &store.rooms;
    trees
        .commit(child("old", 0, THREAD, "root"))
        .expect("commit");
    trees
        .commit(child("r1", 5, THREAD, "root"))
        .expect("commit");
    trees.flush().await.expect("flush");
    // Staged after written: the walk merges both in order.
    trees
        .commit(child("edit", 6, "m.replace", "root"))
        .expect("commit");
    trees
        .commit(child("other", 7, THREAD, "elsewhere"))
        .expect("commit");
    let forward = pairs(&[("old", THREAD), ("r1", THREAD), ("edit", "m.replace")]);
    assert_eq!(children(trees, "$root", false), forward);
    let mut back = forward.clone();
    back.reverse();
    assert_eq!(children(trees, "$root", true), back);
    // The commit gave the event its timeline position.
    let mut positions = Vec::new();
    trees
        .walk_children::<StoreError>(room().as_str(), "$root", None, false, |c| {
            positions.push(c.stream);
            Ok(true)
        })
        .expect("walk");
    assert!(positions[0] == 0 && positions[1] > 0 && positions[2] > positions[1]);
    // From a position, exclusive; the walk stops when asked.
    let from = (positions[1], "$r1".to_owned());
    let mut after = Vec::new();
    trees
        .walk_children::<StoreError>(room().as_str(), "$root", Some(&from), false, |c| {
            after.push(c.id.to_string());
            Ok(false)
        })
        .expect("walk");
    assert_eq!(after, ["$edit"]);
    trees.flush().await.expect("flush");
    drop(store);
    let store = open(dir.path());
    assert_eq!(children(&store.rooms, "$root", false), forward);
    let mut replies = Vec::new();
    store
        .rooms
        .walk_thread_replies::<StoreError>(room().as_str(), None, |_, root| {
            replies.push(root.to_string());
            Ok(true)
        })
        .expect("walk");
    assert_eq!(replies, ["$elsewhere", "$root", "$root"]);
}

#[tokio::test]
async fn a_removed_entry_is_gone_whether_staged_or_written() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path());
    let trees = &store.rooms;
    trees
        .commit(child("r1", 1, THREAD, "root"))
        .expect("commit");
    trees
        .commit(child("r2", 2, THREAD, "root"))
        .expect("commit");
    trees.flush().await.expect("flush");
    trees
        .commit(child("r3", 3, THREAD, "root"))
        .expect("commit");
    let mut entries = Vec::new();
    trees
        .walk_children::<StoreError>(room().as_str(), "$root", None, false, |c| {
            entries.push(Related {
                room: room(),
                parent: id("root"),
                stream: c.stream,
                child: c.id,
                relation: c.relation,
            });
            Ok(true)
        })
        .expect("walk");
    // A redaction of r1 (written) and r3 (still staged).
    let redaction = Append {
        unrelated: vec![entries[0].clone(), entries[2].clone()],
        ..Append::default()
    };
    trees.commit(redaction).expect("commit");
    assert_eq!(children(trees, "$root", false), pairs(&[("r2", THREAD)]));
    trees.flush().await.expect("flush");
    assert_eq!(children(trees, "$root", true), pairs(&[("r2", THREAD)]));
    let mut replies = 0;
    trees
        .walk_thread_replies::<StoreError>(room().as_str(), None, |_, _| {
            replies += 1;
            Ok(true)
        })
        .expect("walk");
    assert_eq!(replies, 1);
}

#[tokio::test]
async fn events_stored_before_the_index_are_indexed_on_open() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let db = sled::open(dir.path().join("db")).expect("sled");
        let events = db.open_tree(EVENTS).expect("events");
        let record = |object: &CanonicalJsonObject, meta: &EventMeta| {
            join_record(
                &encode(meta).expect("meta"),
                &serde_json::to_vec(object).expect("json"),
            )
        };
        let reaction = serde_json::from_value(serde_json::json!({
            "type": "m.reaction", "sender": "@b:example.org",
            "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$root", "key": "👍"}},
        }))
        .expect("object");
        events
            .insert("$reaction", record(&reaction, &meta(&room(), 4)))
            .expect("insert");
        // A rejected event and a reply without rel_type are not relations.
        let mut rejected = meta(&room(), 5);
        rejected.status = Status::Rejected("no".into());
        events
            .insert("$rejected", record(&pdu(THREAD, "root"), &rejected))
            .expect("insert");
        let reply = serde_json::from_value(serde_json::json!({
            "type": "m.room.message", "sender": "@b:example.org",
            "content": {"m.relates_to": {"m.in_reply_to": {"event_id": "$root"}}},
        }))
        .expect("object");
        events
            .insert("$reply", record(&reply, &meta(&room(), 6)))
            .expect("insert");
        db.flush().expect("flush");
    }
    let store = open(dir.path());
    let mut found = Vec::new();
    store
        .rooms
        .walk_children::<StoreError>(room().as_str(), "$root", None, false, |c| {
            found.push((c.id.to_string(), c.relation));
            Ok(true)
        })
        .expect("walk");
    let annotation = Relation {
        rel_type: "m.annotation".into(),
        event_type: "m.reaction".into(),
        sender: "@b:example.org".into(),
        key: Some("👍".into()),
    };
    assert_eq!(found, [("$reaction".to_owned(), annotation)]);
}
