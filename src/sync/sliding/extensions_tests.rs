use std::collections::BTreeSet;

use ruma::{api::client::sync::sync_events::v5::request::ExtensionRoomConfig, OwnedRoomId};

use super::scope;
use crate::sync::sliding::lists::{Selection, Wanted};

fn id(name: &str) -> OwnedRoomId {
    OwnedRoomId::try_from(format!("!{name}:example.org")).unwrap()
}

/// Lists `a` (rooms 1, 2) and `b` (room 3), and a subscription to room 4.
fn selection() -> Selection {
    let mut selection = Selection::default();
    selection
        .in_lists
        .insert("a".into(), [id("1"), id("2")].into());
    selection.in_lists.insert("b".into(), [id("3")].into());
    selection.subscribed.insert(id("4"));
    for room in ["1", "2", "3", "4"] {
        let wanted = Wanted {
            timeline_limit: 1,
            required_state: Vec::new(),
        };
        selection.rooms.insert(id(room), wanted);
    }
    selection
}

fn names(rooms: BTreeSet<OwnedRoomId>) -> Vec<String> {
    rooms.iter().map(|r| r.as_str()[1..2].to_owned()).collect()
}

#[test]
fn absent_lists_and_rooms_each_mean_every_one() {
    let s = selection();
    assert_eq!(names(scope(&s, None, None)), ["1", "2", "3", "4"]);
    // matrix-rust-sdk's receipts: rooms `*` alone still covers the lists.
    let all_subscribed = vec![ExtensionRoomConfig::AllSubscribed];
    assert_eq!(
        names(scope(&s, None, Some(&all_subscribed))),
        ["1", "2", "3", "4"]
    );
    let only_b = vec!["b".to_owned()];
    assert_eq!(names(scope(&s, Some(&only_b), None)), ["3", "4"]);
}

#[test]
fn named_lists_and_rooms_cover_only_themselves() {
    let s = selection();
    let only_a = vec!["a".to_owned()];
    let none = Vec::new();
    assert_eq!(names(scope(&s, Some(&only_a), Some(&none))), ["1", "2"]);
    let room_3 = vec![ExtensionRoomConfig::Room(id("3"))];
    assert_eq!(names(scope(&s, Some(&Vec::new()), Some(&room_3))), ["3"]);
    let star = vec!["*".to_owned()];
    assert_eq!(names(scope(&s, Some(&star), Some(&none))), ["1", "2", "3"]);
    assert!(scope(&s, Some(&Vec::new()), Some(&none)).is_empty());
}
