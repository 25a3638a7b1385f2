use ruma::{events::room::member::MembershipState, OwnedRoomId};

use super::{by_recency, Candidate};

fn candidate(room: &str, bump: u64) -> Candidate {
    Candidate {
        room: OwnedRoomId::try_from(format!("!{room}:example.org")).unwrap(),
        membership: MembershipState::Join,
        since: 1,
        bump,
        last: bump,
        pending: None,
    }
}

#[test]
fn most_recent_first_and_ties_by_room() {
    let rooms = vec![
        candidate("d", 1),
        candidate("c", 3),
        candidate("a", 2),
        candidate("b", 3),
    ];
    let sorted: Vec<String> = by_recency(rooms)
        .iter()
        .map(|c| c.room.as_str()[1..2].to_owned())
        .collect();
    assert_eq!(sorted, ["b", "c", "a", "d"]);
}
