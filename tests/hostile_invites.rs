//! Invites from other servers, as a hostile one would send them: for
//! users we do not have, with heaps of room state, or for a room another
//! server already invited our user to.

mod common;

use common::{
    rooms::{create, encode, federation, invite, make_public, pending, user},
    signing::sign_as,
    Hearth, TestCa,
};
use ruma::RoomVersionId;
use serde_json::{json, Value};

/// An invite of `target` by `sender` (a user of `inviter`) to `room`, in
/// the shape of `resident`'s join template for `joiner`, signed by
/// `inviter`; returns its ID and the signed event.
async fn forged_invite(
    inviter: &mut Hearth,
    resident: &Hearth,
    room: &str,
    sender: &str,
    target: &str,
) -> (String, Value) {
    let uri = format!(
        "/_matrix/federation/v1/make_join/{}/{}?ver=2",
        encode(room),
        encode(sender)
    );
    let (status, template) = federation(inviter, resident, "GET", &uri, None).await;
    assert_eq!(status, 200, "{template}");
    let mut event = template["event"].clone();
    event["sender"] = json!(sender);
    event["state_key"] = json!(target);
    event["content"] = json!({"membership": "invite"});
    event["event_id"] = json!(format!("$forged:{}", inviter.server_name));
    sign_as(inviter, event, &RoomVersionId::V2)
}

fn stripped_name(sender: &str, name: &str) -> Value {
    json!({"type": "m.room.name", "state_key": "", "sender": sender, "content": {"name": name}})
}

async fn send_invite(
    from: &Hearth,
    to: &Hearth,
    room: &str,
    id: &str,
    event: Value,
    state: Vec<Value>,
) -> (u16, Value) {
    let uri = format!(
        "/_matrix/federation/v2/invite/{}/{}",
        encode(room),
        encode(id)
    );
    let body = json!({"room_version": "2", "event": event, "invite_room_state": state});
    federation(from, to, "PUT", &uri, Some(body)).await
}

/// A (alice's public room of version 2), B (erin's server) and C
/// (mallory's, not in the room).
struct Servers {
    a: Hearth,
    b: Hearth,
    c: Hearth,
    room: String,
    alice: String,
    erin: String,
    mallory: String,
}

async fn servers(ca: &TestCa) -> Servers {
    let (a, b, c) = (Hearth::start(ca), Hearth::start(ca), Hearth::start(ca));
    let (alice, erin, mallory) = (user(&a, "alice"), user(&b, "erin"), user(&c, "mallory"));
    let room = create(&a, &alice, "2").await;
    make_public(&a, &room, &alice).await;
    Servers {
        a,
        b,
        c,
        room,
        alice,
        erin,
        mallory,
    }
}

#[tokio::test]
async fn a_second_servers_invite_does_not_replace_the_first() {
    let ca = TestCa::new();
    let Servers {
        a,
        b,
        mut c,
        room,
        alice,
        erin,
        mallory,
    } = servers(&ca).await;
    let (status, reply) = invite(&a, &room, &alice, &erin).await;
    assert_eq!(status, 200, "{reply}");
    let first = pending(&b, &erin).await;
    assert_eq!(first.len(), 1, "{first:?}");

    // C, not in the room, invites erin to the same room ID, naming it.
    let (id, forged) = forged_invite(&mut c, &a, &room, &mallory, &erin).await;
    let (status, reply) = send_invite(
        &c,
        &b,
        &room,
        &id,
        forged,
        vec![stripped_name(&mallory, "Impostor")],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let held = pending(&b, &erin).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["event"]["sender"], json!(alice), "{held:?}");
}

#[tokio::test]
async fn invites_for_unknown_users_or_with_heaps_of_state_are_refused() {
    let ca = TestCa::new();
    let Servers {
        a,
        b,
        mut c,
        room,
        erin,
        mallory,
        ..
    } = servers(&ca).await;

    let nobody = format!("@nobody:{}", b.server_name);
    let (id, forged) = forged_invite(&mut c, &a, &room, &mallory, &nobody).await;
    let (status, reply) = send_invite(&c, &b, &room, &id, forged, vec![]).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND")),
        "{reply}"
    );
    assert!(pending(&b, &nobody).await.is_empty());

    let (id, forged) = forged_invite(&mut c, &a, &room, &mallory, &erin).await;
    let heaps: Vec<Value> = (0..60)
        .map(|i| stripped_name(&mallory, &format!("{i}").repeat(5000)))
        .collect();
    let (status, reply) = send_invite(&c, &b, &room, &id, forged, heaps).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (413, Some("M_TOO_LARGE")),
        "{reply}"
    );
    assert!(pending(&b, &erin).await.is_empty());
}
