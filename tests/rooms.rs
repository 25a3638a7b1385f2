//! Rooms on a real process: creation, local events through the full
//! pipeline, refusals, and durability across kill -9.

mod common;

use common::{rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

async fn create(h: &Hearth, body: Value) -> (u16, Value) {
    h.admin("rooms", body).await
}

async fn send(h: &Hearth, room: &str, body: Value) -> (u16, Value) {
    h.admin(&format!("rooms/{}/send", encode(room)), body).await
}

async fn view(h: &Hearth, room: &str) -> Value {
    let (status, body) = common::rooms::view(h, room).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn alice(h: &Hearth) -> String {
    format!("@alice:{}", h.server_name)
}

#[tokio::test]
async fn rooms_and_their_history_survive_kill_9() {
    let ca = TestCa::new();
    let mut h = Hearth::start(&ca);
    let mut rooms = Vec::new();
    for version in ["12", "10", "2", "1"] {
        let (status, reply) =
            create(&h, json!({"creator": alice(&h), "room_version": version})).await;
        assert_eq!(status, 200, "{reply}");
        let room = reply["room_id"].as_str().expect("room_id").to_owned();
        for i in 0..25 {
            let (status, reply) = send(&h, &room, json!({"sender": alice(&h), "type": "m.room.message", "content": {"body": format!("message {i}"), "msgtype": "m.text"}})).await;
            assert_eq!(status, 200, "{reply}");
        }
        let (status, _) = send(&h, &room, json!({"sender": alice(&h), "type": "m.room.topic", "state_key": "", "content": {"topic": "durable"}})).await;
        assert_eq!(status, 200);
        let before = view(&h, &room).await;
        assert_eq!(before["room_version"], version);
        assert_eq!(
            before["timeline"].as_array().map(Vec::len),
            Some(5 + 25 + 1),
            "{before}"
        );
        assert_eq!(
            before["extremities"].as_array().map(Vec::len),
            Some(1),
            "a linear room has one extremity"
        );
        let kinds: Vec<&str> = before["state"]
            .as_array()
            .expect("state")
            .iter()
            .filter_map(|e| e[0].as_str())
            .collect();
        for kind in [
            "m.room.create",
            "m.room.member",
            "m.room.power_levels",
            "m.room.join_rules",
            "m.room.history_visibility",
            "m.room.topic",
        ] {
            assert!(
                kinds.contains(&kind),
                "{version}: {kind} missing from {kinds:?}"
            );
        }
        rooms.push((room, before));
    }
    h.restart(); // SIGKILL: no shutdown path runs
    for (room, before) in &rooms {
        assert_eq!(
            &view(&h, room).await,
            before,
            "state, extremities and timeline unchanged after kill -9"
        );
    }
    // And the room goes on from where it was.
    let (room, before) = &rooms[0];
    let (status, reply) = send(&h, room, json!({"sender": alice(&h), "type": "m.room.message", "content": {"body": "after", "msgtype": "m.text"}})).await;
    assert_eq!(status, 200, "{reply}");
    let after = view(&h, room).await;
    assert_eq!(after["extremities"], json!([reply["event_id"]]));
    assert_eq!(
        after["timeline"].as_array().map(Vec::len),
        before["timeline"].as_array().map(|t| t.len() + 1)
    );
}

#[tokio::test]
async fn events_the_rules_forbid_are_refused_and_not_stored() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let (_, reply) = create(&h, json!({"creator": alice(&h)})).await;
    let room = reply["room_id"].as_str().expect("room").to_owned();
    let before = view(&h, &room).await;
    let bob = format!("@bob:{}", h.server_name);
    let cases = [
        (
            json!({"sender": bob, "type": "m.room.message", "content": {"body": "let me in"}}),
            403,
            "M_FORBIDDEN",
        ),
        (
            json!({"sender": bob, "type": "m.room.member", "state_key": bob, "content": {"membership": "join"}}),
            403,
            "M_FORBIDDEN",
        ),
        (
            json!({"sender": "@eve:elsewhere.example", "type": "m.room.message", "content": {}}),
            403,
            "M_FORBIDDEN",
        ),
        (
            json!({"sender": alice(&h), "type": "m.room.message", "content": {"body": "x".repeat(70_000)}}),
            413,
            "M_TOO_LARGE",
        ),
        (
            json!({"sender": alice(&h), "type": "m.room.message"}),
            400,
            "M_BAD_JSON",
        ),
    ];
    for (body, status, errcode) in cases {
        let (got, reply) = send(&h, &room, body.clone()).await;
        let what = format!("{} from {}", body["type"], body["sender"]);
        assert_eq!(
            (got, reply["errcode"].as_str()),
            (status, Some(errcode)),
            "{what}: {reply}"
        );
    }
    assert_eq!(view(&h, &room).await, before, "nothing refused was stored");

    let (status, reply) = send(
        &h,
        "!nope:nowhere.example",
        json!({"sender": alice(&h), "type": "m.room.message", "content": {}}),
    )
    .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND"))
    );
    let (status, reply) = send(
        &h,
        "not-a-room",
        json!({"sender": alice(&h), "type": "m.room.message", "content": {}}),
    )
    .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM"))
    );
    let (status, reply) = create(&h, json!({"creator": alice(&h), "room_version": "99"})).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_UNSUPPORTED_ROOM_VERSION")),
        "{reply}"
    );
    let (status, _) = create(&h, json!({"creator": "@mallory:elsewhere.example"})).await;
    assert_eq!(status, 403);
}
