//! Unread counts as Synapse gives them: one scenario run on a real Synapse
//! and on hearth (a one-to-one room; in a room of three a plain message, a
//! display-name mention, an `m.mentions` mention, a notice and the user's
//! own message; a read receipt; a thread reply, counted apart and read by
//! a threaded receipt), alice's counts compared step by step. Then a
//! Synapse user's messages reach a hearth user over federation and count.

mod common;

use std::time::{Duration, Instant};

use common::{client::Client, rooms::encode, synapse::Synapse, Hearth, TestCa};
use serde_json::{json, Value};

/// The same three users on one server or the other.
enum Api<'a> {
    Hearth(Vec<Client<'a>>),
    Synapse(&'a Synapse, Vec<String>),
}

impl Api<'_> {
    async fn call(&self, who: usize, method: &str, path: &str, body: Value) -> Value {
        match self {
            Api::Hearth(clients) => clients[who].ok(method, path, body).await,
            Api::Synapse(syn, tokens) => {
                let path = format!("/_matrix/client/v3/{path}");
                let body = (method != "GET").then_some(body);
                let (status, reply) = syn
                    .client_api(method, &path, Some(&tokens[who]), body)
                    .await;
                assert_eq!(status, 200, "Synapse {method} {path}: {reply}");
                reply
            }
        }
    }

    fn user(&self, who: usize) -> String {
        let name = ["alice", "bob", "carol"][who];
        match self {
            Api::Hearth(clients) => clients[who].user.clone(),
            Api::Synapse(syn, _) => syn.user_id(name),
        }
    }

    async fn room(&self, members: &[usize]) -> String {
        let room = self
            .call(0, "POST", "createRoom", json!({"preset": "private_chat"}))
            .await["room_id"]
            .as_str()
            .expect("room_id")
            .to_owned();
        for who in members {
            let path = format!("rooms/{}/invite", encode(&room));
            self.call(0, "POST", &path, json!({"user_id": self.user(*who)}))
                .await;
            self.call(*who, "POST", &format!("join/{}", encode(&room)), json!({}))
                .await;
        }
        room
    }

    async fn send(&self, who: usize, room: &str, content: Value) -> String {
        let txn = format!("{}", rand_txn());
        let path = format!("rooms/{}/send/m.room.message/{txn}", encode(room));
        self.call(who, "PUT", &path, content).await["event_id"]
            .as_str()
            .expect("event_id")
            .to_owned()
    }

    /// Alice's counts in `room`, thread-aware or not.
    async fn counts(&self, room: &str, threads: bool) -> Value {
        // A filter never used before: Synapse answers a repeated request
        // from a cache for two minutes.
        let fresh = format!("hearth.test.{}", rand_txn());
        let filter = json!({"account_data": {"not_types": [fresh]},
            "room": {"timeline": {"limit": 1, "unread_thread_notifications": threads}}});
        let path = format!("sync?filter={}", encode(&filter.to_string()));
        let sync = self.call(0, "GET", &path, json!(null)).await;
        let entry = &sync["rooms"]["join"][room];
        // Thread roots have other IDs on the other server: named by order.
        let threads = match entry.get("unread_thread_notifications") {
            Some(Value::Object(t)) => t
                .values()
                .enumerate()
                .map(|(i, counts)| (format!("thread {i}"), counts.clone()))
                .collect(),
            _ => serde_json::Map::new(),
        };
        let threads = Value::Object(threads);
        json!({"main": entry["unread_notifications"], "threads": threads})
    }
}

fn rand_txn() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn text(body: &str) -> Value {
    json!({"msgtype": "m.text", "body": body})
}

