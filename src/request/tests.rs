use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};

use super::*;

#[test]
fn path_ids_are_decoded_and_bad_ones_name_the_field() {
    let room: OwnedRoomId = id("roomId", "%21room%3Aa.org").expect("room");
    assert_eq!(room.as_str(), "!room:a.org");
    let error = id::<OwnedUserId>("userId", "nobody").expect_err("not a user");
    assert_eq!(error.errcode, "M_INVALID_PARAM");
    assert!(error
        .message
        .starts_with("userId: \"nobody\" is not a valid user ID"));
}

#[test]
fn queries_decode_names_and_values_alike_and_keep_repeats() {
    let query = Query::parse("via=a.org&via=b%2Eorg&q=two+words&flag&event%5Fid=%24e");
    assert_eq!(query.all("via").collect::<Vec<_>>(), ["a.org", "b.org"]);
    assert_eq!(query.get("q"), Some("two words"));
    assert_eq!(query.get("flag"), Some(""));
    let event: OwnedEventId =
        parsed("event_id", query.required("event_id").expect("given")).expect("event");
    assert_eq!(event.as_str(), "$e");
    assert_eq!(
        query.required("missing").expect_err("missing").errcode,
        "M_MISSING_PARAM"
    );
    assert!(parsed::<OwnedEventId>("q", query.get("q").expect("q")).is_err());
}
