//! Rooms shared between real hearth processes over loopback federation:
//! joins through make_join/send_join, events delivered by the outbound
//! sender (also when it is killed mid-delivery), transactions replayed,
//! and what a server outside a room may see.

mod common;

use common::{
    dns::TestDns,
    free_port,
    presigned::Presigned,
    rooms::{
        create, encode, federation, join, make_public, say, send, shared_room, timeline, user,
        view, wait_for_events, wait_until_delivered,
    },
    Hearth, TestCa,
};
use serde_json::{json, Value};

/// The state of a view as a sorted list, for comparing two servers.
fn state(view: &Value) -> Vec<Value> {
    let mut state = view["state"].as_array().cloned().unwrap_or_default();
    state.sort_by_key(|e| e.to_string());
    state
}

#[tokio::test]
async fn a_remote_user_joins_and_messages_flow_both_ways() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (alice, bob) = (user(&a, "alice"), user(&b, "bob"));
    let room = create(&a, &alice, "12").await;
    make_public(&a, &room, &alice).await;

    let (status, reply) = join(&b, &room, &bob, &[&a.server_name]).await;
    assert_eq!(status, 200, "{reply}\nA:\n{}\nB:\n{}", a.log(), b.log());
    let join_id = reply["event_id"].as_str().expect("event_id").to_owned();
    // A took the join in; both servers agree on the room's state.
    wait_for_events(&a, &room, std::slice::from_ref(&join_id), 5).await;
    let (_, on_a) = view(&a, &room).await;
    let (_, on_b) = view(&b, &room).await;
    assert_eq!(state(&on_a), state(&on_b), "state differs");
    assert!(
        state(&on_b)
            .iter()
            .any(|e| e[0] == "m.room.member" && e[1] == bob),
        "{on_b}"
    );
    assert_eq!(
        timeline(&on_b),
        vec![join_id.clone()],
        "B's history starts at its join"
    );

    // A's messages reach B and B's reach A, in order.
    let mut from_a = Vec::new();
    for i in 0..5 {
        from_a.push(say(&a, &room, &alice, &format!("hello {i}")).await);
    }
    let on_b = wait_for_events(&b, &room, &from_a, 10).await;
    let positions: Vec<usize> = from_a
        .iter()
        .map(|id| on_b.iter().position(|e| e == id).expect("present"))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order: {on_b:?}"
    );
    let reply_id = say(&b, &room, &bob, "hi alice").await;
    wait_for_events(&a, &room, &[reply_id], 10).await;

    // A state change on B is accepted on A: the same state again.
    let (status, reply) = send(
        &b,
        &room,
        json!({"sender": bob, "type": "m.room.member", "state_key": bob, "content": {"membership": "join", "displayname": "Bob"}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let profile = reply["event_id"].as_str().expect("id").to_owned();
    wait_for_events(&a, &room, &[profile], 10).await;
    let (_, on_a) = view(&a, &room).await;
    let (_, on_b) = view(&b, &room).await;
    assert_eq!(
        state(&on_a),
        state(&on_b),
        "state differs after the profile change"
    );
}

/// Sets the topic as `sender`; returns the event ID.
async fn set_topic(h: &Hearth, room: &str, sender: &str, topic: &str) -> String {
    let (status, reply) = send(
        h,
        room,
        json!({"sender": sender, "type": "m.room.topic", "state_key": "", "content": {"topic": topic}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    reply["event_id"].as_str().expect("event_id").to_owned()
}

fn sha1(id: &str) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, id.as_bytes());
    digest.as_ref().to_vec()
}

#[tokio::test]
async fn a_version_1_room_forks_and_both_servers_resolve_it_alike() {
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let mut b = Hearth::start(&ca);
    let (alice, bob) = (user(&a, "alice"), user(&b, "bob"));
    let room = create(&a, &alice, "1").await;
    make_public(&a, &room, &alice).await;
    let (status, reply) = join(&b, &room, &bob, &[&a.server_name]).await;
    assert_eq!(status, 200, "{reply}\nA:\n{}\nB:\n{}", a.log(), b.log());
    // Bob may set the topic too.
    let (status, reply) = send(
        &a,
        &room,
        json!({"sender": alice, "type": "m.room.power_levels", "state_key": "",
               "content": {"users": {&alice: 100, &bob: 100}, "state_default": 50}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let power = reply["event_id"].as_str().expect("event_id").to_owned();
    assert!(power.ends_with(&format!(":{}", a.server_name)), "{power}");
    wait_for_events(&b, &room, &[power], 10).await;
    // Seen is not yet acknowledged: B must hold it durably before the kill.
    wait_until_delivered(&a, &b).await;

    // Each side sets the topic while the other is down: two events of the
    // same depth on the same key.
    b.kill();
    let from_a = set_topic(&a, &room, &alice, "alice's").await;
    a.kill();
    b.restart();
    let from_b = set_topic(&b, &room, &bob, "bob's").await;
    a.restart();
    // Each side backs off the other (its sends failed while the other was
    // down, and that survives a restart): try again now.
    for (h, other) in [(&a, &b), (&b, &a)] {
        let retry = json!({"destination": other.server_name});
        assert_eq!(h.admin("federation/retry", retry).await.0, 200);
    }
    wait_for_events(&a, &room, std::slice::from_ref(&from_b), 30).await;
    wait_for_events(&b, &room, std::slice::from_ref(&from_a), 30).await;

    // v1 resolution: equal depth, both allowed: the lower SHA-1 of the ID.
    let expected = if sha1(&from_a) < sha1(&from_b) {
        &from_a
    } else {
        &from_b
    };
    for h in [&a, &b] {
        let (_, view) = view(h, &room).await;
        assert_eq!(view["room_version"], "1");
        assert_eq!(
            view["extremities"].as_array().map(Vec::len),
            Some(2),
            "{}: {view}",
            h.server_name
        );
        let topic = state(&view)
            .into_iter()
            .find(|e| e[0] == "m.room.topic")
            .expect("a topic");
        assert_eq!(&topic[2], expected, "{}: {view}", h.server_name);
    }
    // A message on top joins the two branches; the states still agree.
    let merge = say(&a, &room, &alice, "both topics seen").await;
    wait_for_events(&b, &room, &[merge], 10).await;
    let (_, on_a) = view(&a, &room).await;
    let (_, on_b) = view(&b, &room).await;
    assert_eq!(state(&on_a), state(&on_b), "state differs after the merge");
}

#[tokio::test]
async fn a_destination_that_was_down_gets_everything_in_order_once() {
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let mut b = Hearth::start(&ca);
    let (room, alice, _) = shared_room(&a, &b).await;

    b.kill();
    let mut sent = Vec::new();
    for i in 0..8 {
        sent.push(say(&a, &room, &alice, &format!("while you were away {i}")).await);
    }
    // The queue is durable: A dies too before B comes back.
    a.kill();
    a.restart();
    b.restart();
    let on_b = wait_for_events(&b, &room, &sent, 30).await;
    let positions: Vec<usize> = sent
        .iter()
        .map(|id| on_b.iter().position(|e| e == id).expect("present"))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order: {on_b:?}"
    );
    let mut unique = on_b.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), on_b.len(), "an event stored twice: {on_b:?}");
}

#[tokio::test]
async fn killing_the_sender_mid_delivery_loses_nothing_and_duplicates_nothing() {
    const MESSAGES: usize = 300;
    const PDUS: &str = "hearth_federation_inbound_pdus_total";
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let mut b = Hearth::start_with(&ca, &[("HEARTH_METRICS__ENABLED", "true")]);
    let (room, alice, _) = shared_room(&a, &b).await;

    b.kill();
    let mut sent = Vec::new();
    for i in 0..MESSAGES {
        sent.push(say(&a, &room, &alice, &format!("queued {i}")).await);
    }
    b.restart();
    // B reaching A clears A's backoff: A starts draining at once, a
    // transaction at a time. A is killed the moment B has taken some of
    // them, while the next ones are on their way.
    federation(&b, &a, "GET", "/_matrix/federation/v1/version", None).await;
    let started = std::time::Instant::now();
    while b.metric(PDUS).await == 0 {
        assert!(started.elapsed().as_secs() < 30, "A never sent");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    a.kill();
    let taken_before = b.metric(PDUS).await;
    assert!(
        taken_before < MESSAGES as u64,
        "A finished before it was killed ({taken_before} taken)"
    );
    a.restart();
    federation(&b, &a, "GET", "/_matrix/federation/v1/version", None).await;

    let on_b = wait_for_events(&b, &room, &sent, 60).await;
    let positions: Vec<usize> = sent
        .iter()
        .map(|id| on_b.iter().position(|e| e == id).expect("present"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "out of order");
    let mut unique = on_b.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), on_b.len(), "an event stored twice");
}

#[tokio::test]
async fn after_a_long_outage_the_newest_event_comes_and_the_gap_is_bridged() {
    let ca = TestCa::new();
    // Anything undelivered for over a second counts as a long outage.
    let a = Hearth::start_with(&ca, &[("HEARTH_FEDERATION__CATCH_UP_AFTER_SECS", "1")]);
    let mut b = Hearth::start(&ca);
    let (room, alice, bob) = shared_room(&a, &b).await;

    b.kill();
    // A state change early in the outage, further back than
    // get_missing_events reaches: B can only learn it from /state_ids.
    let (status, reply) = send(
        &a,
        &room,
        json!({"sender": alice, "type": "m.room.topic", "state_key": "", "content": {"topic": "while B slept"}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    // More new state than B fetches one event at a time: it takes /state.
    for i in 0..60 {
        let (status, reply) = join(&a, &room, &user(&a, &format!("guest{i}")), &[]).await;
        assert_eq!(status, 200, "{reply}");
    }
    let mut sent = Vec::new();
    for i in 0..40 {
        sent.push(say(&a, &room, &alice, &format!("while you were away {i}")).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    b.restart();

    let newest = sent.last().expect("sent").clone();
    let on_b = wait_for_events(&b, &room, std::slice::from_ref(&newest), 60).await;
    assert!(
        !on_b.contains(&sent[0]),
        "every stale event was sent, not just the newest: {on_b:?}\n{}",
        a.log()
    );
    // get_missing_events brought the last 20 before it, in order.
    let recent: Vec<usize> = sent[sent.len() - 10..]
        .iter()
        .map(|id| {
            on_b.iter()
                .position(|e| e == id)
                .expect("recent event on B")
        })
        .collect();
    assert!(recent.windows(2).all(|w| w[0] < w[1]), "{on_b:?}");
    let ((_, on_a), (_, on_b)) = (view(&a, &room).await, view(&b, &room).await);
    assert_eq!(state(&on_a), state(&on_b), "B's state differs\n{}", b.log());
    assert!(
        state(&on_b).iter().any(|entry| entry[0] == "m.room.topic"),
        "B missed the topic: {on_b}"
    );

    // B's DAG holds together: its next event, on both extremities, is
    // accepted by A.
    let reply = say(&b, &room, &bob, "back").await;
    wait_for_events(&a, &room, &[reply], 30).await;
}

/// A room's server ACL shuts a server out: its PDUs are refused (with
/// the reason in the answer) and not stored, and it may not read the room.
/// ACLs match host names, so the denied server has one.
#[tokio::test]
async fn a_server_the_room_acl_denies_is_refused() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let (key, value) = dns.env();
    let a = Hearth::start_with(&ca, &[(key, &value)]);
    let port = free_port();
    dns.add_ip("c.hearth.test", [127, 0, 0, 1].into());
    let c = Hearth::start_at(
        &ca,
        &format!("c.hearth.test:{port}"),
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        &[],
    );
    let (alice, carol) = (user(&a, "alice"), user(&c, "carol"));
    let room = create(&a, &alice, "12").await;
    make_public(&a, &room, &alice).await;
    let (status, reply) = join(&c, &room, &carol, &[&a.server_name]).await;
    assert_eq!(status, 200, "{reply}\n{}", a.log());
    let before = say(&c, &room, &carol, "before the ACL").await;
    wait_for_events(&a, &room, std::slice::from_ref(&before), 10).await;

    let acl = json!({"sender": alice, "type": "m.room.server_acl", "state_key": "",
                     "content": {"allow": ["*"], "deny": ["c.hearth.test"], "allow_ip_literals": true}});
    let (status, reply) = send(&a, &room, acl).await;
    assert_eq!(status, 200, "{reply}");
    let after = say(&c, &room, &carol, "after the ACL").await;
    let (status, stored) = c.admin_get(&format!("events/{}", encode(&after))).await;
    assert_eq!(status, 200, "{stored}");
    let txn = |pdus: Value| json!({"origin": c.server_name, "origin_server_ts": 1, "pdus": pdus, "edus": []});
    let (status, answer) = federation(
        &c,
        &a,
        "PUT",
        "/_matrix/federation/v1/send/acl-1",
        Some(txn(json!([stored["event"]]))),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let error = answer["pdus"][&after]["error"].as_str().unwrap_or_default();
    assert!(error.contains("server ACL denies"), "{answer}");
    // Two more transactions from C: once the last is answered, the first
    // has been taken in (an origin has at most two staged at a time).
    for id in ["acl-2", "acl-3"] {
        let uri = format!("/_matrix/federation/v1/send/{id}");
        let (status, _) = federation(&c, &a, "PUT", &uri, Some(txn(json!([])))).await;
        assert_eq!(status, 200);
    }
    let (status, _) = a.admin_get(&format!("events/{}", encode(&after))).await;
    assert_eq!(status, 404, "A stored a PDU its ACL refuses");

    // Nor may C read the room any more.
    for uri in [
        format!("/_matrix/federation/v1/event/{}", encode(&before)),
        format!(
            "/_matrix/federation/v1/state_ids/{}?event_id={}",
            encode(&room),
            encode(&before)
        ),
    ] {
        let (status, body) = federation(&c, &a, "GET", &uri, None).await;
        assert_eq!(
            (status, body["errcode"].as_str()),
            (403, Some("M_FORBIDDEN")),
            "{uri}: {body}"
        );
    }
}

/// Inbound transactions not yet taken in, per `hearth federation status`
/// (running or not).
fn staged_per_status(h: &Hearth) -> u64 {
    let status = h.federation_status();
    status["inbound"]["staged_transactions"]
        .as_u64()
        .expect("a count")
}

/// B answers a transaction once it has checked and staged it, and takes
/// its PDUs in afterwards; killed in between, it takes them in when it is
/// back. The events are C's, relayed by A, and C is gone: only the staged
/// transaction can bring them to B.
#[tokio::test]
async fn an_answered_transaction_is_taken_in_after_a_kill() {
    const STAGED: &str = "hearth_federation_inbound_staged_transactions";
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let mut b = Hearth::start_with(&ca, &[("HEARTH_METRICS__ENABLED", "true")]);
    let mut c = Hearth::start(&ca);
    let (room, _, _) = shared_room(&a, &b).await;
    let carol = user(&c, "carol");
    let (status, reply) = join(&c, &room, &carol, &[&a.server_name]).await;
    assert_eq!(status, 200, "{reply}");
    let carol_join = reply["event_id"].as_str().expect("event_id").to_owned();
    wait_for_events(&b, &room, &[carol_join], 10).await;

    b.kill();
    let first = say(&c, &room, &carol, "first").await;
    let second = say(&c, &room, &carol, "second").await;
    wait_for_events(&a, &room, &[first.clone(), second.clone()], 10).await;
    c.kill();
    let (status, stored) = a.admin_get(&format!("events/{}", encode(&second))).await;
    assert_eq!(status, 200, "{stored}");
    // Signed by A now: A is frozen when they are sent.
    let relayed = Presigned::transaction(&a, &b, "relayed-1", json!([stored["event"]])).await;
    let second_txn = Presigned::transaction(&a, &b, "relayed-2", json!([])).await;
    let third_txn = Presigned::transaction(&a, &b, "relayed-3", json!([])).await;
    let fourth_txn = Presigned::transaction(&a, &b, "relayed-4", json!([])).await;
    let fifth_txn = Presigned::transaction(&a, &b, "relayed-5", json!([])).await;

    // A, frozen, cannot fill B's gap (B lacks "first"): taking the
    // transaction in stalls after the answer.
    a.freeze();
    b.restart();
    let (status, answer) = relayed.send(&b, &ca).await;
    assert_eq!(status, 200, "{answer}\n{}", b.log());
    assert_eq!(answer["pdus"][&second], json!({}), "{answer}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, _) = b.admin_get(&format!("events/{}", encode(&second))).await;
    assert_eq!(status, 404, "taken in already: the test proves nothing");
    assert_eq!(b.metric(STAGED).await, 1);
    assert_eq!(staged_per_status(&b), 1, "asked of the running server");

    // A second transaction is staged behind it; a third and a fourth are
    // not answered until the first is taken in (an origin has at most two
    // staged), and a fifth in progress is told to slow down.
    let (status, answer) = second_txn.send(&b, &ca).await;
    assert_eq!(status, 200, "{answer}");
    let waiting = async { tokio::join!(third_txn.send(&b, &ca), fourth_txn.send(&b, &ca)) };
    let fifth = async {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        fifth_txn.send(&b, &ca).await
    };
    tokio::select! {
        answered = waiting => panic!("answered while the first is stalled: {answered:?}"),
        (status, refused) = fifth => assert_eq!(
            (status, refused["errcode"].as_str()),
            (429, Some("M_LIMIT_EXCEEDED")),
            "{refused}"
        ),
    }
    assert_eq!(b.metric(STAGED).await, 2);

    b.kill();
    assert_eq!(staged_per_status(&b), 2, "read from the data directory");
    a.thaw();
    b.restart();
    let on_b = wait_for_events(&b, &room, &[first.clone(), second.clone()], 30).await;
    let position = |id: &String| on_b.iter().position(|e| e == id);
    assert!(position(&first) < position(&second), "{on_b:?}");
    let (_, taken) = b.admin_get(&format!("events/{}", encode(&second))).await;
    assert_eq!(taken["meta"]["status"], "accepted", "{taken}");
    let started = std::time::Instant::now();
    while b.metric(STAGED).await != 0 {
        assert!(started.elapsed().as_secs() < 10, "still staged");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn transactions_replay_refusals_and_visibility() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let c = Hearth::start(&ca);
    let (room, _, bob) = shared_room(&a, &b).await;
    let message = say(&b, &room, &bob, "replay me").await;
    wait_for_events(&a, &room, std::slice::from_ref(&message), 10).await;

    // B (in the room) may fetch the event from A; C (not in it) may not.
    let uri = format!("/_matrix/federation/v1/event/{}", encode(&message));
    let (status, body) = federation(&b, &a, "GET", &uri, None).await;
    assert_eq!(status, 200, "{body}");
    let pdu = body["pdus"][0].clone();
    assert_eq!(pdu["content"]["body"], "replay me");
    let (status, body) = federation(&c, &a, "GET", &uri, None).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{body}"
    );
    let state_uri = format!(
        "/_matrix/federation/v1/state_ids/{}?event_id={}",
        encode(&room),
        encode(&message)
    );
    let (status, body) = federation(&c, &a, "GET", &state_uri, None).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = federation(&b, &a, "GET", &state_uri, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["pdu_ids"].as_array().is_some_and(|s| s.len() >= 6),
        "{body}"
    );

    // The same transaction twice: one answer, one stored event.
    let txn = json!({"origin": b.server_name, "origin_server_ts": 1, "pdus": [pdu], "edus": []});
    let (first_status, first) = federation(
        &b,
        &a,
        "PUT",
        "/_matrix/federation/v1/send/replayed-1",
        Some(txn.clone()),
    )
    .await;
    let (second_status, second) = federation(
        &b,
        &a,
        "PUT",
        "/_matrix/federation/v1/send/replayed-1",
        Some(txn),
    )
    .await;
    assert_eq!(
        (first_status, second_status),
        (200, 200),
        "{first} {second}"
    );
    assert_eq!(first, second);
    assert_eq!(first["pdus"][&message], json!({}), "{first}");
    let (_, on_a) = view(&a, &room).await;
    assert_eq!(
        timeline(&on_a).iter().filter(|e| **e == message).count(),
        1,
        "stored twice"
    );

    // Refusals: too many PDUs, another server's origin, not JSON.
    let many = json!({"origin": b.server_name, "origin_server_ts": 1, "pdus": vec![json!({}); 51], "edus": []});
    let (status, body) = federation(
        &b,
        &a,
        "PUT",
        "/_matrix/federation/v1/send/too-many",
        Some(many),
    )
    .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_BAD_JSON")),
        "{body}"
    );
    let forged = json!({"origin": c.server_name, "origin_server_ts": 1, "pdus": [], "edus": []});
    let (status, body) = federation(
        &b,
        &a,
        "PUT",
        "/_matrix/federation/v1/send/forged",
        Some(forged),
    )
    .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{body}"
    );
    let (status, body) = federation(
        &b,
        &a,
        "PUT",
        "/_matrix/federation/v1/send/not-json",
        Some(json!("text")),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (_, after) = view(&a, &room).await;
    assert_eq!(
        timeline(&after),
        timeline(&on_a),
        "a refusal stored something"
    );

    // Walks start from a bounded number of events.
    let many: Vec<&str> = vec![message.as_str(); 21];
    let body = json!({"earliest_events": [], "latest_events": many, "limit": 10});
    let uri = format!(
        "/_matrix/federation/v1/get_missing_events/{}",
        encode(&room)
    );
    let (status, reply) = federation(&b, &a, "POST", &uri, Some(body)).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{reply}"
    );
    // Backfill shows B the history, C nothing.
    let uri = format!(
        "/_matrix/federation/v1/backfill/{}?v={}&limit=50",
        encode(&room),
        encode(&message)
    );
    let (status, reply) = federation(&b, &a, "GET", &uri, None).await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["pdus"].as_array().is_some_and(|p| p.len() >= 7),
        "{reply}"
    );
    let (status, reply) = federation(&c, &a, "GET", &uri, None).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["pdus"], json!([]), "C sees history: {reply}");

    // A server not in the room cannot make a join for another server's user.
    let uri = format!(
        "/_matrix/federation/v1/make_join/{}/{}?ver=12",
        encode(&room),
        encode(&user(&b, "mallory"))
    );
    let (status, body) = federation(&c, &a, "GET", &uri, None).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{body}"
    );
    // A server that does not support the room's version is told which it is.
    let uri = format!(
        "/_matrix/federation/v1/make_join/{}/{}?ver=10",
        encode(&room),
        encode(&user(&c, "carol"))
    );
    let (status, body) = federation(&c, &a, "GET", &uri, None).await;
    assert_eq!(
        (
            status,
            body["errcode"].as_str(),
            body["room_version"].as_str()
        ),
        (400, Some("M_INCOMPATIBLE_ROOM_VERSION"), Some("12")),
        "{body}"
    );
}

/// Asks `to` for the event of `room` closest to `ts` in direction `dir`.
async fn closest(from: &Hearth, to: &Hearth, room: &str, ts: u64, dir: &str) -> (u16, Value) {
    let uri = format!(
        "/_matrix/federation/v1/timestamp_to_event/{}?ts={ts}&dir={dir}",
        encode(room)
    );
    federation(from, to, "GET", &uri, None).await
}

#[tokio::test]
async fn timestamp_to_event_finds_the_closest_visible_event() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let c = Hearth::start(&ca);
    let (room, alice, _) = shared_room(&a, &b).await;
    let mut sent = Vec::new();
    for i in 0..3 {
        let id = say(&a, &room, &alice, &format!("at time {i}")).await;
        let (status, event) = a.admin_get(&format!("events/{}", encode(&id))).await;
        assert_eq!(status, 200, "{event}");
        let ts = event["event"]["origin_server_ts"].as_u64().expect("ts");
        sent.push((id, ts));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (middle, middle_ts) = sent[1].clone();
    let (status, found) = closest(&b, &a, &room, middle_ts, "f").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        (
            found["event_id"].as_str(),
            found["origin_server_ts"].as_u64()
        ),
        (Some(middle.as_str()), Some(middle_ts))
    );
    let (status, found) = closest(&b, &a, &room, middle_ts - 1, "b").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["event_id"].as_str(),
        Some(sent[0].0.as_str()),
        "{found}"
    );
    let (status, found) = closest(&b, &a, &room, middle_ts + 1, "f").await;
    assert_eq!(
        found["event_id"].as_str(),
        Some(sent[2].0.as_str()),
        "{status} {found}"
    );
    // Nothing after the last event; bad parameters; a server outside the room.
    let (status, found) = closest(&b, &a, &room, sent[2].1 + 60_000, "f").await;
    assert_eq!(
        (status, found["errcode"].as_str()),
        (404, Some("M_NOT_FOUND")),
        "{found}"
    );
    let (status, found) = closest(&b, &a, &room, middle_ts, "sideways").await;
    assert_eq!(
        (status, found["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{found}"
    );
    let uri = format!(
        "/_matrix/federation/v1/timestamp_to_event/{}?dir=f",
        encode(&room)
    );
    let (status, found) = federation(&b, &a, "GET", &uri, None).await;
    assert_eq!(
        (status, found["errcode"].as_str()),
        (400, Some("M_MISSING_PARAM")),
        "{found}"
    );
    let (status, found) = closest(&c, &a, &room, middle_ts, "f").await;
    assert_eq!(
        status, 404,
        "a server outside the room sees nothing: {found}"
    );
}
