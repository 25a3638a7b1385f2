//! The v1 federation endpoints older servers still call, on real hearth
//! processes: `PUT /v1/send_join`, `/v1/send_leave` and `/v1/invite`
//! answer in the v1 shape (`[200, answer]`) after the same checks as v2,
//! and `GET /key/v2/query/{serverName}/{keyId}` gives the server's keys.
//! hearth itself speaks v2, so the events are signed here, with the
//! sending server's own key read from its data directory while it is
//! down, as that server would sign them.

mod common;

use common::{
    rooms::{create, encode, federation, make_public, membership, pending, user},
    signing::sign_as,
    Hearth, TestCa,
};
use ruma::RoomVersionId;
use serde_json::{json, Value};

/// A membership template from `resident` for `user` of `joiner`.
async fn template(joiner: &Hearth, resident: &Hearth, make: &str, room: &str, user: &str) -> Value {
    let uri = format!(
        "/_matrix/federation/v1/{make}/{}/{}?ver=12",
        encode(room),
        encode(user)
    );
    let (status, reply) = federation(joiner, resident, "GET", &uri, None).await;
    assert_eq!(status, 200, "{make}: {reply}");
    reply["event"].clone()
}

#[tokio::test]
async fn v1_send_join_and_send_leave_answer_in_the_v1_shape() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let mut b = Hearth::start(&ca);
    let (alice, erin) = (user(&a, "alice"), user(&b, "erin"));
    let room = create(&a, &alice, "12").await;
    make_public(&a, &room, &alice).await;
    let v12 = RoomVersionId::V12;

    let join = template(&b, &a, "make_join", &room, &erin).await;
    let (id, join) = sign_as(&mut b, join, &v12);
    let uri = format!(
        "/_matrix/federation/v1/send_join/{}/{}",
        encode(&room),
        encode(&id)
    );
    let (status, reply) = federation(&b, &a, "PUT", &uri, Some(join)).await;
    assert_eq!((status, &reply[0]), (200, &json!(200)), "{reply}");
    assert!(
        reply[1]["state"].as_array().is_some_and(|s| !s.is_empty()),
        "{reply}"
    );
    assert!(reply[1]["auth_chain"].is_array(), "{reply}");
    assert_eq!(membership(&a, &room, &erin).await.as_deref(), Some("join"));

    let leave = template(&b, &a, "make_leave", &room, &erin).await;
    let (id, leave) = sign_as(&mut b, leave, &v12);
    let uri = format!(
        "/_matrix/federation/v1/send_leave/{}/{}",
        encode(&room),
        encode(&id)
    );
    let (status, reply) = federation(&b, &a, "PUT", &uri, Some(leave.clone())).await;
    assert_eq!((status, &reply), (200, &json!([200, {}])), "{reply}");
    assert_eq!(membership(&a, &room, &erin).await.as_deref(), Some("leave"));

    // The same checks as v2: an event whose ID the path misnames is refused.
    let uri = format!(
        "/_matrix/federation/v1/send_leave/{}/{}",
        encode(&room),
        encode("$other")
    );
    let (status, reply) = federation(&b, &a, "PUT", &uri, Some(leave)).await;
    assert_eq!(status, 400, "{reply}");
}

#[tokio::test]
async fn v1_invite_is_countersigned_and_kept() {
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (alice, erin) = (user(&a, "alice"), user(&b, "erin"));
    // v1 invites are for rooms of version 1 and 2, which name event IDs.
    let room = create(&a, &alice, "2").await;
    make_public(&a, &room, &alice).await;
    let uri = format!(
        "/_matrix/federation/v1/make_join/{}/{}?ver=2",
        encode(&room),
        encode(&alice)
    );
    // alice's own join template gives the room's prev and auth events in
    // the v1/v2 shape; the invite cites the same.
    let (status, shape) = federation(&b, &a, "GET", &uri, None).await;
    assert_eq!(status, 403, "alice is not B's user: {shape}");
    let uri = format!(
        "/_matrix/federation/v1/make_join/{}/{}?ver=2",
        encode(&room),
        encode(&erin)
    );
    let (status, shape) = federation(&b, &a, "GET", &uri, None).await;
    assert_eq!(status, 200, "{shape}");
    let mut invite = shape["event"].clone();
    invite["sender"] = json!(alice);
    invite["content"] = json!({"membership": "invite"});
    invite["event_id"] = json!(format!("$v1invite:{}", a.server_name));
    invite["unsigned"] = json!({"invite_room_state": [
        {"type": "m.room.join_rules", "state_key": "", "sender": alice, "content": {"join_rule": "public"}}]});
    let (id, invite) = sign_as(&mut a, invite, &RoomVersionId::V2);

    let uri = format!(
        "/_matrix/federation/v1/invite/{}/{}",
        encode(&room),
        encode(&id)
    );
    let (status, reply) = federation(&a, &b, "PUT", &uri, Some(invite)).await;
    assert_eq!((status, &reply[0]), (200, &json!(200)), "{reply}");
    let signed = &reply[1]["event"];
    assert!(signed["signatures"][&b.server_name].is_object(), "{reply}");
    assert!(signed["signatures"][&a.server_name].is_object(), "{reply}");
    let held = pending(&b, &erin).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["membership"], "invite", "{held:?}");
}

#[tokio::test]
async fn key_query_with_a_key_id_gives_the_servers_keys() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let own = a.server_keys(&ca).await;
    let key_id = common::current_key_id(&own);
    let uri = format!(
        "/_matrix/key/v2/query/{}/{}",
        a.server_name,
        encode(&key_id)
    );
    let (status, reply) = a.federation_request(&ca, "GET", &uri, &[], None).await;
    assert_eq!(status, 200, "{reply}");
    let keys = reply["server_keys"].as_array().expect("server_keys");
    assert!(
        keys.iter().any(|k| k["verify_keys"].get(&key_id).is_some()),
        "{reply}"
    );
}
