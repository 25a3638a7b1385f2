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

/// `@name:server` of `h`, an account there (made unless it exists: a
/// server keeps invites only for users it has).
pub fn user(h: &Hearth, name: &str) -> String {
    let out = h
        .command(&["user", "add", name, "--password", super::client::PASSWORD])
        .output()
        .expect("user add");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("taken") || stderr.contains("exists"),
        "user add {name}: {stderr}"
    );
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

/// Joins `count` local users (`@member0`, `@member1`, …) to a public
/// room; returns their IDs. They have no accounts (thousands would take
/// minutes to make): the admin API sends as any local user.
pub async fn add_members(h: &Hearth, room: &str, count: usize) -> Vec<String> {
    let mut members = Vec::with_capacity(count);
    for i in 0..count {
        let member = format!("@member{i}:{}", h.server_name);
        let event = json!({"sender": member, "type": "m.room.member", "state_key": member, "content": {"membership": "join"}});
        let (status, reply) = send(h, room, event).await;
        assert_eq!(status, 200, "{reply}");
        members.push(member);
    }
    members
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
    h.admin_get(&format!("rooms/{}", encode(room))).await
}

/// `sender` (local) invites `target`; returns (status, reply).
pub async fn invite(h: &Hearth, room: &str, sender: &str, target: &str) -> (u16, Value) {
    h.admin(
        &format!("rooms/{}/invite", encode(room)),
        json!({"sender": sender, "user": target}),
    )
    .await
}

/// A local user leaves (or rejects an invite, or retracts a knock).
pub async fn leave(h: &Hearth, room: &str, user: &str, servers: &[&str]) -> (u16, Value) {
    h.admin(
        &format!("rooms/{}/leave", encode(room)),
        json!({"user": user, "servers": servers}),
    )
    .await
}

/// A local user knocks on a room held by `servers`.
pub async fn knock(h: &Hearth, room: &str, user: &str, servers: &[&str]) -> (u16, Value) {
    h.admin(
        &format!("rooms/{}/knock", encode(room)),
        json!({"user": user, "servers": servers, "reason": "let me in"}),
    )
    .await
}

/// A local user's pending invites and knocks.
pub async fn pending(h: &Hearth, user: &str) -> Vec<Value> {
    let (status, reply) = h
        .admin_get(&format!("users/{}/pending", encode(user)))
        .await;
    assert_eq!(status, 200, "{reply}");
    reply["pending"].as_array().cloned().unwrap_or_default()
}

/// `user`'s member event in the room's current state on `h`, if any.
pub async fn member_event(h: &Hearth, room: &str, user: &str) -> Option<Value> {
    let (status, body) = view(h, room).await;
    if status != 200 {
        return None;
    }
    let entry = body["state"]
        .as_array()?
        .iter()
        .find(|e| e[0] == "m.room.member" && e[1] == user)?
        .clone();
    let (status, event) = h
        .admin_get(&format!("events/{}", encode(entry[2].as_str()?)))
        .await;
    assert_eq!(status, 200, "{event}");
    Some(event["event"].clone())
}

/// `user`'s membership in the room's current state on `h`, if any.
pub async fn membership(h: &Hearth, room: &str, user: &str) -> Option<String> {
    member_event(h, room, user).await?["content"]["membership"]
        .as_str()
        .map(str::to_owned)
}

/// Waits (up to `secs`) until `user`'s membership on `h` is `expected`.
pub async fn wait_for_membership(h: &Hearth, room: &str, user: &str, expected: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let now = membership(h, room, user).await;
        if now.as_deref() == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{user} on {} is {now:?}, not {expected}, after {secs}s; log:\n{}",
            h.server_name,
            h.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// Sends a signed request from `from` to `to` through `from`'s admin API.
/// Waits until `from` has nothing queued for `to`: `to` acknowledged,
/// so it holds every event sent so far durably.
pub async fn wait_until_delivered(from: &Hearth, to: &Hearth) {
    let started = std::time::Instant::now();
    loop {
        let (status, reply) = from.admin_get("federation/status").await;
        assert_eq!(status, 200, "{reply}");
        let queued = reply["destinations"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["destination"] == to.server_name.as_str())
            .and_then(|d| d["queued"].as_u64())
            .unwrap_or(0);
        if queued == 0 {
            return;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "{} still has {queued} queued for {}",
            from.server_name,
            to.server_name
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub async fn federation(
    from: &Hearth,
    to: &Hearth,
    method: &str,
    uri: &str,
    content: Option<Value>,
) -> (u16, Value) {
    let (status, reply) = from
        .admin(
            "federation/request",
            json!({"destination": to.server_name, "method": method, "uri": uri, "content": content}),
        )
        .await;
    assert_eq!(
        status,
        200,
        "{reply}\n{}:\n{}\n{}:\n{}",
        from.server_name,
        from.log(),
        to.server_name,
        to.log()
    );
    (
        reply["status"].as_u64().expect("status") as u16,
        reply["body"].clone(),
    )
}
