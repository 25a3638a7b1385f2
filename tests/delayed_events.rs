//! Delayed events (MSC4140) over a real process: a message and a state
//! event sent when due, a restart postponing one, a cancel dropping one,
//! `send` sending at once, a retried transaction scheduling once, only
//! their owner acting on them, too long a delay refused, and one
//! scheduled before a `kill -9` sent after the restart.

mod common;

use std::time::{Duration, Instant};

use common::{client::Client, http, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

const UNSTABLE: &str = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events";

async fn unstable(client: &Client<'_>, method: &str, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {}", client.token);
    http::request(
        http::Target::Plain(client.h.client),
        method,
        &format!("{UNSTABLE}{path}"),
        &[("authorization", auth.as_str())],
        (method != "GET").then(|| body.to_string().into_bytes()),
    )
    .await
}

async fn bodies(client: &Client<'_>, room: &str) -> Vec<String> {
    let page = client
        .ok(
            "GET",
            &format!("rooms/{}/messages?dir=b&limit=50", encode(room)),
            json!(null),
        )
        .await;
    common::client::bodies(&page["chunk"])
}

async fn wait_for_body(client: &Client<'_>, room: &str, body: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !bodies(client, room).await.iter().any(|b| b == body) {
        assert!(Instant::now() < deadline, "{body:?} was never sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn delayed_send(
    client: &Client<'_>,
    room: &str,
    txn: &str,
    body: &str,
    delay: u64,
) -> String {
    let path = format!(
        "rooms/{}/send/m.room.message/{txn}?org.matrix.msc4140.delay={delay}",
        encode(room)
    );
    let reply = client
        .ok("PUT", &path, json!({"msgtype": "m.text", "body": body}))
        .await;
    assert!(reply.get("event_id").is_none(), "{reply}");
    reply["delay_id"].as_str().expect("delay_id").to_owned()
}

#[tokio::test]
async fn delayed_events_are_sent_restarted_cancelled_and_kept() {
    let ca = TestCa::new();
    let mut h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;

    // Sent when due, not before.
    let id = delayed_send(&alice, &room, "t1", "later", 1_500).await;
    let (status, listed) = unstable(&alice, "GET", "", json!(null)).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["delayed_events"][0]["delay_id"],
        id.as_str(),
        "{listed}"
    );
    assert!(!bodies(&alice, &room).await.contains(&"later".to_owned()));
    wait_for_body(&alice, &room, "later", Duration::from_secs(10)).await;
    // The record goes once the send is done (sent, then forgotten: a
    // crash in between sends it again under the same transaction).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, listed) = unstable(&alice, "GET", "", json!(null)).await;
        if listed["delayed_events"] == json!([]) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A retried transaction schedules once; bob cannot touch alice's.
    let first = delayed_send(&alice, &room, "t2", "cancelled", 60_000).await;
    let again = delayed_send(&alice, &room, "t2", "cancelled", 60_000).await;
    assert_eq!(first, again);
    let (_, listed) = unstable(&alice, "GET", "", json!(null)).await;
    assert_eq!(
        listed["delayed_events"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let (status, _) = unstable(&bob, "POST", &format!("/{first}/send"), json!({})).await;
    assert_eq!(status, 404);
    let (status, reply) = unstable(
        &alice,
        "POST",
        &format!("/{first}"),
        json!({"action": "cancel"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = unstable(&alice, "POST", &format!("/{first}/bogus"), json!({})).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{reply}"
    );

    // A state event, postponed by a restart of its timer.
    let path = format!(
        "rooms/{}/state/org.example.call.member/{}?org.matrix.msc4140.delay=1500",
        encode(&room),
        encode(&alice.user)
    );
    let reply = alice.ok("PUT", &path, json!({"left": true})).await;
    let state_id = reply["delay_id"].as_str().expect("delay_id").to_owned();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let (status, _) = unstable(&alice, "POST", &format!("/{state_id}/restart"), json!({})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let state_path = format!(
        "rooms/{}/state/org.example.call.member/{}",
        encode(&room),
        encode(&alice.user)
    );
    let (status, _) = alice.call("GET", &state_path, json!(null)).await;
    assert_eq!(status, 404, "restarted: not sent yet");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alice.call("GET", &state_path, json!(null)).await.0 != 200 {
        assert!(Instant::now() < deadline, "the state event was never sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // `send` sends at once; too long a delay is refused.
    let now = delayed_send(&alice, &room, "t3", "right away", 60_000).await;
    unstable(&alice, "POST", &format!("/{now}/send"), json!({})).await;
    assert!(bodies(&alice, &room)
        .await
        .contains(&"right away".to_owned()));
    let path = format!(
        "rooms/{}/send/m.room.message/t4?org.matrix.msc4140.delay=999999999999",
        encode(&room)
    );
    let (status, reply) = alice
        .call("PUT", &path, json!({"msgtype": "m.text", "body": "x"}))
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_MAX_DELAY_EXCEEDED")),
        "{reply}"
    );
    assert!(!bodies(&alice, &room)
        .await
        .contains(&"cancelled".to_owned()));

    // Scheduled, then the server killed: sent after the restart.
    delayed_send(&alice, &room, "t5", "after the crash", 1_500).await;
    h.kill();
    h.restart();
    let alice = Client::login_again(&h, "alice").await;
    wait_for_body(&alice, &room, "after the crash", Duration::from_secs(10)).await;
}
