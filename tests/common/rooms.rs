//! Driving rooms on a running hearth through its admin API, as the tests
//! of rooms and federation do before the client API exists.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Hearth;

/// Percent-encodes a room or event ID for a path segment.
pub fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn user(h: &Hearth, name: &str) -> String {
    format!("@{name}:{}", h.server_name)
}

/// Creates a room as `creator` (a local user) and returns its ID.
pub async fn create(h: &Hearth, creator: &str, version: &str) -> String {
    let (status, reply) = h
        .admin(
            "rooms",
            json!({"creator": creator, "room_version": version}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    reply["room_id"].as_str().expect("room_id").to_owned()
}

/// Sends an event as a local user; returns (status, reply).
pub async fn send(h: &Hearth, room: &str, event: Value) -> (u16, Value) {
    h.admin(&format!("rooms/{}/send", encode(room)), event)
        .await
}

/// Sends a message and returns its event ID.
pub async fn say(h: &Hearth, room: &str, sender: &str, body: &str) -> String {
    let (status, reply) = send(
        h,
        room,
        json!({"sender": sender, "type": "m.room.message", "content": {"msgtype": "m.text", "body": body}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    reply["event_id"].as_str().expect("event_id").to_owned()
}

/// Makes a room joinable by anyone.
pub async fn make_public(h: &Hearth, room: &str, admin: &str) {
    let (status, reply) = send(
        h,
        room,
        json!({"sender": admin, "type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

/// Joins a local user to a room held by `servers`; returns (status, reply).
pub async fn join(h: &Hearth, room: &str, user: &str, servers: &[&str]) -> (u16, Value) {
    h.admin(
        &format!("rooms/{}/join", encode(room)),
        json!({"user": user, "servers": servers}),
    )
    .await
}

/// The room as the server sees it: version, state, extremities, timeline.
pub async fn view(h: &Hearth, room: &str) -> (u16, Value) {
    let token = h.admin_token();
    super::http::request(
        super::http::Target::Plain(h.client),
        "GET",
        &format!("/_hearth/admin/v1/rooms/{}", encode(room)),
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .await
}

pub fn timeline(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (up to `secs`) until `h`'s timeline of `room` holds every one of
/// `events`, and returns the timeline.
pub async fn wait_for_events(h: &Hearth, room: &str, events: &[String], secs: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = view(h, room).await;
        let timeline = if status == 200 {
            timeline(&body)
        } else {
            Vec::new()
        };
        if events.iter().all(|e| timeline.contains(e)) {
            return timeline;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not receive {events:?} within {secs}s; timeline {timeline:?}; log:\n{}",
            h.server_name,
            h.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A public v12 room created on `a` by alice with bob of `b` joined;
/// returns (room, alice, bob).
pub async fn shared_room(a: &Hearth, b: &Hearth) -> (String, String, String) {
    let (alice, bob) = (user(a, "alice"), user(b, "bob"));
    let room = create(a, &alice, "12").await;
    make_public(a, &room, &alice).await;
    let (status, reply) = join(b, &room, &bob, &[&a.server_name]).await;
    assert_eq!(
        status,
        200,
        "{reply}
A:
{}
B:
{}",
        a.log(),
        b.log()
    );
    (room, alice, bob)
}
