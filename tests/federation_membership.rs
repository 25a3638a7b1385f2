//! Membership across real hearth processes: invites accepted and
//! rejected, knocks let in, leaves, and the refusals of the invite and
//! membership endpoints.

mod common;

use common::{
    identity::IdentityServer,
    rooms::{
        add_members, create, encode, federation, invite, join, knock, leave, make_public,
        member_event, membership, pending, send, user, wait_for_membership,
    },
    Hearth, TestCa,
};
use serde_json::{json, Value};

/// The types of the events in a pending membership's room state.
fn state_types(pending: &Value) -> Vec<String> {
    pending["room_state"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["type"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn invites_are_accepted_and_rejected_across_servers() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (alice, bob, carol, dave) = (
        user(&a, "alice"),
        user(&b, "bob"),
        user(&b, "carol"),
        user(&b, "dave"),
    );
    // Rooms are invite-only unless made public.
    let room = create(&a, &alice, "12").await;

    let (status, reply) = invite(&a, &room, &alice, &bob).await;
    assert_eq!(status, 200, "{reply}\nA:\n{}\nB:\n{}", a.log(), b.log());
    assert_eq!(membership(&a, &room, &bob).await.as_deref(), Some("invite"));
    let invites = pending(&b, &bob).await;
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(invites[0]["membership"], "invite");
    assert_eq!(invites[0]["room_id"], room.as_str());
    assert!(
        state_types(&invites[0]).contains(&"m.room.create".to_owned()),
        "{invites:?}"
    );
    // The invite B holds carries both servers' signatures.
    let signatures = invites[0]["event"]["signatures"]
        .as_object()
        .expect("signatures");
    assert!(signatures.contains_key(&a.server_name) && signatures.contains_key(&b.server_name));

    // Without an invite, dave cannot join; bob can, and his invite is settled.
    let (status, reply) = join(&b, &room, &dave, &[&a.server_name]).await;
    assert_eq!(status, 403, "{reply}");
    let (status, reply) = join(&b, &room, &bob, &[&a.server_name]).await;
    assert_eq!(status, 200, "{reply}\nA:\n{}\nB:\n{}", a.log(), b.log());
    wait_for_membership(&a, &room, &bob, "join", 10).await;
    assert!(pending(&b, &bob).await.is_empty());

    // Carol rejects her invite: B is in the room now, so that is B's own
    // leave event, which A receives.
    let (status, reply) = invite(&a, &room, &alice, &carol).await;
    assert_eq!(status, 200, "{reply}");
    wait_for_membership(&b, &room, &carol, "invite", 10).await;
    let (status, reply) = leave(&b, &room, &carol, &[]).await;
    assert_eq!(status, 200, "{reply}");
    wait_for_membership(&a, &room, &carol, "leave", 10).await;
    assert!(pending(&b, &carol).await.is_empty());

    // Bob leaves: both servers see it.
    let (status, reply) = leave(&b, &room, &bob, &[]).await;
    assert_eq!(status, 200, "{reply}");
    wait_for_membership(&a, &room, &bob, "leave", 10).await;
    assert_eq!(membership(&b, &room, &bob).await.as_deref(), Some("leave"));
}

#[tokio::test]
async fn an_invite_to_a_server_outside_the_room_is_rejected_through_make_leave() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (alice, erin) = (user(&a, "alice"), user(&b, "erin"));
    let room = create(&a, &alice, "12").await;
    let (status, reply) = invite(&a, &room, &alice, &erin).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(pending(&b, &erin).await.len(), 1);
    // B holds no state of the room: the rejection goes through A's
    // make_leave/send_leave (A being the inviter's server).
    let (status, reply) = leave(&b, &room, &erin, &[]).await;
    assert_eq!(status, 200, "{reply}\nA:\n{}\nB:\n{}", a.log(), b.log());
    assert_eq!(membership(&a, &room, &erin).await.as_deref(), Some("leave"));
    assert!(pending(&b, &erin).await.is_empty());
    // A leave for a user who is not in the room is refused.
    let (status, reply) = leave(&b, &room, &erin, &[&a.server_name]).await;
    assert_eq!(status, 403, "{reply}");
}

/// A server whose users have all left a room sends no join template: it
/// could not vouch for the room's state nor reach its members. The
/// joining user sees the resident's error (404), not a gateway error.
#[tokio::test]
async fn a_server_no_longer_in_a_room_does_not_let_others_join_through_it() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (alice, erin) = (user(&a, "alice"), user(&b, "erin"));
    let room = create(&a, &alice, "12").await;
    make_public(&a, &room, &alice).await;
    let (status, reply) = leave(&a, &room, &alice, &[]).await;
    assert_eq!(status, 200, "{reply}");
    for make in ["make_join", "make_knock"] {
        let uri = format!(
            "/_matrix/federation/v1/{make}/{}/{}?ver=12",
            encode(&room),
            encode(&erin)
        );
        let (status, reply) = federation(&b, &a, "GET", &uri, None).await;
        assert_eq!(status, 404, "{make}: {reply}");
        assert_eq!(reply["errcode"], "M_NOT_FOUND", "{make}: {reply}");
    }
    let (status, reply) = join(&b, &room, &erin, &[&a.server_name]).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND")),
        "{reply}"
    );
}

