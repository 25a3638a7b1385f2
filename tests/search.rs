//! Server-side search over a real process: words and their beginnings
//! found in the user's rooms only, ranked or newest first, paged,
//! filtered, with context, profiles, groups and state; room names and
//! topics by key; a redacted message no longer found; the index kept
//! across `kill -9`.

mod common;

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

async fn search(client: &Client<'_>, criteria: Value) -> Value {
    search_from(client, criteria, None).await
}

async fn search_from(client: &Client<'_>, criteria: Value, batch: Option<&str>) -> Value {
    let path = match batch {
        Some(b) => format!("search?next_batch={}", encode(b)),
        None => "search".to_owned(),
    };
    let reply = client
        .ok(
            "POST",
            &path,
            json!({"search_categories": {"room_events": criteria}}),
        )
        .await;
    reply["search_categories"]["room_events"].clone()
}

fn found(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            r["result"]["content"]["body"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn messages_are_found_ranked_paged_filtered_and_kept() {
    let ca = TestCa::new();
    let mut h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let carol = Client::login(&h, "carol").await;
    let room = alice
        .create_room(
            json!({"preset": "public_chat", "name": "Garden club", "topic": "Tomatoes and bees"}),
        )
        .await;
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let secret = carol.create_room(json!({})).await;
    carol
        .say(&secret, "hello from a room alice is not in")
        .await;
    alice.say(&room, "Hello everyone").await;
    bob.say(
        &room,
        "hello, and a long message that mentions hello only in passing among many other words",
    )
    .await;
    bob.say(&room, "help me with the tomatoes").await;
    let gone = alice.say(&room, "hello I will take this back").await;
    alice.say(&room, "nothing to see").await;

    // Words and their beginnings; only alice's rooms.
    let answer = search(&alice, json!({"search_term": "hel"})).await;
    assert_eq!(answer["count"], 4, "{answer}");
    assert!(!found(&answer).iter().any(|b| b.contains("not in")));
    assert_eq!(answer["highlights"], json!(["hel"]));
    // Every word must be there.
    let answer = search(&alice, json!({"search_term": "HELP tomato"})).await;
    assert_eq!(found(&answer), ["help me with the tomatoes"], "{answer}");
    // By rank: a short message saying it beats a long one mentioning it.
    let answer = search(&alice, json!({"search_term": "hello", "order_by": "rank"})).await;
    let bodies = found(&answer);
    assert_eq!(
        bodies.first().map(String::as_str),
        Some("Hello everyone"),
        "{answer}"
    );
    assert_eq!(
        bodies.last().map(String::as_str),
        Some(
            bodies
                .iter()
                .find(|b| b.starts_with("hello, and"))
                .expect("long")
                .as_str()
        )
    );
    assert!(
        answer["results"][0]["rank"].as_f64().expect("rank")
            > answer["results"][2]["rank"].as_f64().expect("rank")
    );
    // Newest first, paged two at a time.
    let criteria = json!({"search_term": "hello", "order_by": "recent", "filter": {"limit": 2}});
    let first = search(&alice, criteria.clone()).await;
    assert_eq!(
        found(&first),
        [
            "hello I will take this back",
            "hello, and a long message that mentions hello only in passing among many other words"
        ]
    );
    let batch = first["next_batch"].as_str().expect("next_batch");
    let second = search_from(&alice, criteria.clone(), Some(batch)).await;
    assert_eq!(found(&second), ["Hello everyone"], "{second}");
    assert!(second.get("next_batch").is_none(), "{second}");
    // Filtered by sender; grouped by room; with context and profiles.
    let answer = search(
        &alice,
        json!({"search_term": "hel", "filter": {"senders": [bob.user]},
               "groupings": {"group_by": [{"key": "room_id"}]},
               "event_context": {"before_limit": 1, "after_limit": 1, "include_profile": true},
               "include_state": true}),
    )
    .await;
    assert_eq!(answer["count"], 4);
    assert_eq!(found(&answer).len(), 2, "{answer}");
    assert_eq!(
        answer["groups"]["room_id"][&room]["results"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{answer}"
    );
    let context = &answer["results"][0]["context"];
    assert_eq!(
        context["events_before"].as_array().map(Vec::len),
        Some(1),
        "{context}"
    );
    assert_eq!(
        context["events_after"].as_array().map(Vec::len),
        Some(1),
        "{context}"
    );
    assert!(context["profile_info"][&bob.user].is_object(), "{context}");
    assert!(answer["state"][&room]
        .as_array()
        .is_some_and(|s| s.iter().any(|e| e["type"] == "m.room.name")));
    // Names and topics by key.
    let answer = search(
        &alice,
        json!({"search_term": "bees", "keys": ["content.topic"]}),
    )
    .await;
    assert_eq!(
        answer["results"][0]["result"]["type"], "m.room.topic",
        "{answer}"
    );
    let answer = search(
        &alice,
        json!({"search_term": "bees", "keys": ["content.body"]}),
    )
    .await;
    assert_eq!(answer["count"], 0);
    let answer = search(
        &alice,
        json!({"search_term": "garden", "keys": ["content.name"]}),
    )
    .await;
    assert_eq!(
        answer["results"][0]["result"]["type"], "m.room.name",
        "{answer}"
    );
    // Bad input.
    let (status, reply) = alice
        .call("POST", "search", json!({"search_categories": {"room_events": {"search_term": "x", "keys": ["content.other"]}}}))
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM")),
        "{reply}"
    );
    let (status, _) = alice
        .call(
            "POST",
            "search?next_batch=nonsense",
            json!({"search_categories": {"room_events": {"search_term": "x"}}}),
        )
        .await;
    assert_eq!(status, 400);

    // A redacted message is not found.
    alice
        .ok(
            "PUT",
            &format!("rooms/{}/redact/{}/r1", encode(&room), encode(&gone)),
            json!({}),
        )
        .await;
    let answer = search(&alice, json!({"search_term": "take"})).await;
    assert!(found(&answer).is_empty(), "{answer}");

    // Kept across kill -9.
    h.kill();
    h.restart();
    let alice = Client::login_again(&h, "alice").await;
    let answer = search(
        &alice,
        json!({"search_term": "tomatoes", "keys": ["content.body"]}),
    )
    .await;
    assert_eq!(found(&answer), ["help me with the tomatoes"], "{answer}");
}
