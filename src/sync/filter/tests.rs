use ruma::{api::client::filter::LazyLoadOptions, room_id, CanonicalJsonObject};
use serde_json::json;

use super::{glob, Filter};

#[test]
fn wildcards_match_any_run_of_characters() {
    assert!(glob("m.room.*", "m.room.message"));
    assert!(glob("*", "anything"));
    assert!(glob("m.*.member", "m.room.member"));
    assert!(glob("m.room.message", "m.room.message"));
    assert!(!glob("m.room.message", "m.room.messages"));
    assert!(!glob("m.room.*", "m.call.invite"));
    assert!(!glob("m.*.member", "m.member"));
}

#[test]
fn lazy_loading_fields_must_be_booleans() {
    let bad = json!({"room": {"state": {"lazy_load_members": "true"}}});
    assert!(Filter::parse(&bad).is_err());
    let bad =
        json!({"room": {"state": {"lazy_load_members": true, "include_redundant_members": 1}}});
    assert!(Filter::parse(&bad).is_err());
    let good =
        json!({"room": {"state": {"lazy_load_members": true, "include_redundant_members": true}}});
    assert_eq!(
        Filter::parse(&good).unwrap().lazy_members(),
        LazyLoadOptions::Enabled {
            include_redundant_members: true
        }
    );
}

#[test]
fn event_format_is_client_or_federation() {
    assert!(Filter::parse(&json!({"event_format": "matrix"})).is_err());
    assert!(Filter::parse(&json!({"event_format": "federation"}))
        .unwrap()
        .federation_format());
}

#[test]
fn timeline_filters_match_types_senders_and_rooms() {
    let filter = Filter::parse(&json!({"room": {"timeline": {
        "types": ["m.room.*"], "not_types": ["m.room.member"],
        "not_senders": ["@spam:x"], "not_rooms": ["!other:x"],
    }}}))
    .unwrap();
    let room = room_id!("!room:x");
    let event = |kind: &str, sender: &str| -> CanonicalJsonObject {
        serde_json::from_value(json!({"type": kind, "sender": sender})).unwrap()
    };
    assert!(filter.timeline_allows(room, &event("m.room.message", "@a:x")));
    assert!(!filter.timeline_allows(room, &event("m.room.member", "@a:x")));
    assert!(!filter.timeline_allows(room, &event("m.reaction", "@a:x")));
    assert!(!filter.timeline_allows(room, &event("m.room.message", "@spam:x")));
    assert!(!filter.timeline_allows(room_id!("!other:x"), &event("m.room.message", "@a:x")));
}