/// Runs the scenario; `check` is given each step's counts, named.
async fn scenario(api: &Api<'_>, check: &mut dyn FnMut(&str, Value) -> bool) {
    let two = api.room(&[1]).await;
    api.send(1, &two, text("hello")).await;
    settle(api, "one-to-one", &two, false, check).await;

    let three = api.room(&[1, 2]).await;
    let plain = api.send(1, &three, text("lunch?")).await;
    let named = api.send(1, &three, text("alice: are you coming?")).await;
    let mentions = json!({"msgtype": "m.text", "body": "ping",
        "m.mentions": {"user_ids": [api.user(0)]}});
    api.send(2, &three, mentions).await;
    api.send(1, &three, json!({"msgtype": "m.notice", "body": "bot"}))
        .await;
    api.send(0, &three, text("on my way")).await;
    settle(api, "five messages", &three, false, check).await;

    let receipt = format!("rooms/{}/receipt/m.read/{}", encode(&three), encode(&named));
    api.call(0, "POST", &receipt, json!({})).await;
    settle(api, "read up to the name", &three, false, check).await;

    let reply = api
        .send(
            1,
            &three,
            json!({"msgtype": "m.text", "body": "in a thread",
                "m.relates_to": {"rel_type": "m.thread", "event_id": plain}}),
        )
        .await;
    settle(api, "thread reply, thread-aware", &three, true, check).await;
    settle(api, "thread reply, all in one", &three, false, check).await;

    let receipt = format!("rooms/{}/receipt/m.read/{}", encode(&three), encode(&reply));
    api.call(0, "POST", &receipt, json!({"thread_id": plain}))
        .await;
    settle(api, "thread read", &three, true, check).await;
}

/// Gives `check` alice's counts until it accepts them (Synapse counts some
/// things in the background) or 10 s pass.
async fn settle(
    api: &Api<'_>,
    step: &str,
    room: &str,
    threads: bool,
    check: &mut dyn FnMut(&str, Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts = api.counts(room, threads).await;
        if check(step, counts) || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn unread_counts_match_synapse_and_count_federated_messages() {
    let ca = TestCa::new();
    let syn = Synapse::start(&ca);
    let h = Hearth::start(&ca);

    // Hearth first: its counts are final when the calls return.
    let mut clients = Vec::new();
    for name in ["alice", "bob", "carol"] {
        clients.push(Client::login(&h, name).await);
    }
    let on_hearth = Api::Hearth(clients);
    let mut expected: Vec<(String, Value)> = Vec::new();
    scenario(&on_hearth, &mut |step, counts| {
        expected.push((step.to_owned(), counts));
        true
    })
    .await;

    let mut tokens = Vec::new();
    for name in ["alice", "bob", "carol"] {
        tokens.push(syn.register(name).await);
    }
    let on_synapse = Api::Synapse(&syn, tokens);
    let mut seen: Vec<(String, Value)> = Vec::new();
    scenario(&on_synapse, &mut |step, counts| {
        let want = expected
            .iter()
            .find(|(s, _)| s == step)
            .map(|(_, c)| c.clone());
        let matched = want.as_ref() == Some(&counts);
        if matched || seen.last().is_none_or(|(s, _)| s != step) {
            seen.push((step.to_owned(), counts));
        } else if let Some(last) = seen.last_mut() {
            last.1 = counts;
        }
        matched
    })
    .await;
    assert_eq!(seen, expected, "Synapse's counts, then hearth's");

    // Over federation: a Synapse user writes to a hearth user.
    let Api::Hearth(clients) = &on_hearth else {
        unreachable!()
    };
    let Api::Synapse(_, tokens) = &on_synapse else {
        unreachable!()
    };
    let alice = &clients[0];
    let (status, created) = syn
        .client_api(
            "POST",
            "/_matrix/client/v3/createRoom",
            Some(&tokens[1]),
            Some(json!({"preset": "private_chat", "invite": [alice.user]})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let room = created["room_id"].as_str().expect("room").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = alice
            .call(
                "POST",
                &format!("join/{}?server_name={}", encode(&room), syn.server_name),
                json!({}),
            )
            .await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alice cannot join Synapse's room"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for (i, body) in ["from synapse", "again"].iter().enumerate() {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/f{i}",
            encode(&room)
        );
        let (status, reply) = syn
            .client_api("PUT", &path, Some(&tokens[1]), Some(text(body)))
            .await;
        assert_eq!(status, 200, "{reply}");
    }
    let mut last = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        last = on_hearth.counts(&room, false).await["main"].clone();
        if last == json!({"notification_count": 2, "highlight_count": 0}) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("alice's counts for Synapse's room: {last}");
}
