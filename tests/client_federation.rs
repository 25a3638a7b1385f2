//! Client features that cross servers, between two real hearths: a user
//! joining a room on another server pages back through its history from
//! before the join (fetched with `/backfill`, then kept), presence
//! reaches the other server's clients, a rejected remote invite shows up
//! as a leave in `/sync`, and knocking on a remote room.

mod common;

use std::collections::HashSet;

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

fn batch(reply: &Value) -> String {
    reply["next_batch"].as_str().expect("next_batch").to_owned()
}

/// Pages back from `from` until the server gives no `end`; the events,
/// newest first.
async fn page_back(client: &Client<'_>, room: &str, from: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut from = from.to_owned();
    for _ in 0..50 {
        let page = client
            .ok(
                "GET",
                &format!("rooms/{}/messages?dir=b&limit=7&from={from}", encode(room)),
                json!(null),
            )
            .await;
        events.extend(page["chunk"].as_array().cloned().unwrap_or_default());
        match page["end"].as_str() {
            Some(end) => from = end.to_owned(),
            None => return events,
        }
    }
    panic!("pagination did not end");
}

fn bodies(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn history_from_before_a_join_is_backfilled_and_kept() {
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;

    let room = alice
        .create_room(json!({"preset": "public_chat", "name": "History"}))
        .await;
    for i in 1..=25 {
        alice
            .ok(
                "PUT",
                &format!("rooms/{}/send/m.room.message/t{i}", encode(&room)),
                json!({"msgtype": "m.text", "body": format!("m{i}")}),
            )
            .await;
    }
    bob.ok(
        "POST",
        &format!("join/{}?server_name={}", encode(&room), a.server_name),
        json!({}),
    )
    .await;
    let sync = bob.ok("GET", "sync", json!(null)).await;
    let prev_batch = sync["rooms"]["join"][&room]["timeline"]["prev_batch"]
        .as_str()
        .unwrap_or_else(|| panic!("no prev_batch in {sync}"))
        .to_owned();

    let expected: Vec<String> = (1..=25).rev().map(|i| format!("m{i}")).collect();
    let history = page_back(&bob, &room, &prev_batch).await;
    assert_eq!(bodies(&history), expected, "{history:?} {}", b.log());
    let ids: Vec<&str> = history
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(
        ids.len(),
        ids.iter().collect::<HashSet<_>>().len(),
        "duplicates"
    );
    assert_eq!(
        history.last().map(|e| e["type"].clone()),
        Some(json!("m.room.create")),
        "the history reaches the room's creation"
    );
    // Alice's side said who she is in her join.
    assert!(history
        .iter()
        .any(|e| e["type"] == "m.room.member" && e["state_key"] == alice.user));

    // Kept: with the other server gone, the same history is still there.
    a.kill();
    let again = page_back(&bob, &room, &prev_batch).await;
    assert_eq!(bodies(&again), expected);
    assert_eq!(again.len(), history.len());
}

/// `user`'s presence as `observer`'s server knows it.
async fn presence_of(observer: &Client<'_>, user: &str) -> Value {
    let path = format!("presence/{}/status", encode(user));
    observer.ok("GET", &path, json!(null)).await
}

#[tokio::test]
async fn presence_rejected_invites_and_knocks_cross_servers() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    let carol = Client::login(&b, "carol").await;

    // A shared room, so alice's presence reaches bob's server.
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    bob.ok(
        "POST",
        &format!("join/{}?server_name={}", encode(&room), a.server_name),
        json!({}),
    )
    .await;
    let bob_since = batch(&bob.ok("GET", "sync", json!(null)).await);
    alice
        .ok(
            "PUT",
            &format!("presence/{}/status", encode(&alice.user)),
            json!({"presence": "online", "status_msg": "hello from A"}),
        )
        .await;
    bob.sync_until(&bob_since, "alice's presence", |reply| {
        reply["presence"]["events"]
            .as_array()
            .is_some_and(|events| {
                events.iter().any(|e| {
                    e["sender"] == alice.user && e["content"]["status_msg"] == "hello from A"
                })
            })
    })
    .await;
    let seen = presence_of(&bob, &alice.user).await;
    assert_eq!(seen["presence"], "online", "{seen}");

    // Carol rejects a remote invite: her sync shows the room as left.
    let private = alice.create_room(json!({"invite": [carol.user]})).await;
    // From the start of the stream: the invite may already be there.
    let invited = carol
        .sync_until("s0_0_0", "the invite", |r| {
            r["rooms"]["invite"][&private].is_object()
        })
        .await;
    carol
        .ok(
            "POST",
            &format!("rooms/{}/leave", encode(&private)),
            json!({}),
        )
        .await;
    let left = carol
        .sync_until(&batch(&invited), "the rejection", |r| {
            r["rooms"]["leave"][&private].is_object()
        })
        .await;
    let leave = &left["rooms"]["leave"][&private]["timeline"]["events"][0];
    assert_eq!(leave["content"]["membership"], "leave", "{left}");
    assert_eq!(leave["state_key"], carol.user, "{left}");
    let after = carol
        .ok("GET", &format!("sync?since={}", batch(&left)), json!(null))
        .await;
    assert!(
        after["rooms"]["leave"][&private].is_null(),
        "reported once: {after}"
    );
    let fresh = carol.ok("GET", "sync", json!(null)).await;
    assert!(fresh["rooms"]["invite"][&private].is_null(), "{fresh}");
    let member = alice
        .ok(
            "GET",
            &format!(
                "rooms/{}/state/m.room.member/{}",
                encode(&private),
                encode(&carol.user)
            ),
            json!(null),
        )
        .await;
    assert_eq!(member["membership"], "leave", "{member}");

    // Carol knocks on a room on A; alice sees it, carol's sync lists it.
    let knock_room = alice.create_room(json!({"initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]}),
    )
    .await;
    let carol_since = batch(&fresh);
    carol
        .ok(
            "POST",
            &format!("knock/{}?via={}", encode(&knock_room), a.server_name),
            json!({"reason": "hi"}),
        )
        .await;
    carol
        .sync_until(&carol_since, "the knock", |r| {
            r["rooms"]["knock"][&knock_room].is_object()
        })
        .await;
    let member = alice
        .ok(
            "GET",
            &format!(
                "rooms/{}/state/m.room.member/{}",
                encode(&knock_room),
                encode(&carol.user)
            ),
            json!(null),
        )
        .await;
    assert_eq!(member["membership"], "knock", "{member}");

    // Alice never syncs here: 30 s after she set her presence, A takes
    // her offline and tells B (Synapse's timing).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seen = presence_of(&bob, &alice.user).await;
        if seen["presence"] == "offline" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alice is still {seen}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn restricted_room_joined_through_a_space_on_another_server() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let dave = Client::login(&a, "dave").await;
    let bob = Client::login(&b, "bob").await;
    let carol = Client::login(&b, "carol").await;

    let space = alice
        .create_room(json!({"preset": "public_chat", "creation_content": {"type": "m.space"}}))
        .await;
    let restricted = alice
        .create_room(
            json!({"initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {
                "join_rule": "restricted",
                "allow": [{"type": "m.room_membership", "room_id": space}],
            }}]}),
        )
        .await;
    let path = format!("join/{}?via={}", encode(&restricted), a.server_name);

    // Not in the space: refused, on either server.
    let (status, reply) = carol.call("POST", &path, json!({})).await;
    assert_eq!(status, 403, "{reply}");
    let (status, reply) = dave.call("POST", &path, json!({})).await;
    assert_eq!(status, 403, "{reply}");

    // In the space: let in, vouched for by alice and co-signed by A.
    bob.ok(
        "POST",
        &format!("join/{}?via={}", encode(&space), a.server_name),
        json!({}),
    )
    .await;
    bob.ok("POST", &path, json!({})).await;
    let member = alice
        .ok(
            "GET",
            &format!(
                "rooms/{}/state/m.room.member/{}",
                encode(&restricted),
                encode(&bob.user)
            ),
            json!(null),
        )
        .await;
    assert_eq!(member["membership"], "join", "{member}");
    assert_eq!(
        member["join_authorised_via_users_server"], alice.user,
        "{member}"
    );
    // Bob's server has the room and sees his join too.
    let mine = bob
        .ok(
            "GET",
            &format!(
                "rooms/{}/state/m.room.member/{}",
                encode(&restricted),
                encode(&bob.user)
            ),
            json!(null),
        )
        .await;
    assert_eq!(mine["membership"], "join", "{mine}");
    // …as A co-signed it: the copy B stores carries A's signature.
    let state = bob
        .ok(
            "GET",
            &format!("rooms/{}/state", encode(&restricted)),
            json!(null),
        )
        .await;
    let join_id = state
        .as_array()
        .and_then(|events| events.iter().find(|e| e["state_key"] == bob.user))
        .and_then(|e| e["event_id"].as_str())
        .expect("bob's join in the state")
        .to_owned();
    let (_, stored) = b.admin_get(&format!("events/{}", encode(&join_id))).await;
    let signatures = &stored["event"]["signatures"];
    assert!(signatures[&a.server_name].is_object(), "{stored}");
    assert!(signatures[&b.server_name].is_object(), "{stored}");

    // A local user in the space joins without any federation.
    dave.ok("POST", &format!("join/{}", encode(&space)), json!({}))
        .await;
    dave.ok("POST", &path, json!({})).await;
}

