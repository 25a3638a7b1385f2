//! Membership and messages between hearth and a real Synapse over loopback
//! federation, both ways: a hearth user joins a Synapse room, a Synapse
//! user joins a hearth room, messages arrive on both sides, and invites
//! are accepted, rejected and answered with leaves.

mod common;

use std::time::{Duration, Instant};

use common::{
    rooms::{
        create, encode, invite, join, leave, make_public, pending, say, user, view,
        wait_for_events, wait_for_membership,
    },
    synapse::Synapse,
    Hearth, TestCa,
};
use serde_json::{json, Value};

/// Waits until Synapse shows `event` in `room` to its user.
async fn synapse_sees(syn: &Synapse, token: &str, room: &str, event: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = syn
            .client_api(
                "GET",
                &format!(
                    "/_matrix/client/v3/rooms/{}/event/{}",
                    encode(room),
                    encode(event)
                ),
                Some(token),
                None,
            )
            .await;
        if status == 200 {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "Synapse never showed {event}: {body}\n{}",
            syn.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn synapse_members(syn: &Synapse, token: &str, room: &str) -> Value {
    let (status, body) = syn
        .client_api(
            "GET",
            &format!("/_matrix/client/v3/rooms/{}/joined_members", encode(room)),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["joined"].clone()
}

#[tokio::test]
async fn a_hearth_user_joins_a_synapse_room() {
    let ca = TestCa::new();
    let syn = Synapse::start(&ca);
    let h = Hearth::start(&ca);
    let token = syn.register("sam").await;
    let (status, reply) = syn
        .client_api(
            "POST",
            "/_matrix/client/v3/createRoom",
            Some(&token),
            Some(json!({"preset": "public_chat", "name": "synapse room"})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let room = reply["room_id"].as_str().expect("room_id").to_owned();
    let alice = user(&h, "alice");

    let (status, reply) = join(&h, &room, &alice, &[&syn.server_name]).await;
    assert_eq!(
        status,
        200,
        "{reply}\nhearth:\n{}\nsynapse:\n{}",
        h.log(),
        syn.log()
    );
    let join_id = reply["event_id"].as_str().expect("event_id").to_owned();
    synapse_sees(&syn, &token, &room, &join_id).await;
    assert!(synapse_members(&syn, &token, &room)
        .await
        .get(&alice)
        .is_some());
    let (_, on_h) = view(&h, &room).await;
    let state = on_h["state"].as_array().cloned().unwrap_or_default();
    assert!(
        state.iter().any(|e| e[0] == "m.room.name"),
        "the room's state arrived with the join: {on_h}"
    );

    let from_synapse = syn.say(&token, &room, "hello hearth", "t1").await;
    wait_for_events(&h, &room, &[from_synapse], 30).await;
    // Joined with partial state, completed from Synapse's `/state`.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while view(&h, &room).await.1["partial_state"] != false {
        assert!(std::time::Instant::now() < deadline, "{}", h.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let from_hearth = say(&h, &room, &alice, "hello synapse").await;
    let seen = synapse_sees(&syn, &token, &room, &from_hearth).await;
    assert_eq!(seen["content"]["body"], "hello synapse", "{seen}");

    // Synapse's typing and read-receipt EDUs reach hearth.
    let sam = syn.user_id("sam");
    let (status, reply) = syn
        .client_api(
            "PUT",
            &format!(
                "/_matrix/client/v3/rooms/{}/typing/{}",
                encode(&room),
                encode(&sam)
            ),
            Some(&token),
            Some(json!({"typing": true, "timeout": 30000})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = syn
        .client_api(
            "POST",
            &format!(
                "/_matrix/client/v3/rooms/{}/receipt/m.read/{}",
                encode(&room),
                encode(&from_hearth)
            ),
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, ephemeral) = h
            .admin_get(&format!("rooms/{}/ephemeral", encode(&room)))
            .await;
        let typing = ephemeral["typing"] == json!([sam]);
        let receipt = ephemeral["receipts"].as_array().is_some_and(|all| {
            all.iter()
                .any(|r| r[1] == sam.as_str() && r[2]["event_ids"] == json!([from_hearth]))
        });
        if typing && receipt {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "EDUs from Synapse: {ephemeral}\n{}",
            h.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_synapse_user_joins_a_hearth_room() {
    let ca = TestCa::new();
    let syn = Synapse::start(&ca);
    let h = Hearth::start(&ca);
    let token = syn.register("sam").await;
    let alice = user(&h, "alice");
    for version in ["12", "10"] {
        let room = create(&h, &alice, version).await;
        make_public(&h, &room, &alice).await;
        let (status, reply) = syn
            .client_api(
                "POST",
                &format!(
                    "/_matrix/client/v3/join/{}?server_name={}",
                    encode(&room),
                    encode(&h.server_name)
                ),
                Some(&token),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            status,
            200,
            "v{version}: {reply}\nhearth:\n{}\nsynapse:\n{}",
            h.log(),
            syn.log()
        );
        let (_, on_h) = view(&h, &room).await;
        let sam = syn.user_id("sam");
        assert!(
            on_h["state"]
                .as_array()
                .is_some_and(|s| s.iter().any(|e| e[0] == "m.room.member" && e[1] == sam)),
            "v{version}: {on_h}"
        );
        let from_hearth = say(&h, &room, &alice, "welcome").await;
        let seen = synapse_sees(&syn, &token, &room, &from_hearth).await;
        assert_eq!(seen["content"]["body"], "welcome");
        let from_synapse = syn
            .say(&token, &room, "thanks", &format!("v{version}"))
            .await;
        wait_for_events(&h, &room, &[from_synapse], 30).await;
        let members = synapse_members(&syn, &token, &room).await;
        assert!(
            members.get(&alice).is_some() && members.get(&sam).is_some(),
            "{members}"
        );
    }
}

/// A member's membership in a Synapse room, as Synapse's user sees it.
async fn synapse_membership(
    syn: &Synapse,
    token: &str,
    room: &str,
    member: &str,
) -> Option<String> {
    let (status, body) = syn
        .client_api(
            "GET",
            &format!(
                "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
                encode(room),
                encode(member)
            ),
            Some(token),
            None,
        )
        .await;
    (status == 200).then(|| body["membership"].as_str().unwrap_or_default().to_owned())
}

/// Waits until Synapse shows `member` with `expected` membership.
async fn synapse_waits_for(syn: &Synapse, token: &str, room: &str, member: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = synapse_membership(syn, token, room, member).await;
        if now.as_deref() == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Synapse shows {member} as {now:?}, not {expected}\n{}",
            syn.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn invites_between_hearth_and_synapse() {
    let ca = TestCa::new();
    let syn = Synapse::start(&ca);
    let h = Hearth::start(&ca);
    let token = syn.register("sam").await;
    let sam = syn.user_id("sam");
    let (alice, bob) = (user(&h, "alice"), user(&h, "bob"));
    for version in ["12", "10"] {
        // Sam invites alice and bob to a private Synapse room.
        let (status, reply) = syn
            .client_api(
                "POST",
                "/_matrix/client/v3/createRoom",
                Some(&token),
                Some(json!({"preset": "private_chat", "room_version": version, "invite": [alice, bob]})),
            )
            .await;
        assert_eq!(
            status,
            200,
            "v{version}: {reply}\nhearth:\n{}\nsynapse:\n{}",
            h.log(),
            syn.log()
        );
        let room = reply["room_id"].as_str().expect("room_id").to_owned();
        let invites = pending(&h, &alice).await;
        let received = invites.iter().find(|p| p["room_id"] == room.as_str());
        assert!(
            received.is_some_and(|i| i["membership"] == "invite"),
            "v{version}: {invites:?}"
        );

        // Alice accepts, then leaves; bob rejects.
        let (status, reply) = join(&h, &room, &alice, &[&syn.server_name]).await;
        assert_eq!(
            status,
            200,
            "v{version}: {reply}\nhearth:\n{}\nsynapse:\n{}",
            h.log(),
            syn.log()
        );
        synapse_waits_for(&syn, &token, &room, &alice, "join").await;
        let (status, reply) = leave(&h, &room, &bob, &[]).await;
        assert_eq!(
            status,
            200,
            "v{version}: {reply}\nhearth:\n{}\nsynapse:\n{}",
            h.log(),
            syn.log()
        );
        synapse_waits_for(&syn, &token, &room, &bob, "leave").await;
        assert!(pending(&h, &bob)
            .await
            .iter()
            .all(|p| p["room_id"] != room.as_str()));
        let (status, reply) = leave(&h, &room, &alice, &[]).await;
        assert_eq!(status, 200, "v{version}: {reply}");
        synapse_waits_for(&syn, &token, &room, &alice, "leave").await;

        // Alice invites sam to an invite-only hearth room; sam gets in.
        let room = create(&h, &alice, version).await;
        let (status, reply) = invite(&h, &room, &alice, &sam).await;
        assert_eq!(
            status,
            200,
            "v{version}: {reply}\nhearth:\n{}\nsynapse:\n{}",
            h.log(),
            syn.log()
        );
        let (status, reply) = syn
            .client_api(
                "POST",
                &format!(
                    "/_matrix/client/v3/join/{}?server_name={}",
                    encode(&room),
                    encode(&h.server_name)
                ),
                Some(&token),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            status,
            200,
            "v{version}: {reply}\nhearth:\n{}\nsynapse:\n{}",
            h.log(),
            syn.log()
        );
        wait_for_membership(&h, &room, &sam, "join", 30).await;
    }
}
