//! Application services over real processes: a bridge built on
//! mautrix-python's AppService (as the mautrix bridges are) beside a
//! hearth. It pings itself through hearth; its puppet is registered when
//! hearth asks the bridge about an invited user it claims, and joins and
//! answers the invite by masquerading; messages reach it in order, each in
//! one transaction only, with typing and receipts; an alias it claims is
//! created when hearth asks about it; its exclusive namespaces are refused
//! to everyone else; and what queued while it was down, through a
//! `kill -9` of hearth, reaches it when it comes back. As an encrypted
//! bridge, it holds its users' devices: it creates and deletes them
//! (MSC4190), and gets their to-device messages and key counts, the
//! device lists of whom they share rooms with (MSC3202, MSC4203) and
//! their presence.

mod common;

use common::{
    bridge::{registration, Bridge, AS_TOKEN},
    client::Client,
    free_port,
    rooms::encode,
    Hearth, TestCa,
};
use serde_json::{json, Value};

fn start(dir: &std::path::Path, ca: &TestCa) -> (Hearth, u16) {
    let port = free_port();
    let file = registration(dir, port);
    let files = json!([file.to_str().expect("path")]).to_string();
    let hearth = Hearth::start_with(
        ca,
        &[
            ("HEARTH_APPSERVICE__REGISTRATIONS", &files),
            ("HEARTH_REGISTRATION__ENABLED", "true"),
        ],
    );
    (hearth, port)
}

fn bridge_of(hearth: &Hearth, port: u16, ping: bool) -> Bridge {
    let url = format!("http://{}", hearth.client);
    Bridge::start(&url, &hearth.server_name, port, ping)
}

/// The application service's client: its token, acting as its sender or
/// as `?user_id=`.
fn appservice(hearth: &Hearth) -> Client<'_> {
    Client {
        h: hearth,
        token: AS_TOKEN.to_owned(),
        user: format!("@bridgebot:{}", hearth.server_name),
        device: String::new(),
    }
}

/// The bodies of the messages the bridge got in `room`'s order, from `sender`.
fn bodies_from(events: &[(String, Value)], sender: &str) -> Vec<String> {
    events
        .iter()
        .filter(|(_, e)| e["sender"] == sender && e["type"] == "m.room.message")
        .filter_map(|(_, e)| e["body"].as_str().map(str::to_owned))
        .collect()
}

