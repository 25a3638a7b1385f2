use super::*;
use ruma::RoomVersionId;

fn parse(json: &str, version: RoomVersionId) -> Result<Pdu, Refused> {
    let object: CanonicalJsonObject = serde_json::from_str(json).expect("json");
    let id = OwnedEventId::try_from("$e:hearth.test").expect("id");
    Pdu::parse(id, &object, &version.rules().expect("rules"))
}

#[test]
fn both_reference_formats_parse() {
    let v1 = parse(
        r#"{"room_id": "!r:a", "sender": "@u:a", "origin_server_ts": 5, "type": "m.room.redaction",
        "content": {}, "redacts": "$x:a", "depth": 2, "event_id": "$e:a",
        "prev_events": [["$p:a", {"sha256": "h"}]], "auth_events": [["$c:a", {"sha256": "h"}]]}"#,
        RoomVersionId::V1,
    )
    .expect("v1");
    assert_eq!(
        (v1.prev_events[0].as_str(), v1.auth_events[0].as_str()),
        ("$p:a", "$c:a")
    );
    assert_eq!(v1.redacts.as_ref().map(|r| r.as_str()), Some("$x:a"));

    let v11 = parse(
        r#"{"room_id": "!r:a", "sender": "@u:a", "origin_server_ts": 5, "type": "m.room.redaction",
        "content": {"redacts": "$yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"}, "depth": 2,
        "prev_events": ["$pppppppppppppppppppppppppppppppppppppppppp1"], "auth_events": []}"#,
        RoomVersionId::V11,
    )
    .expect("v11");
    assert_eq!(
        v11.redacts.as_ref().map(|r| r.as_str()),
        Some("$yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy")
    );
    assert!(v11.state_key.is_none());
}

#[test]
fn the_wrong_reference_format_is_refused() {
    let bare_in_v1 = parse(
        r#"{"room_id": "!r:a", "sender": "@u:a", "origin_server_ts": 5, "type": "m.room.message",
        "content": {}, "depth": 2, "prev_events": ["$p:a"], "auth_events": []}"#,
        RoomVersionId::V1,
    );
    assert!(bare_in_v1.expect_err("pairs required").0.contains("pairs"));
    let pairs_in_v10 = parse(
        r#"{"room_id": "!r:a", "sender": "@u:a", "origin_server_ts": 5, "type": "m.room.message",
        "content": {}, "depth": 2, "prev_events": [["$p:a", {}]], "auth_events": []}"#,
        RoomVersionId::V10,
    );
    assert!(pairs_in_v10.is_err());
}
