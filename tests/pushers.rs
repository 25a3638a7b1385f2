//! Pushers over a real process and a loopback push gateway: refused
//! without a gateway's notify URL; the notify bodies of both formats
//! (`event_id_only` carries no content, sender or room name); what
//! notifies while the gateway is down reaches it after hearth is killed
//! with `kill -9` and restarted; a muted room pushes nothing; a pushkey
//! the gateway rejects loses its pusher; `hearth push test` reaches the
//! gateway; logging out drops the device's pushers.

mod common;

use common::{client::Client, gateway::Gateway, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

async fn say(client: &Client<'_>, room: &str, body: &str) -> String {
    client
        .ok(
            "PUT",
            &format!(
                "rooms/{}/send/m.room.message/{}",
                encode(room),
                encode(body)
            ),
            json!({"msgtype": "m.text", "body": body}),
        )
        .await["event_id"]
        .as_str()
        .expect("event_id")
        .to_owned()
}

fn pusher(url: &str, pushkey: &str, format: Option<&str>) -> Value {
    let mut data = json!({"url": url, "extra": "kept"});
    if let Some(format) = format {
        data["format"] = format.into();
    }
    json!({"kind": "http", "app_id": "org.example.phone", "pushkey": pushkey,
        "app_display_name": "Phone", "device_display_name": "Alice's phone",
        "lang": "en", "data": data, "append": true})
}

async fn pushkeys(client: &Client<'_>) -> Vec<String> {
    let listed = client.ok("GET", "pushers", json!(null)).await;
    let mut keys: Vec<String> = listed["pushers"]
        .as_array()
        .expect("pushers")
        .iter()
        .filter_map(|p| p["pushkey"].as_str().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

/// The pushes about `event`, by pushkey.
fn about<'a>(received: &'a [Value], event: &str) -> Vec<(&'a str, &'a Value)> {
    received
        .iter()
        .filter(|p| p["notification"]["event_id"] == event)
        .map(|p| {
            let n = &p["notification"];
            (n["devices"][0]["pushkey"].as_str().unwrap_or(""), n)
        })
        .collect()
}

// Two workers: the gateway answers while the CLI blocks one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushers_wake_phones_through_their_gateway() {
    let ca = TestCa::new();
    let mut h = Hearth::start_with(
        &ca,
        &[
            ("HEARTH_FEDERATION__ALLOW_PRIVATE_ADDRESSES", "false"),
            ("HEARTH_PUSH__IP_ALLOWLIST", "[\"127.0.0.1/32\"]"),
        ],
    );
    let mut gateway = Gateway::start().await;
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice.create_room(json!({"preset": "private_chat"})).await;
    alice.invite(&room, &bob.user).await;
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;

    // Only http pushers to a gateway's notify URL.
    let elsewhere = format!("http://{}/notify", gateway.addr);
    for (body, why) in [
        (pusher(&elsewhere, "k", None), "not a notify URL"),
        (
            json!({"kind": "email", "app_id": "m.email", "pushkey": "a@b.c",
                "app_display_name": "e", "device_display_name": "e", "lang": "en", "data": {}}),
            "email",
        ),
    ] {
        let (status, reply) = alice.call("POST", "pushers/set", body).await;
        assert_eq!(
            (status, reply["errcode"].as_str()),
            (400, Some("M_INVALID_PARAM")),
            "{why}: {reply}"
        );
    }
    let (status, reply) = alice
        .call(
            "POST",
            "pushers/set",
            json!({"kind": "http", "app_id": "x"}),
        )
        .await;
    assert_eq!(status, 400, "{reply}");

    let url = gateway.url();
    for (key, format) in [("full", None), ("ids", Some("event_id_only"))] {
        alice
            .ok("POST", "pushers/set", pusher(&url, key, format))
            .await;
    }
    assert_eq!(pushkeys(&alice).await, ["full", "ids"]);

    // Both formats.
    let hello = say(&bob, &room, "hello alice").await;
    let received = gateway.wait_for(2).await;
    let pushes = about(&received, &hello);
    let full = pushes
        .iter()
        .find(|(k, _)| *k == "full")
        .expect("full push")
        .1;
    assert_eq!(full["room_id"], room.as_str());
    assert_eq!(full["type"], "m.room.message");
    assert_eq!(full["sender"], bob.user.as_str());
    assert_eq!(full["content"]["body"], "hello alice");
    assert_eq!(full["counts"]["unread"], 1);
    // A one-to-one room's rule rings: high, the default, left out.
    assert!(full.get("prio").is_none_or(|p| p == "high"), "{full}");
    assert_eq!(full["devices"][0]["app_id"], "org.example.phone");
    assert_eq!(full["devices"][0]["data"], json!({"extra": "kept"}));
    assert_eq!(full["devices"][0]["tweaks"]["sound"], "default");
    assert!(
        full["devices"][0]["pushkey_ts"].as_u64().is_some(),
        "{full}"
    );
    let ids = pushes
        .iter()
        .find(|(k, _)| *k == "ids")
        .expect("ids push")
        .1;
    assert_eq!(ids["room_id"], room.as_str());
    assert_eq!(ids["counts"]["unread"], 1);
    for field in [
        "content",
        "sender",
        "type",
        "room_name",
        "sender_display_name",
    ] {
        assert!(ids.get(field).is_none(), "event_id_only has {field}: {ids}");
    }
    assert_eq!(ids["devices"][0]["data"]["format"], "event_id_only");

    // The gateway is down while bob writes, and hearth is killed: the
    // pushes come once both are back.
    gateway.stop();
    let missed = say(&bob, &room, "are you there?").await;
    let sessions = [&alice, &bob].map(|c| (c.token.clone(), c.user.clone(), c.device.clone()));
    drop((alice, bob));
    h.kill();
    h.restart();
    gateway.resume().await;
    let received = gateway.wait_for(4).await;
    assert_eq!(about(&received, &missed).len(), 2, "{received:?}");
    // The same sessions, whose tokens outlive the restart.
    let [alice, bob] = sessions.map(|(token, user, device)| Client {
        h: &h,
        token,
        user,
        device,
    });

    // Muted: nothing for the muted room; a later message elsewhere marks
    // when it would have come.
    let mute = json!({"actions": [], "conditions": [
        {"kind": "event_match", "key": "room_id", "pattern": room}]});
    alice
        .ok(
            "PUT",
            &format!("pushrules/global/override/{}", encode(&room)),
            mute,
        )
        .await;
    let muted = say(&bob, &room, "psst").await;
    let other = alice.create_room(json!({"preset": "private_chat"})).await;
    alice.invite(&other, &bob.user).await;
    bob.ok("POST", &format!("join/{}", encode(&other)), json!({}))
        .await;
    let marker = say(&bob, &other, "over here").await;
    let received = gateway.wait_for(6).await;
    assert_eq!(about(&received, &marker).len(), 2);
    assert!(about(&received, &muted).is_empty(), "{received:?}");

    // A rejected pushkey loses its pusher.
    gateway.reject("ids");
    say(&bob, &other, "still there?").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pushkeys(&alice).await != ["full"] {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            pushkeys(&alice).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // `hearth push test` reaches each pusher's gateway and prints its answer.
    let before = gateway.received().len();
    let printed = tokio::task::block_in_place(|| h.cli(&["push", "test", &alice.user]));
    assert!(printed.contains("org.example.phone full: 200"), "{printed}");
    let received = gateway.wait_for(before + 1).await;
    let test = &received[before]["notification"];
    assert!(test.get("event_id").is_none(), "{test}");
    assert_eq!(test["devices"][0]["pushkey"], "full");

    // Logging out drops the pushers the device set.
    alice.ok("POST", "logout", json!({})).await;
    let again = Client::login_again(&h, "alice").await;
    assert!(pushkeys(&again).await.is_empty());
}