/// `GET /_matrix/client/v1/…` (the hierarchy is not under v3).
async fn get_v1(client: &Client<'_>, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {}", client.token);
    common::http::request(
        common::http::Target::Plain(client.h.client),
        "GET",
        &format!("/_matrix/client/v1/{path}"),
        &[("authorization", auth.as_str())],
        None,
    )
    .await
}

#[tokio::test]
async fn space_hierarchy_spans_servers() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;

    let space = alice.create_room(json!({"preset": "public_chat", "name": "Space", "creation_content": {"type": "m.space"}}),
    )
    .await;
    let open = alice
        .create_room(json!({"preset": "public_chat", "name": "Public child"}))
        .await;
    let secret = alice
        .create_room(json!({"preset": "private_chat", "name": "Secret child"}))
        .await;
    for child in [&open, &secret] {
        alice
            .ok(
                "PUT",
                &format!(
                    "rooms/{}/state/m.space.child/{}",
                    encode(&space),
                    encode(child)
                ),
                json!({"via": [a.server_name]}),
            )
            .await;
    }
    bob.ok(
        "POST",
        &format!("join/{}?via={}", encode(&space), a.server_name),
        json!({}),
    )
    .await;

    // B holds the space but neither child: it asks A for them.
    let (status, tree) = get_v1(&bob, &format!("rooms/{}/hierarchy", encode(&space))).await;
    assert_eq!(status, 200, "{tree}");
    let names: Vec<&str> = tree["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["Space", "Public child"], "{tree}");
    assert_eq!(
        tree["rooms"][0]["children_state"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(tree["rooms"][0]["room_type"], "m.space");
    assert_eq!(tree["rooms"][1]["join_rule"], "public");

    // In pages of one. Like Synapse, a page ends with a `next_batch`
    // while rooms wait to be looked at, even if none of them will be
    // shown (the secret child may come last): the last page may be empty.
    let mut paged = Vec::new();
    let (mut from, mut ended) = (String::new(), false);
    for _ in 0..4 {
        let (status, page) = get_v1(
            &bob,
            &format!("rooms/{}/hierarchy?limit=1{from}", encode(&space)),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let rooms = page["rooms"].as_array().expect("rooms");
        assert!(rooms.len() <= 1, "{page}");
        paged.extend(
            rooms
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_owned)),
        );
        match page["next_batch"].as_str() {
            Some(next) => from = format!("&from={next}"),
            None => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended, "paging never ended");
    assert_eq!(paged, vec!["Space", "Public child"]);

    // A private room is not shown to someone outside it.
    let (status, _) = get_v1(&bob, &format!("rooms/{}/hierarchy", encode(&secret))).await;
    assert_eq!(status, 403);
}

/// A room joined with partial state: once its member events are fetched
/// (outliers, never in the timeline), the next incremental `/sync` gives
/// the room's whole state, members included.
#[tokio::test]
async fn members_fetched_after_a_partial_join_reach_an_incremental_sync() {
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    let room = alice
        .create_room(json!({"preset": "public_chat", "name": "Crowd"}))
        .await;
    let alice = alice.user.clone();
    let members = 300;
    let names = common::rooms::add_members(&a, &room, members).await;
    bob.ok(
        "POST",
        &format!("join/{}?server_name={}", encode(&room), a.server_name),
        json!({}),
    )
    .await;
    // Before B can have fetched and checked 300 member events.
    a.kill();
    if common::rooms::view(&b, &room).await.1["partial_state"] != true {
        eprintln!("B completed the join before A was killed");
        return;
    }
    let sync = bob.ok("GET", "sync?timeout=0", json!(null)).await;
    let before = member_keys(&sync["rooms"]["join"][&room]["state"]["events"]);
    assert!(
        before.len() < members,
        "{} members while partial",
        before.len()
    );

    a.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while common::rooms::view(&b, &room).await.1["partial_state"] != false {
        assert!(std::time::Instant::now() < deadline, "{}", b.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let path = format!("sync?since={}&timeout=0", batch(&sync));
    let after = bob.ok("GET", &path, json!(null)).await;
    let state = member_keys(&after["rooms"]["join"][&room]["state"]["events"]);
    assert!(
        names.iter().all(|name| state.contains(name)),
        "{} members in the incremental sync",
        state.len()
    );
    assert!(state.contains(&alice), "{after}");
}

fn member_keys(events: &Value) -> HashSet<String> {
    events
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "m.room.member")
        .filter_map(|e| e["state_key"].as_str().map(str::to_owned))
        .collect()
}

/// A lazy-loading `/sync` of a room without a name: its summary names the
/// members a client calls it after (a DM: the other person, whose member
/// event comes along although they said nothing), and counts members; a
/// named room gets counts only.
#[tokio::test]
async fn an_unnamed_room_is_summarised_for_lazy_loading_clients() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    let carol = Client::login(&a, "carol").await;
    let room = alice
        .create_room(json!({"is_direct": true, "invite": [bob.user]}))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while bob
        .call("POST", &format!("join/{}", encode(&room)), json!({}))
        .await
        .0
        != 200
    {
        assert!(std::time::Instant::now() < deadline, "bob could not join");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let lazy = encode(r#"{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":1}}}"#);
    let sync = |since: Option<String>| {
        let path = match since {
            Some(since) => format!("sync?filter={lazy}&since={since}&timeout=1000"),
            None => format!("sync?filter={lazy}&timeout=0"),
        };
        let alice = &alice;
        async move { alice.ok("GET", &path, json!(null)).await }
    };
    // Alice's view once bob's join has reached A.
    let mut reply = sync(None).await;
    while reply["rooms"]["join"][&room]["summary"]["m.joined_member_count"] != 2 {
        assert!(std::time::Instant::now() < deadline, "{reply}");
        reply = sync(Some(batch(&reply))).await;
    }
    // The timeline (one event) is alice's: bob's join is state.
    alice
        .ok(
            "PUT",
            &format!("rooms/{}/send/m.room.message/t1", encode(&room)),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    let first = sync(None).await;
    let entry = &first["rooms"]["join"][&room];
    assert_eq!(entry["summary"]["m.heroes"], json!([bob.user]), "{entry}");
    assert_eq!(entry["summary"]["m.invited_member_count"], 0);
    let mut members = member_keys(&entry["state"]["events"]);
    members.extend(member_keys(&entry["timeline"]["events"]));
    assert!(
        members.contains(&bob.user),
        "bob's name comes along: {entry}"
    );

    // Carol invited: counted, and a hero after bob.
    alice.invite(&room, &carol.user).await;
    let after_invite = sync(Some(batch(&first))).await;
    let summary = &after_invite["rooms"]["join"][&room]["summary"];
    assert_eq!(
        summary["m.heroes"],
        json!([bob.user, carol.user]),
        "{summary}"
    );
    assert_eq!(summary["m.invited_member_count"], 1);

    // Named, and carol joins: counts, no heroes.
    alice
        .ok(
            "PUT",
            &format!("rooms/{}/state/m.room.name/", encode(&room)),
            json!({"name": "Us"}),
        )
        .await;
    carol
        .ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let named = sync(Some(batch(&after_invite))).await;
    let summary = &named["rooms"]["join"][&room]["summary"];
    assert_eq!(summary["m.joined_member_count"], 3, "{summary}");
    assert!(summary.get("m.heroes").is_none(), "{summary}");
}
