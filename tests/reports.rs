//! Reporting content over a real process: an event by a member who sees
//! it, a room, a user; what the reporter may not see is "not found";
//! the admin lists and dismisses reports with `hearth reports`, through
//! the running server and on a stopped one's data directory.

mod common;

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::json;

#[tokio::test]
async fn reports_reach_the_admin_and_reveal_nothing_else() {
    let ca = TestCa::new();
    let mut h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let carol = Client::login(&h, "carol").await;
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    let r = encode(&room);
    bob.ok("POST", &format!("join/{r}"), json!({})).await;
    let event = alice
        .ok(
            "PUT",
            &format!("rooms/{r}/send/m.room.message/t1"),
            json!({"msgtype": "m.text", "body": "rude"}),
        )
        .await["event_id"]
        .as_str()
        .expect("event")
        .to_owned();
    let e = encode(&event);

    bob.ok(
        "POST",
        &format!("rooms/{r}/report/{e}"),
        json!({"reason": "rude words"}),
    )
    .await;
    let (status, reply) = carol
        .call(
            "POST",
            &format!("rooms/{r}/report/{e}"),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND")),
        "not in the room"
    );
    let missing = encode(&format!("$nothing:{}", h.server_name));
    let (status, _) = bob
        .call("POST", &format!("rooms/{r}/report/{missing}"), json!({}))
        .await;
    assert_eq!(status, 404);

    carol
        .ok(
            "POST",
            &format!("rooms/{r}/report"),
            json!({"reason": "a bad room"}),
        )
        .await;
    let unknown_room = encode(&format!("!nope:{}", h.server_name));
    let (status, _) = carol
        .call(
            "POST",
            &format!("rooms/{unknown_room}/report"),
            json!({"reason": ""}),
        )
        .await;
    assert_eq!(status, 404);
    carol
        .ok(
            "POST",
            &format!("users/{}/report", encode(&alice.user)),
            json!({"reason": "spam"}),
        )
        .await;
    let (status, _) = carol
        .call(
            "POST",
            &format!(
                "users/{}/report",
                encode(&format!("@ghost:{}", h.server_name))
            ),
            json!({"reason": ""}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, reply) = carol
        .call(
            "POST",
            &format!("users/{}/report", encode(&alice.user)),
            json!({"reason": "x".repeat(3000)}),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM"))
    );

    let listed = h.cli(&["reports"]);
    assert!(
        listed.contains(&format!(
            "{} reported event {event} in {room}: \"rude words\"",
            bob.user
        )),
        "{listed}"
    );
    assert!(listed.contains("\"a bad room\""), "{listed}");
    assert!(
        listed.contains(&format!("reported user {}: \"spam\"", alice.user)),
        "{listed}"
    );
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let first: &str = listed.split(':').next().expect("id");
    let dismissed = h.cli(&["reports", "dismiss", first]);
    assert!(dismissed.contains("dismissed"), "{dismissed}");

    h.kill();
    let listed = h.cli(&["reports"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(!listed.contains("rude words"), "{listed}");
}
