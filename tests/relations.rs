//! Relations and threads over real processes: a thread, reactions and
//! edits read back through `/relations` (paged, filtered, recursive),
//! `/threads` and the aggregations bundled into `/event`, `/messages` and
//! a limited `/sync`; the spec's refusals (a thread off a reply, a
//! duplicate reaction); redactions taking children out; threaded read
//! receipts; everything kept across `kill -9`; and a thread whose replies
//! come from another server.

mod common;

use common::{client::Client, http, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

async fn v1(client: &Client<'_>, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {}", client.token);
    http::request(
        http::Target::Plain(client.h.client),
        "GET",
        &format!("/_matrix/client/v1/{path}"),
        &[("authorization", auth.as_str())],
        None,
    )
    .await
}

async fn v1_ok(client: &Client<'_>, path: &str) -> Value {
    let (status, reply) = v1(client, path).await;
    assert_eq!(status, 200, "GET {path}: {reply}");
    reply
}

async fn send(client: &Client<'_>, room: &str, kind: &str, content: Value) -> String {
    let txn = format!("t{}", rand_suffix());
    let reply = client
        .ok(
            "PUT",
            &format!("rooms/{}/send/{kind}/{txn}", encode(room)),
            content,
        )
        .await;
    reply["event_id"].as_str().expect("event_id").to_owned()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn in_thread(root: &str, body: &str) -> Value {
    json!({"msgtype": "m.text", "body": body,
           "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
}

fn ids(chunk: &Value) -> Vec<String> {
    chunk
        .as_array()
        .expect("chunk")
        .iter()
        .map(|e| e["event_id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn threads_reactions_and_edits_are_read_bundled_and_kept() {
    let ca = TestCa::new();
    let mut h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let carol = Client::login(&h, "carol").await;
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    for user in [&bob, &carol] {
        user.ok("POST", &format!("join/{}", encode(&room)), json!({}))
            .await;
    }
    let r = encode(&room);
    let root = send(
        &alice,
        &room,
        "m.room.message",
        json!({"msgtype": "m.text", "body": "root"}),
    )
    .await;
    let reply1 = send(&bob, &room, "m.room.message", in_thread(&root, "one")).await;
    let reply2 = send(&bob, &room, "m.room.message", in_thread(&root, "two")).await;
    let reaction =
        json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}});
    let thumbs = send(&alice, &room, "m.reaction", reaction.clone()).await;
    // A reaction to a thread reply: a grandchild of the root.
    let nested = send(
        &carol,
        &room,
        "m.reaction",
        json!({"m.relates_to":
        {"rel_type": "m.annotation", "event_id": reply1, "key": "🎉"}}),
    )
    .await;
    let edit = |body: &str| {
        json!({"msgtype": "m.text", "body": format!("* {body}"),
        "m.new_content": {"msgtype": "m.text", "body": body},
        "m.relates_to": {"rel_type": "m.replace", "event_id": root}})
    };
    send(&alice, &room, "m.room.message", edit("root, edited")).await;
    let last_edit = send(&alice, &room, "m.room.message", edit("root, edited again")).await;
    // Bob's edit of Alice's message is no edit.
    send(&bob, &room, "m.room.message", edit("not yours")).await;

    // The spec's refusals.
    let (status, reply) = alice
        .call("PUT", &format!("rooms/{r}/send/m.reaction/dup"), reaction)
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_DUPLICATE_ANNOTATION")),
        "{reply}"
    );
    let (status, reply) = bob
        .call(
            "PUT",
            &format!("rooms/{r}/send/m.room.message/sub"),
            in_thread(&reply1, "no"),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_UNKNOWN")),
        "{reply}"
    );

    // The root as a client reads it: the thread and the latest edit.
    let check_root = |event: &Value, reader_participated: bool| {
        let relations = &event["unsigned"]["m.relations"];
        assert_eq!(relations["m.thread"]["count"], 2, "{event}");
        assert_eq!(
            relations["m.thread"]["latest_event"]["event_id"],
            reply2.as_str()
        );
        assert_eq!(
            relations["m.thread"]["current_user_participated"],
            reader_participated
        );
        assert_eq!(
            relations["m.replace"]["event_id"],
            last_edit.as_str(),
            "{event}"
        );
        assert_eq!(
            event["content"]["body"], "root",
            "the original content stays"
        );
        assert!(relations.get("m.annotation").is_none());
    };
    let event = alice
        .ok(
            "GET",
            &format!("rooms/{r}/event/{}", encode(&root)),
            json!(null),
        )
        .await;
    check_root(&event, true);
    let event = carol
        .ok(
            "GET",
            &format!("rooms/{r}/event/{}", encode(&root)),
            json!(null),
        )
        .await;
    check_root(&event, false);
    let messages = bob
        .ok(
            "GET",
            &format!("rooms/{r}/messages?dir=b&limit=50"),
            json!(null),
        )
        .await;
    let in_messages = messages["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .find(|e| e["event_id"] == root.as_str())
        .expect("root in /messages")
        .clone();
    check_root(&in_messages, true);
    // A limited /sync bundles too.
    let sync = bob
        .ok(
            "GET",
            "sync?timeout=0&filter=%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A8%7D%7D%7D",
            json!(null),
        )
        .await;
    let timeline = &sync["rooms"]["join"][&room]["timeline"];
    assert_eq!(timeline["limited"], true, "{timeline}");
    let in_sync = timeline["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["event_id"] == root.as_str())
        .expect("root in /sync")
        .clone();
    check_root(&in_sync, true);

    // /relations: everything, newest first; by type; paged; recursive.
    let all = v1_ok(&bob, &format!("rooms/{r}/relations/{}", encode(&root))).await;
    assert_eq!(ids(&all["chunk"]).len(), 6, "{all}");
    assert_eq!(ids(&all["chunk"])[5], reply1);
    let thread = v1_ok(
        &bob,
        &format!("rooms/{r}/relations/{}/m.thread", encode(&root)),
    )
    .await;
    assert_eq!(ids(&thread["chunk"]), [reply2.as_str(), reply1.as_str()]);
    let reactions = v1_ok(
        &bob,
        &format!(
            "rooms/{r}/relations/{}/m.annotation/m.reaction",
            encode(&root)
        ),
    )
    .await;
    assert_eq!(ids(&reactions["chunk"]), [thumbs.as_str()]);
    let first = v1_ok(
        &bob,
        &format!(
            "rooms/{r}/relations/{}/m.thread?limit=1&dir=f",
            encode(&root)
        ),
    )
    .await;
    assert_eq!(ids(&first["chunk"]), [reply1.as_str()]);
    let next = first["next_batch"].as_str().expect("next_batch");
    let second = v1_ok(
        &bob,
        &format!(
            "rooms/{r}/relations/{}/m.thread?limit=1&dir=f&from={}",
            encode(&root),
            encode(next)
        ),
    )
    .await;
    assert_eq!(ids(&second["chunk"]), [reply2.as_str()]);
    assert!(second.get("next_batch").is_none(), "{second}");
    let deep = v1_ok(
        &bob,
        &format!(
            "rooms/{r}/relations/{}/m.annotation?recurse=true",
            encode(&root)
        ),
    )
    .await;
    assert_eq!(ids(&deep["chunk"]), [nested.as_str(), thumbs.as_str()]);
    assert_eq!(deep["recursion_depth"], 2, "{deep}");
    let (status, reply) = v1(&bob, &format!("rooms/{r}/relations/{}", encode("$unknown"))).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND"))
    );
    let (status, _) = v1(
        &bob,
        &format!("rooms/{r}/relations/{}?from=nonsense", encode(&root)),
    )
    .await;
    assert_eq!(status, 400);

    // /threads, all and participated.
    let threads = v1_ok(&carol, &format!("rooms/{r}/threads")).await;
    assert_eq!(ids(&threads["chunk"]), [root.as_str()]);
    assert_eq!(
        threads["chunk"][0]["unsigned"]["m.relations"]["m.thread"]["count"],
        2
    );
    let mine = v1_ok(&carol, &format!("rooms/{r}/threads?include=participated")).await;
    assert!(ids(&mine["chunk"]).is_empty(), "{mine}");
    let mine = v1_ok(&bob, &format!("rooms/{r}/threads?include=participated")).await;
    assert_eq!(ids(&mine["chunk"]), [root.as_str()]);

    // A second thread, newer: listed first; paged one at a time.
    let root2 = send(
        &carol,
        &room,
        "m.room.message",
        json!({"msgtype": "m.text", "body": "root2"}),
    )
    .await;
    send(&carol, &room, "m.room.message", in_thread(&root2, "x")).await;
    let page = v1_ok(&alice, &format!("rooms/{r}/threads?limit=1")).await;
    assert_eq!(ids(&page["chunk"]), [root2.as_str()]);
    let next = page["next_batch"].as_str().expect("next_batch");
    let page = v1_ok(
        &alice,
        &format!("rooms/{r}/threads?limit=1&from={}", encode(next)),
    )
    .await;
    assert_eq!(ids(&page["chunk"]), [root.as_str()]);
    assert!(page.get("next_batch").is_none(), "{page}");
    // A reply to the old thread brings it back to the top.
    send(&alice, &room, "m.room.message", in_thread(&root, "three")).await;
    let page = v1_ok(&alice, &format!("rooms/{r}/threads")).await;
    assert_eq!(ids(&page["chunk"]), [root.as_str(), root2.as_str()]);

    // A redacted reply no longer counts; a redacted reaction may be sent again.
    bob.ok(
        "PUT",
        &format!("rooms/{r}/redact/{}/x1", encode(&reply2)),
        json!({}),
    )
    .await;
    alice
        .ok(
            "PUT",
            &format!("rooms/{r}/redact/{}/x2", encode(&thumbs)),
            json!({}),
        )
        .await;
    let thread = v1_ok(
        &bob,
        &format!("rooms/{r}/relations/{}/m.thread", encode(&root)),
    )
    .await;
    assert_eq!(ids(&thread["chunk"]).len(), 2, "{thread}");
    assert!(!ids(&thread["chunk"]).contains(&reply2));
    send(
        &alice,
        &room,
        "m.reaction",
        json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}}),
    )
    .await;

    // Threaded receipts keep one per thread, beside the main one.
    bob.ok(
        "POST",
        &format!("rooms/{r}/receipt/m.read/{}", encode(&reply1)),
        json!({"thread_id": root}),
    )
    .await;
    bob.ok(
        "POST",
        &format!("rooms/{r}/receipt/m.read/{}", encode(&root2)),
        json!({"thread_id": "main"}),
    )
    .await;
    let (status, _) = bob
        .call(
            "POST",
            &format!("rooms/{r}/receipt/m.read/{}", encode(&root2)),
            json!({"thread_id": 5}),
        )
        .await;
    assert_eq!(status, 400);
    let sync = bob.ok("GET", "sync?timeout=0", json!(null)).await;
    let receipts = sync["rooms"]["join"][&room]["ephemeral"]["events"]
        .as_array()
        .expect("ephemeral")
        .iter()
        .find(|e| e["type"] == "m.receipt")
        .expect("receipts")
        .clone();
    let content = &receipts["content"];
    assert_eq!(
        content[&reply1]["m.read"][&bob.user]["thread_id"],
        root.as_str(),
        "{content}"
    );
    assert_eq!(
        content[&root2]["m.read"][&bob.user]["thread_id"], "main",
        "{content}"
    );

    // Kept across kill -9.
    h.kill();
    h.restart();
    let alice = Client::login_again(&h, "alice").await;
    let thread = v1_ok(
        &alice,
        &format!("rooms/{r}/relations/{}/m.thread", encode(&root)),
    )
    .await;
    assert_eq!(ids(&thread["chunk"]).len(), 2, "{thread}");
    let page = v1_ok(&alice, &format!("rooms/{r}/threads")).await;
    assert_eq!(ids(&page["chunk"]), [root.as_str(), root2.as_str()]);
}

