use std::borrow::Cow;

use ruma::{
    api::client::sync::sync_events::v5::request::ExtensionRoomConfig,
    events::room::member::MembershipState, OwnedRoomId,
};

use super::scope;
use crate::sync::sliding::lists::{Candidate, Selection, Wanted};

fn id(name: &str) -> OwnedRoomId {
    OwnedRoomId::try_from(format!("!{name}:example.org")).unwrap()
}

/// Rooms 1 to 4 and 5: lists `a` (rooms 1, 2) and `b` (room 3), a
/// subscription to room 4; room 5 selected by nothing.
fn rooms() -> (Vec<Candidate>, Selection<'static>) {
    let candidates = ["1", "2", "3", "4", "5"].map(|room| Candidate {
        room: id(room),
        membership: MembershipState::Join,
        since: 1,
        bump: 1,
        last: 1,
        pending: None,
    });
    let mut selection = Selection::default();
    selection.in_lists.insert("a".into(), vec![0, 1]);
    selection.in_lists.insert("b".into(), vec![2]);
    selection.subscribed.push(3);
    selection.rooms = (0..5)
        .map(|i| {
            (i < 4).then_some(Wanted {
                timeline_limit: 1,
                required_state: Cow::Borrowed(&[]),
            })
        })
        .collect();
    (candidates.into(), selection)
}

fn names(candidates: &[Candidate], covered: Vec<bool>) -> Vec<String> {
    let rooms = candidates.iter().zip(covered).filter(|(_, c)| *c);
    rooms
        .map(|(r, _)| r.room.as_str()[1..2].to_owned())
        .collect()
}

#[test]
fn absent_lists_and_rooms_each_mean_every_one() {
    let (c, s) = rooms();
    let covered = |lists, rooms| names(&c, scope((&c, &s), lists, rooms));
    assert_eq!(covered(None, None), ["1", "2", "3", "4"]);
    // matrix-rust-sdk's receipts: rooms `*` alone still covers the lists.
    let all_subscribed = vec![ExtensionRoomConfig::AllSubscribed];
    assert_eq!(covered(None, Some(&all_subscribed)), ["1", "2", "3", "4"]);
    let only_b = vec!["b".to_owned()];
    assert_eq!(covered(Some(&only_b), None), ["3", "4"]);
}

#[test]
fn named_lists_and_rooms_cover_only_themselves() {
    let (c, s) = rooms();
    let covered = |lists, rooms| names(&c, scope((&c, &s), lists, rooms));
    let only_a = vec!["a".to_owned()];
    let (no_lists, none) = (Vec::new(), Vec::new());
    assert_eq!(covered(Some(&only_a), Some(&none)), ["1", "2"]);
    // A room named but selected by no list nor subscription is not covered.
    let named = vec![
        ExtensionRoomConfig::Room(id("3")),
        ExtensionRoomConfig::Room(id("5")),
    ];
    assert_eq!(covered(Some(&no_lists), Some(&named)), ["3"]);
    let star = vec!["*".to_owned()];
    assert_eq!(covered(Some(&star), Some(&none)), ["1", "2", "3"]);
    assert!(covered(Some(&no_lists), Some(&none)).is_empty());
}
