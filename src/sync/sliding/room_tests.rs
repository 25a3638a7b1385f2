use ruma::{events::StateEventType, UserId};

use super::RequiredState;

fn spec(pairs: &[(&str, &str)]) -> RequiredState {
    let user = UserId::parse("@alice:example.org").unwrap();
    let pairs: Vec<(StateEventType, String)> = pairs
        .iter()
        .map(|(kind, key)| (StateEventType::from(*kind), (*key).to_owned()))
        .collect();
    RequiredState::of(&pairs, &user)
}

#[test]
fn exact_pairs_are_looked_up_one_by_one() {
    let spec = spec(&[("m.room.name", ""), ("m.room.member", "$ME")]);
    assert!(!spec.wildcard && !spec.lazy);
    assert_eq!(
        spec.exact,
        vec![
            (StateEventType::RoomName, String::new()),
            (StateEventType::RoomMember, "@alice:example.org".to_owned()),
        ]
    );
    assert!(spec.wants(&StateEventType::RoomName, ""));
    assert!(!spec.wants(&StateEventType::RoomMember, "@bob:example.org"));
}

#[test]
fn wildcards_match_any_type_or_key_and_lazy_is_apart() {
    let spec = spec(&[("*", "*"), ("m.room.member", "$LAZY")]);
    assert!(spec.wildcard && spec.lazy);
    assert!(spec.wants(&StateEventType::RoomTopic, ""));
    assert!(spec.wants(&StateEventType::RoomMember, "@bob:example.org"));

    let members = self::spec(&[("m.room.member", "*")]);
    assert!(members.wildcard && !members.lazy);
    assert!(members.wants(&StateEventType::RoomMember, "@bob:example.org"));
    assert!(!members.wants(&StateEventType::RoomName, ""));

    let keyed = self::spec(&[("*", "")]);
    assert!(keyed.wants(&StateEventType::RoomName, ""));
    assert!(!keyed.wants(&StateEventType::RoomMember, "@bob:example.org"));
}