#[tokio::test]
async fn a_thread_with_replies_from_another_server_reads_the_same_on_both() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    let root = send(
        &alice,
        &room,
        "m.room.message",
        json!({"msgtype": "m.text", "body": "root"}),
    )
    .await;
    bob.ok(
        "POST",
        &format!("join/{}?server_name={}", encode(&room), a.server_name),
        json!({}),
    )
    .await;
    let r = encode(&room);
    let reply = send(&bob, &room, "m.room.message", in_thread(&root, "from b")).await;
    // Alice's server takes the reply in; her thread list shows it.
    let mut threads = Value::Null;
    for _ in 0..100 {
        threads = v1_ok(&alice, &format!("rooms/{r}/threads")).await;
        if threads["chunk"][0]["unsigned"]["m.relations"]["m.thread"]["latest_event"]["event_id"]
            == reply.as_str()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let summary = &threads["chunk"][0]["unsigned"]["m.relations"]["m.thread"];
    assert_eq!(
        summary["latest_event"]["event_id"],
        reply.as_str(),
        "{threads}"
    );
    assert_eq!(summary["current_user_participated"], true);
    // Bob's server reads the same thread once its root, sent before he
    // joined, is in the history it fetched from Alice's.
    bob.ok(
        "GET",
        &format!("rooms/{r}/messages?dir=b&limit=20"),
        json!(null),
    )
    .await;
    let on_b = v1_ok(&bob, &format!("rooms/{r}/threads")).await;
    assert_eq!(ids(&on_b["chunk"]), [root.as_str()]);
    let children = v1_ok(&alice, &format!("rooms/{r}/relations/{}", encode(&root))).await;
    assert_eq!(ids(&children["chunk"]), [reply]);
}