/// No event came in two transactions.
fn each_once(events: &[(String, Value)]) {
    let mut seen = std::collections::HashMap::new();
    for (txn, event) in events {
        let id = event["id"].as_str().expect("id").to_owned();
        if let Some(earlier) = seen.insert(id.clone(), txn.clone()) {
            assert_eq!(&earlier, txn, "{id} came in two transactions");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bridge_lives_on_hearth() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("dir");
    let (hearth, port) = start(dir.path(), &ca);
    let bridge = bridge_of(&hearth, port, true);
    assert!(bridge.output().contains("ping "), "{}", bridge.output());
    let server = hearth.server_name.clone();
    let alice = Client::login(&hearth, "alice").await;
    let room = alice.create_room(json!({"name": "bridged"})).await;

    // An invited puppet that does not exist yet: hearth asks the bridge,
    // which registers it; the invite reaches the bridge, the puppet joins
    // and answers (masquerading with ?user_id=).
    let puppet = format!("@bridge_puppet1:{server}");
    alice.invite(&room, &puppet).await;
    bridge.wait_for("the puppet's answer", |events| {
        bodies_from(events, &puppet) == ["hello from the bridge"]
    });

    // Messages in order, each in one transaction.
    let mut sent = Vec::new();
    for i in 0..30 {
        sent.push(alice.say(&room, &format!("message {i}")).await);
    }
    bridge.wait_for("30 messages", |events| {
        bodies_from(events, &alice.user).len() == 30
    });
    let events = bridge.events();
    let expected: Vec<String> = (0..30).map(|i| format!("message {i}")).collect();
    assert_eq!(bodies_from(&events, &alice.user), expected);
    each_once(&events);
    let ids: Vec<&str> = events
        .iter()
        .filter_map(|(_, e)| e["id"].as_str())
        .collect();
    assert!(sent.iter().all(|id| ids.contains(&id.as_str())));

    // Typing and a read receipt reach it as ephemeral events.
    alice.typing(&room).await;
    alice.read(&room, &sent[29]).await;
    let ephemeral = |kind: &str| {
        bridge.transactions().iter().any(|txn| {
            txn["ephemeral"].as_array().is_some_and(|list| {
                list.iter()
                    .any(|e| e["type"] == kind && e["room_id"] == room)
            })
        })
    };
    for kind in ["m.typing", "m.receipt"] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !ephemeral(kind) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {kind}: {:#?}",
                bridge.transactions()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    // An alias the bridge claims, asked of it: it creates the portal.
    let portal = format!("#bridge_portal:{server}");
    let (status, resolved) = alice
        .call(
            "GET",
            &format!("directory/room/{}", encode(&portal)),
            json!(null),
        )
        .await;
    assert_eq!(
        status,
        200,
        "{resolved}\n{}\n{}",
        bridge.output(),
        hearth.log()
    );
    assert!(resolved["room_id"]
        .as_str()
        .is_some_and(|r| r.starts_with('!')));

    // Its namespaces are its own.
    let (status, answer) = alice
        .call(
            "PUT",
            &format!(
                "directory/room/{}",
                encode(&format!("#bridge_mine:{server}"))
            ),
            json!({"room_id": room}),
        )
        .await;
    assert_eq!(
        (status, answer["errcode"].as_str()),
        (400, Some("M_EXCLUSIVE"))
    );
    let (status, answer) = alice
        .call(
            "GET",
            "register/available?username=bridge_someone",
            json!(null),
        )
        .await;
    assert_eq!(
        (status, answer["errcode"].as_str()),
        (400, Some("M_EXCLUSIVE")),
        "{answer}"
    );
    let (status, answer) = alice
        .call(
            "POST",
            "register",
            json!({"username": "bridge_someone", "password": "a long password"}),
        )
        .await;
    assert_eq!(
        (status, answer["errcode"].as_str()),
        (400, Some("M_EXCLUSIVE")),
        "{answer}"
    );

    // Masquerading: inside the namespace, with ?ts= honoured; outside, 403.
    let bot = appservice(&hearth);
    let (status, answer) = bot
        .call(
            "GET",
            &format!("account/whoami?user_id={}", encode(&puppet)),
            json!(null),
        )
        .await;
    assert_eq!(
        (status, answer["user_id"].as_str()),
        (200, Some(puppet.as_str()))
    );
    let (status, answer) = bot
        .call(
            "PUT",
            &format!(
                "rooms/{}/send/m.room.message/ts1?user_id={}&ts=1000000000000",
                encode(&room),
                encode(&puppet)
            ),
            json!({"msgtype": "m.text", "body": "from the past"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let event_id = answer["event_id"].as_str().expect("event id");
    let event = alice
        .ok(
            "GET",
            &format!("rooms/{}/event/{}", encode(&room), encode(event_id)),
            json!(null),
        )
        .await;
    assert_eq!(event["origin_server_ts"], 1_000_000_000_000u64);
    let (status, answer) = bot
        .call(
            "GET",
            &format!("account/whoami?user_id={}", encode(&alice.user)),
            json!(null),
        )
        .await;
    assert_eq!(
        (status, answer["errcode"].as_str()),
        (403, Some("M_FORBIDDEN"))
    );

    // Its protocol is listed.
    let protocols = alice.ok("GET", "thirdparty/protocols", json!(null)).await;
    assert!(protocols.get("testnet").is_some(), "{protocols}");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_queues_while_the_bridge_is_down_survives_kill_9() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("dir");
    let (mut hearth, port) = start(dir.path(), &ca);
    let mut bridge = bridge_of(&hearth, port, false);
    let alice = Client::login(&hearth, "alice").await;
    let room = alice.create_room(json!({})).await;
    let puppet = format!("@bridge_puppet2:{}", hearth.server_name);
    alice.invite(&room, &puppet).await;
    bridge.wait_for("the puppet's answer", |events| {
        bodies_from(events, &puppet).len() == 1
    });

    bridge.stop();
    for i in 0..20 {
        alice.say(&room, &format!("while away {i}")).await;
    }
    // Acknowledged, queued, and the server killed before the bridge is back.
    hearth.kill();
    hearth.restart();
    let alice = Client::login_again(&hearth, "alice").await;
    let (status, _) = alice.call("GET", "account/whoami", json!(null)).await;
    assert_eq!(status, 200);
    // It comes back and pings, as bridges do on start: served at once.
    bridge.restart();
    bridge.wait_for("20 messages", |events| {
        bodies_from(events, &alice.user).len() >= 20
    });
    let events = bridge.events();
    let expected: Vec<String> = (0..20).map(|i| format!("while away {i}")).collect();
    assert_eq!(bodies_from(&events, &alice.user), expected);
    each_once(&events);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_bridge_holds_its_users_devices() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("dir");
    let (hearth, port) = start(dir.path(), &ca);
    let bridge = bridge_of(&hearth, port, true);
    let server = hearth.server_name.clone();
    let puppet = format!("@bridge_enc:{server}");
    let as_bot = appservice(&hearth);

    // It manages devices itself: no logins, no access tokens (MSC4190).
    let unsupported = Some("IO.ELEMENT.MSC4190.M_APPSERVICE_LOGIN_UNSUPPORTED");
    let register = json!({"type": "m.login.application_service", "username": "bridge_enc"});
    let (status, reply) = as_bot.call("POST", "register", register.clone()).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, unsupported),
        "{reply}"
    );
    let mut register = register;
    register["inhibit_login"] = json!(true);
    as_bot.ok("POST", "register", register).await;
    let login = json!({"type": "m.login.application_service",
                       "identifier": {"type": "m.id.user", "user": "bridge_enc"}});
    let (status, reply) = as_bot.call("POST", "login", login).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, unsupported),
        "{reply}"
    );

    // It creates its puppet's device (201, then 200) and uploads its keys
    // acting from it (?device_id=, MSC3202).
    let as_puppet = Client {
        user: puppet.clone(),
        device: "BRIDGEDEV".into(),
        ..appservice(&hearth)
    };
    let user_q = format!("user_id={}", encode(&puppet));
    let device_path = format!("devices/BRIDGEDEV?{user_q}");
    let name = json!({"display_name": "bridge"});
    let (status, reply) = as_puppet.call("PUT", &device_path, name.clone()).await;
    assert_eq!(status, 201, "{reply}");
    let (status, reply) = as_puppet.call("PUT", &device_path, name).await;
    assert_eq!(status, 200, "{reply}");
    let device_q = format!("{user_q}&device_id=BRIDGEDEV");
    let counts = as_puppet
        .ok("POST", &format!("keys/upload?{device_q}"), json!({
            "device_keys": as_puppet.device_keys("curve-bridge"),
            "one_time_keys": {"signed_curve25519:AAAA": {"key": "otk-a", "signatures": {}},
                              "signed_curve25519:AAAB": {"key": "otk-b", "signatures": {}}},
            "fallback_keys": {"signed_curve25519:FFFF": {"key": "fb", "fallback": true, "signatures": {}}},
        }))
        .await;
    assert_eq!(
        counts["one_time_key_counts"]["signed_curve25519"], 2,
        "{counts}"
    );

    // Alice shares a room with the puppet.
    let alice = Client::login(&hearth, "alice").await;
    let room = alice.create_room(json!({})).await;
    alice.invite(&room, &puppet).await;
    as_puppet
        .ok(
            "POST",
            &format!("rooms/{}/join?{user_q}", encode(&room)),
            json!({}),
        )
        .await;

    // Her new device keys reach the bridge as a device list change.
    alice
        .ok(
            "POST",
            "keys/upload",
            json!({"device_keys": alice.device_keys("curve-alice")}),
        )
        .await;
    bridge.wait_for_transaction("alice's device list change", |t| {
        t["device_lists"]["changed"]
            .as_array()
            .is_some_and(|c| c.contains(&json!(alice.user)))
    });

    // Each claim of the puppet's keys brings the bridge the counts left,
    // and whether its fallback key is still unused.
    let claim = json!({"one_time_keys": {puppet.clone(): {"BRIDGEDEV": "signed_curve25519"}}});
    let count_of = |t: &Value| t["otk_counts"][&puppet]["BRIDGEDEV"]["signed_curve25519"].clone();
    let fallback_of = |t: &Value| {
        t["extra"]["org.matrix.msc3202.device_unused_fallback_key_types"][&puppet]["BRIDGEDEV"]
            .clone()
    };
    alice.ok("POST", "keys/claim", claim.clone()).await;
    let txn = bridge.wait_for_transaction("one key left", |t| count_of(t) == 1);
    assert_eq!(fallback_of(&txn), json!(["signed_curve25519"]), "{txn}");
    alice.ok("POST", "keys/claim", claim.clone()).await;
    alice.ok("POST", "keys/claim", claim).await;
    bridge.wait_for_transaction("no key left, the fallback used", |t| {
        count_of(t) == 0 && fallback_of(t) == json!([])
    });

    // A to-device message for the puppet's device goes to the bridge, with
    // its recipient, and is not also kept for a /sync of that device.
    alice
        .ok(
            "PUT",
            "sendToDevice/org.hearth.test/td1",
            json!({"messages": {puppet.clone(): {"BRIDGEDEV": {"secret": "for the bridge"}}}}),
        )
        .await;
    let txn = bridge.wait_for_transaction("the to-device message", |t| {
        t["to_device"].as_array().is_some_and(|l| !l.is_empty())
    });
    let message = &txn["to_device"][0];
    assert_eq!(
        (
            &message["type"],
            &message["sender"],
            &message["to_user_id"],
            &message["to_device_id"]
        ),
        (
            &json!("org.hearth.test"),
            &json!(alice.user),
            &json!(puppet),
            &json!("BRIDGEDEV")
        ),
        "{txn}"
    );
    assert_eq!(message["content"]["secret"], "for the bridge", "{txn}");
    let sync = as_puppet
        .ok("GET", &format!("sync?{device_q}"), json!(null))
        .await;
    assert_eq!(sync["to_device"]["events"], json!([]), "{sync}");

    // Alice's presence reaches it.
    alice
        .ok(
            "PUT",
            &format!("presence/{}/status", encode(&alice.user)),
            json!({"presence": "online", "status_msg": "bridging"}),
        )
        .await;
    bridge.wait_for_transaction("alice's presence", |t| {
        t["ephemeral"].as_array().is_some_and(|l| {
            l.iter().any(|e| {
                e["type"] == "m.presence"
                    && e["sender"] == json!(alice.user)
                    && e["content"]["status_msg"] == "bridging"
            })
        })
    });

    // It deletes the device without interactive auth (MSC4190).
    as_puppet.ok("DELETE", &device_path, json!({})).await;
    let devices = as_puppet
        .ok("GET", &format!("devices?{user_q}"), json!(null))
        .await;
    assert_eq!(devices["devices"], json!([]), "{devices}");
}