#[tokio::test]
async fn a_knock_is_let_in_by_an_invite() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (alice, dave) = (user(&a, "alice"), user(&b, "dave"));
    let room = create(&a, &alice, "12").await;
    // Knocking on an invite-only room is refused.
    let (status, reply) = knock(&b, &room, &dave, &[&a.server_name]).await;
    assert_eq!(status, 403, "{reply}");
    let (status, reply) = send(
        &a,
        &room,
        json!({"sender": alice, "type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");

    let (status, reply) = knock(&b, &room, &dave, &[&a.server_name]).await;
    assert_eq!(status, 200, "{reply}\nA:\n{}\nB:\n{}", a.log(), b.log());
    assert_eq!(membership(&a, &room, &dave).await.as_deref(), Some("knock"));
    let knocks = pending(&b, &dave).await;
    assert_eq!(knocks.len(), 1, "{knocks:?}");
    assert_eq!(knocks[0]["membership"], "knock");
    assert_eq!(knocks[0]["event"]["content"]["reason"], "let me in");
    let types = state_types(&knocks[0]);
    assert!(
        types.contains(&"m.room.create".to_owned())
            && types.contains(&"m.room.join_rules".to_owned()),
        "{types:?}"
    );

    // Alice lets dave in: the knock becomes an invite, then a join.
    let (status, reply) = invite(&a, &room, &alice, &dave).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(pending(&b, &dave).await[0]["membership"], "invite");
    let (status, reply) = join(&b, &room, &dave, &[&a.server_name]).await;
    assert_eq!(status, 200, "{reply}");
    wait_for_membership(&a, &room, &dave, "join", 10).await;
}

#[tokio::test]
async fn bad_invites_and_membership_events_are_refused() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = user(&a, "alice");
    let room = create(&a, &alice, "12").await;
    let template_uri = |kind: &str, user: &str| {
        format!(
            "/_matrix/federation/v1/{kind}/{}/{}",
            encode(&room),
            encode(user)
        )
    };
    // A server may only ask for templates for its own users.
    let (status, body) = federation(&b, &a, "GET", &template_uri("make_leave", &alice), None).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{body}"
    );
    // make_knock without a supported version list names the room's version.
    let (status, body) = federation(
        &b,
        &a,
        "GET",
        &template_uri("make_knock", &user(&b, "x")),
        None,
    )
    .await;
    assert_eq!(
        (
            status,
            body["errcode"].as_str(),
            body["room_version"].as_str()
        ),
        (400, Some("M_INCOMPATIBLE_ROOM_VERSION"), Some("12")),
        "{body}"
    );

    // A join template from A, sent back unsigned as a knock: refused.
    make_public(&a, &room, &alice).await;
    let frank = user(&b, "frank");
    let uri = format!("{}?ver=12", template_uri("make_join", &frank));
    let (status, template) = federation(&b, &a, "GET", &uri, None).await;
    assert_eq!(status, 200, "{template}");
    let uri = format!(
        "/_matrix/federation/v1/send_knock/{}/{}",
        encode(&room),
        encode("$notreal")
    );
    let (status, body) = federation(&b, &a, "PUT", &uri, Some(template["event"].clone())).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{body}"
    );

    // /invite: an event that is not a valid signed invite, an unknown
    // room version, and a body that is not an invite request.
    let uri = format!(
        "/_matrix/federation/v2/invite/{}/{}",
        encode(&room),
        encode("$x")
    );
    let bogus = json!({"room_version": "12", "event": template["event"], "invite_room_state": []});
    let (status, body) = federation(&a, &b, "PUT", &uri, Some(bogus)).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{body}"
    );
    let unknown = json!({"room_version": "99", "event": template["event"]});
    let (status, body) = federation(&a, &b, "PUT", &uri, Some(unknown)).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_INCOMPATIBLE_ROOM_VERSION")),
        "{body}"
    );
    let (status, body) = federation(&a, &b, "PUT", &uri, Some(json!({"event": 1}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(pending(&b, &frank).await.is_empty());
    // None of it changed the room.
    assert_eq!(membership(&a, &room, &frank).await, None);
}

/// The identity server's `/3pid/onbind` to `h` for `mxid`'s invites.
async fn on_bind(
    ca: &TestCa,
    h: &Hearth,
    mxid: &str,
    invites: &[(&str, &str, Value)],
) -> (u16, Value) {
    let invites: Vec<Value> = invites
        .iter()
        .map(|(room, sender, signed)| {
            json!({"medium": "email", "address": "bob@example.org", "mxid": mxid,
                   "room_id": room, "sender": sender, "signed": signed})
        })
        .collect();
    let body =
        json!({"medium": "email", "address": "bob@example.org", "mxid": mxid, "invites": invites});
    h.federation_request(
        ca,
        "PUT",
        "/_matrix/federation/v1/3pid/onbind",
        &[("content-type", "application/json")],
        Some(body.to_string().into_bytes()),
    )
    .await
}

#[tokio::test]
async fn a_third_party_invite_becomes_an_invite_once_the_address_is_bound() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (alice, bob) = (user(&a, "alice"), user(&b, "bob"));
    let identity = IdentityServer::new();
    let room = create(&a, &alice, "12").await;
    // Alice invites an email address; the identity server stored the
    // invite under a token and gave its public key.
    let (status, reply) = send(
        &a,
        &room,
        json!({"sender": alice, "type": "m.room.third_party_invite", "state_key": "tok123",
               "content": {"display_name": "b...@example.org",
                           "key_validity_url": "https://identity.test/_matrix/identity/v2/pubkey/isvalid",
                           "public_key": identity.public_key(),
                           "public_keys": [{"public_key": identity.public_key()}]}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");

    // Refused, and nothing stored: a block signed by another key, and one
    // for an unknown token.
    let impostor = IdentityServer::new();
    for (signed, why, says) in [
        (impostor.sign(&bob, "tok123"), "another key", "no signature"),
        (identity.sign(&bob, "unknown"), "an unknown token", "token"),
    ] {
        let (status, reply) = on_bind(&ca, &b, &bob, &[(&room, &alice, signed)]).await;
        assert_eq!(
            (status, reply["errcode"].as_str()),
            (403, Some("M_FORBIDDEN")),
            "{why}: {reply}"
        );
        assert!(
            reply["error"].as_str().is_some_and(|e| e.contains(says)),
            "{why}: {reply}"
        );
        assert_eq!(membership(&a, &room, &bob).await, None, "{why}");
        assert!(pending(&b, &bob).await.is_empty(), "{why}");
    }
    // The exchange itself refuses malformed requests clearly.
    let partial = |room_id: &str, membership: &str| {
        json!({"type": "m.room.member", "room_id": room_id, "sender": alice, "state_key": bob,
               "content": {"membership": membership,
                           "third_party_invite": {"display_name": "x", "signed": identity.sign(&bob, "tok123")}}})
    };
    let uri = format!(
        "/_matrix/federation/v1/exchange_third_party_invite/{}",
        encode(&room)
    );
    for (body, errcode) in [
        (
            partial("!other:elsewhere.test", "invite"),
            "M_INVALID_PARAM",
        ),
        (partial(&room, "join"), "M_INVALID_PARAM"),
        (json!({"type": "m.room.member"}), "M_BAD_JSON"),
    ] {
        let (status, reply) = federation(&b, &a, "PUT", &uri, Some(body)).await;
        assert_eq!(
            (status, reply["errcode"].as_str()),
            (400, Some(errcode)),
            "{reply}"
        );
    }
    // Only the invited user's server may ask.
    let carol = user(&a, "carol");
    let mut not_b = partial(&room, "invite");
    not_b["state_key"] = json!(carol);
    let (status, reply) = federation(&b, &a, "PUT", &uri, Some(not_b)).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{reply}"
    );

    // A binding for another server's user, or with too many invites.
    let (status, reply) = on_bind(&ca, &b, &alice, &[]).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{reply}"
    );
    let many: Vec<(&str, &str, Value)> = (0..51)
        .map(|_| (room.as_str(), alice.as_str(), json!({})))
        .collect();
    let (status, reply) = on_bind(&ca, &b, &bob, &many).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (413, Some("M_TOO_LARGE")),
        "{reply}"
    );
    assert!(pending(&b, &bob).await.is_empty());

    // The real binding: B asks A, A issues the invite, B co-signs it.
    let (status, reply) = on_bind(
        &ca,
        &b,
        &bob,
        &[(&room, &alice, identity.sign(&bob, "tok123"))],
    )
    .await;
    assert_eq!(status, 200, "{reply}\nA:\n{}\nB:\n{}", a.log(), b.log());
    assert_eq!(membership(&a, &room, &bob).await.as_deref(), Some("invite"));
    let invites = pending(&b, &bob).await;
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(invites[0]["room_id"], room.as_str());
    // The invite carries the name Alice's server recorded.
    let event = member_event(&a, &room, &bob)
        .await
        .expect("bob's member event");
    let third_party = &event["content"]["third_party_invite"];
    assert_eq!(third_party["display_name"], "b...@example.org", "{event}");
    assert_eq!(third_party["signed"]["mxid"], bob.as_str());

    // Bob accepts: he joins an invite-only room.
    let (status, reply) = join(&b, &room, &bob, &[&a.server_name]).await;
    assert_eq!(status, 200, "{reply}");
    wait_for_membership(&a, &room, &bob, "join", 10).await;
}

/// The members of `room` in `h`'s current state.
async fn members(h: &Hearth, room: &str) -> (bool, usize) {
    let (status, view) = common::rooms::view(h, room).await;
    assert_eq!(status, 200, "{view}");
    let count = view["state"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|e| e[0] == "m.room.member").count());
    (view["partial_state"] == true, count)
}

