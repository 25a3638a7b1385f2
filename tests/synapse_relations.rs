//! Relations and upgrades across hearth and a real Synapse: a Synapse
//! user's thread read on hearth (`/threads`, `/relations`, bundled
//! aggregations), a hearth user's reply counted by Synapse's own
//! aggregation, and a room upgraded on hearth followed by a Synapse member.

mod common;

use std::time::{Duration, Instant};

use common::{client::Client, http, rooms::encode, synapse::Synapse, Hearth, TestCa};
use serde_json::{json, Value};

fn in_thread(root: &str, body: &str) -> Value {
    json!({"msgtype": "m.text", "body": body,
           "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
}

async fn synapse_send(syn: &Synapse, token: &str, room: &str, content: Value, txn: &str) -> String {
    let path = format!(
        "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
        encode(room)
    );
    let (status, reply) = syn
        .client_api("PUT", &path, Some(token), Some(content))
        .await;
    assert_eq!(status, 200, "{reply}");
    reply["event_id"].as_str().expect("event_id").to_owned()
}

async fn hearth_v1(client: &Client<'_>, path: &str) -> Value {
    let auth = format!("Bearer {}", client.token);
    let (status, reply) = http::request(
        http::Target::Plain(client.h.client),
        "GET",
        &format!("/_matrix/client/v1/{path}"),
        &[("authorization", auth.as_str())],
        None,
    )
    .await;
    assert_eq!(status, 200, "{path}: {reply}");
    reply
}

/// Polls `read` until `done` holds of its answer (30 s at most).
async fn until<F, Fut>(what: &str, mut read: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = read().await;
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what}: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_thread_spans_hearth_and_synapse() {
    let ca = TestCa::new();
    let syn = Synapse::start(&ca);
    let h = Hearth::start(&ca);
    let token = syn.register("sam").await;
    let (status, reply) = syn
        .client_api(
            "POST",
            "/_matrix/client/v3/createRoom",
            Some(&token),
            Some(json!({"preset": "public_chat"})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let room = reply["room_id"].as_str().expect("room").to_owned();
    let r = encode(&room);
    let root = synapse_send(
        &syn,
        &token,
        &room,
        json!({"msgtype": "m.text", "body": "root"}),
        "t1",
    )
    .await;
    let alice = Client::login(&h, "alice").await;
    alice
        .ok(
            "POST",
            &format!("join/{r}?server_name={}", syn.server_name),
            json!({}),
        )
        .await;
    let sam_reply = synapse_send(&syn, &token, &room, in_thread(&root, "from synapse"), "t2").await;

    // The root predates the join: paging back fetches it from Synapse.
    until(
        "hearth pages back to the root",
        || {
            let path = format!("rooms/{r}/messages?dir=b&limit=30");
            let alice = &alice;
            async move { alice.ok("GET", &path, json!(null)).await }
        },
        |page| {
            page["chunk"]
                .as_array()
                .is_some_and(|c| c.iter().any(|e| e["event_id"] == root.as_str()))
        },
    )
    .await;
    let threads = until(
        "hearth lists Synapse's thread",
        || {
            let path = format!("rooms/{r}/threads");
            let alice = &alice;
            async move { hearth_v1(alice, &path).await }
        },
        |t| {
            t["chunk"][0]["unsigned"]["m.relations"]["m.thread"]["latest_event"]["event_id"]
                == sam_reply.as_str()
        },
    )
    .await;
    assert_eq!(threads["chunk"][0]["event_id"], root.as_str(), "{threads}");
    assert_eq!(
        threads["chunk"][0]["unsigned"]["m.relations"]["m.thread"]["current_user_participated"],
        false
    );

    // Alice replies from hearth: Synapse counts both replies.
    let alice_reply = alice
        .ok(
            "PUT",
            &format!("rooms/{r}/send/m.room.message/a1"),
            in_thread(&root, "from hearth"),
        )
        .await["event_id"]
        .as_str()
        .expect("event_id")
        .to_owned();
    let path = format!(
        "/_matrix/client/v1/rooms/{r}/relations/{}/m.thread",
        encode(&root)
    );
    let on_synapse = until(
        "Synapse relates hearth's reply",
        || async { syn.client_api("GET", &path, Some(&token), None).await.1 },
        |reply| reply["chunk"].as_array().is_some_and(|c| c.len() == 2),
    )
    .await;
    assert_eq!(
        on_synapse["chunk"][0]["event_id"],
        alice_reply.as_str(),
        "{on_synapse}"
    );
    let children = hearth_v1(
        &alice,
        &format!("rooms/{r}/relations/{}/m.thread", encode(&root)),
    )
    .await;
    let ids: Vec<&str> = children["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(ids, [alice_reply.as_str(), sam_reply.as_str()]);
}

#[tokio::test]
async fn a_synapse_member_follows_an_upgrade_made_on_hearth() {
    let ca = TestCa::new();
    let syn = Synapse::start(&ca);
    let h = Hearth::start(&ca);
    let token = syn.register("sam").await;
    let alice = Client::login(&h, "alice").await;
    let old = alice
        .create_room(json!({"room_version": "10", "preset": "public_chat", "name": "Old"}))
        .await;
    let join = |room: &str| {
        format!(
            "/_matrix/client/v3/join/{}?server_name={}",
            encode(room),
            h.server_name
        )
    };
    let (status, reply) = syn
        .client_api("POST", &join(&old), Some(&token), Some(json!({})))
        .await;
    assert_eq!(status, 200, "{reply}\n{}", syn.log());
    let reply = alice
        .ok(
            "POST",
            &format!("rooms/{}/upgrade", encode(&old)),
            json!({"new_version": "12"}),
        )
        .await;
    let new = reply["replacement_room"]
        .as_str()
        .expect("replacement")
        .to_owned();
    // Synapse takes in the tombstone, which points at the new room...
    let tombstone = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.tombstone/",
        encode(&old)
    );
    let seen = until(
        "Synapse sees the tombstone",
        || async {
            syn.client_api("GET", &tombstone, Some(&token), None)
                .await
                .1
        },
        |content| content["replacement_room"] == new.as_str(),
    )
    .await;
    assert_eq!(seen["replacement_room"], new.as_str());
    // ...and its user joins the replacement, which points back.
    let (status, reply) = syn
        .client_api("POST", &join(&new), Some(&token), Some(json!({})))
        .await;
    assert_eq!(status, 200, "{reply}\n{}", syn.log());
    let create = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.create/",
        encode(&new)
    );
    let (status, content) = syn.client_api("GET", &create, Some(&token), None).await;
    assert_eq!(status, 200, "{content}");
    assert_eq!(content["predecessor"]["room_id"], old.as_str(), "{content}");
    let name = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.name/",
        encode(&new)
    );
    assert_eq!(
        syn.client_api("GET", &name, Some(&token), None).await.1["name"],
        "Old"
    );
}
