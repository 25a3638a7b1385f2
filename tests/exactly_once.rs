//! A client's transaction makes one event, whatever the server went
//! through. The transaction's record is written before its event, so a
//! crash can leave a record without an event but never an event without
//! a record; this test makes that state on disk (as a kill between the
//! two writes leaves it) and retries the transaction.

mod common;

use std::time::Duration;

use common::{client::Client, rooms::encode, Hearth, TestCa};
use hearth::store::{accounts::Session, Store};
use serde_json::json;

#[tokio::test]
async fn a_transaction_recorded_without_its_event_is_sent_once_on_retry() {
    let ca = TestCa::new();
    let mut hearth = Hearth::start(&ca);
    let alice = Client::login(&hearth, "alice").await;
    let room = alice.create_room(json!({})).await;
    let (user, device, token) = (
        alice.user.clone(),
        alice.device.clone(),
        alice.token.clone(),
    );
    drop(alice);

    // What a kill right after the record leaves: a record, no event.
    hearth.kill();
    let store = open(&hearth);
    let session = Session {
        user_id: user.as_str().try_into().expect("user"),
        device_id: device.as_str().into(),
        expires_at: None,
        appservice: None,
    };
    store
        .accounts
        .put_txn_event(&session, "t1", Some("t1"), "$never-written")
        .expect("record");
    drop(store);
    hearth.restart();

    let alice = Client {
        h: &hearth,
        token,
        user,
        device,
    };
    let path = format!("rooms/{}/send/m.room.message/t1", encode(&room));
    let body = json!({"msgtype": "m.text", "body": "once"});
    let first = alice.ok("PUT", &path, body.clone()).await;
    let id = first["event_id"].as_str().expect("event_id").to_owned();
    assert_ne!(
        id, "$never-written",
        "answered with an event that does not exist"
    );
    let again = alice.ok("PUT", &path, body).await;
    assert_eq!(again["event_id"], json!(id), "the retry made another event");
    let messages = alice
        .ok(
            "GET",
            &format!("rooms/{}/messages?dir=b&limit=50", encode(&room)),
            json!({}),
        )
        .await;
    let sent: Vec<&serde_json::Value> = messages["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter(|e| e["content"]["body"] == "once")
        .collect();
    assert_eq!(sent.len(), 1, "{messages}");
    assert_eq!(sent[0]["event_id"], json!(id));
}

/// The stopped server's store (sled may hold its lock a moment after a kill).
fn open(hearth: &Hearth) -> Store {
    for _ in 0..100 {
        if let Ok(store) = Store::open(&hearth.data_dir()) {
            return store;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the store did not open")
}