/// A join with partial state (`omit_members`): B stores the room without
/// most member events and fetches them after. Killed with the fetch not
/// done and A down, B refuses the room's events rather than judge them
/// against a state missing members, and once A is back it completes the
/// room and bob's messages flow.
#[tokio::test]
async fn a_partial_state_join_fetches_every_member_even_across_a_kill() {
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let mut b = Hearth::start(&ca);
    let alice = user(&a, "alice");
    let room = create(&a, &alice, "12").await;
    make_public(&a, &room, &alice).await;
    let joined = 300;
    add_members(&a, &room, joined).await;
    let everyone = joined + 2;
    let bob = user(&b, "bob");
    let (status, reply) = join(&b, &room, &bob, &[&a.server_name]).await;
    assert_eq!(status, 200, "{reply}");
    // Before B can have fetched and verified 300 member events.
    a.kill();
    b.restart();
    let (partial, count) = members(&b, &room).await;
    if partial {
        assert!(count < everyone, "{count} members while partial");
        let message = json!({"sender": bob, "type": "m.room.message", "content": {"msgtype": "m.text", "body": "early"}});
        let (status, reply) = send(&b, &room, message).await;
        assert_eq!(
            (status, reply["errcode"].as_str()),
            (503, Some("M_UNKNOWN")),
            "{reply}"
        );
    } else {
        eprintln!("B completed the join before it was killed");
    }

    a.restart();
    let retry = json!({"destination": a.server_name});
    assert_eq!(b.admin("federation/retry", retry).await.0, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while members(&b, &room).await != (false, everyone) {
        assert!(
            std::time::Instant::now() < deadline,
            "B has {:?}; log:\n{}",
            members(&b, &room).await,
            b.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let said = common::rooms::say(&b, &room, &bob, "all here").await;
    common::rooms::wait_for_events(&a, &room, &[said], 30).await;
}

/// The joining user's first message after a partial join waits for the
/// member events instead of being refused (the fetch holds the room from
/// before the join returns), and so does it after leaving and joining
/// again (a rejoin asks for the full state).
#[tokio::test]
async fn a_message_right_after_a_partial_join_waits_for_the_members() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = user(&a, "alice");
    let room = create(&a, &alice, "12").await;
    make_public(&a, &room, &alice).await;
    add_members(&a, &room, 100).await;
    let bob = user(&b, "bob");
    for round in 0..3 {
        let (status, reply) = join(&b, &room, &bob, &[&a.server_name]).await;
        assert_eq!(status, 200, "{reply}");
        let message = json!({"sender": bob, "type": "m.room.message", "content": {"msgtype": "m.text", "body": format!("hello {round}")}});
        let (status, reply) = send(&b, &room, message).await;
        assert_eq!(status, 200, "round {round}: {reply} {}", b.log());
        assert_eq!(members(&b, &room).await, (false, 102));
        let said = reply["event_id"].as_str().expect("event_id").to_owned();
        common::rooms::wait_for_events(&a, &room, &[said], 30).await;
        let leave = json!({"sender": bob, "type": "m.room.member", "state_key": bob, "content": {"membership": "leave"}});
        assert_eq!(send(&b, &room, leave).await.0, 200);
    }
}
