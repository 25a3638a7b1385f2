use ruma::{events::room::member::MembershipState, OwnedRoomId};

use super::{is_bump, UserEntry};

fn room(n: u32) -> OwnedRoomId {
    OwnedRoomId::try_from(format!("!r{n}:example.org")).unwrap()
}

#[test]
fn the_newer_membership_wins_whichever_comes_first() {
    let mut entry = UserEntry::default();
    // An append staged while the store was read: the read's older
    // membership must not undo it.
    entry.merge(room(1), MembershipState::Leave, 20);
    entry.merge(room(1), MembershipState::Join, 10);
    assert_eq!(entry.rooms[&room(1)], (MembershipState::Leave, 20));
    entry.merge(room(1), MembershipState::Join, 30);
    assert_eq!(entry.rooms[&room(1)], (MembershipState::Join, 30));
}

#[test]
fn messages_bump_and_state_does_not() {
    assert!(is_bump("m.room.message"));
    assert!(is_bump("m.room.encrypted"));
    assert!(is_bump("m.room.create"));
    assert!(!is_bump("m.room.member"));
    assert!(!is_bump("m.reaction"));
}
