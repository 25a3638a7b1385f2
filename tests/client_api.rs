//! The client-server API's refusals and durability, over real HTTP to a
//! real process: wrong passwords, bad or missing tokens, malformed JSON,
//! unknown endpoints, oversized bodies, registration off, on,
//! and token-gated; sessions and messages survive `kill -9`.

mod common;

use common::{http, Hearth, TestCa};
use serde_json::{json, Value};

const PASSWORD: &str = "a long enough password";

async fn call(
    h: &Hearth,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    http::request(http::Target::Plain(h.client), method, path, &headers, body).await
}

async fn call_json(
    h: &Hearth,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    call(h, method, path, token, Some(body.to_string().into_bytes())).await
}

fn add_user(h: &Hearth, name: &str) {
    let out = h
        .command(&["user", "add", name, "--password", PASSWORD])
        .output()
        .expect("hearth user add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn login(h: &Hearth, name: &str, password: &str) -> (u16, Value) {
    call_json(
        h,
        "POST",
        "/_matrix/client/v3/login",
        None,
        json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name}, "password": password}),
    )
    .await
}

async fn token(h: &Hearth, name: &str) -> String {
    let (status, reply) = login(h, name, PASSWORD).await;
    assert_eq!(status, 200, "{reply}");
    reply["access_token"].as_str().expect("token").to_owned()
}

fn errcode(reply: &Value) -> &str {
    reply["errcode"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn bad_input_gets_the_spec_errcodes() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    add_user(&h, "alice");

    let (status, reply) = login(&h, "alice", "wrong").await;
    assert_eq!((status, errcode(&reply)), (403, "M_FORBIDDEN"), "{reply}");
    let (status, reply) = login(&h, "nobody", PASSWORD).await;
    assert_eq!((status, errcode(&reply)), (403, "M_FORBIDDEN"), "{reply}");
    let (status, reply) = call_json(
        &h,
        "POST",
        "/_matrix/client/v3/login",
        None,
        json!({"type": "m.login.token", "token": "x"}),
    )
    .await;
    assert_eq!((status, errcode(&reply)), (400, "M_UNKNOWN"), "{reply}");

    let whoami = "/_matrix/client/v3/account/whoami";
    let (status, reply) = call(&h, "GET", whoami, None, None).await;
    assert_eq!(
        (status, errcode(&reply)),
        (401, "M_MISSING_TOKEN"),
        "{reply}"
    );
    let (status, reply) = call(&h, "GET", whoami, Some("hth_not_a_token"), None).await;
    assert_eq!(
        (status, errcode(&reply)),
        (401, "M_UNKNOWN_TOKEN"),
        "{reply}"
    );

    let token = token(&h, "alice").await;
    let (status, reply) = call(&h, "GET", whoami, Some(&token), None).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["user_id"], format!("@alice:{}", h.server_name));
    // The deprecated query parameter still works.
    let (status, _) = call(
        &h,
        "GET",
        &format!("{whoami}?access_token={token}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);

    let create = "/_matrix/client/v3/createRoom";
    let (status, reply) = call(
        &h,
        "POST",
        create,
        Some(&token),
        Some(b"{not json".to_vec()),
    )
    .await;
    assert_eq!((status, errcode(&reply)), (400, "M_NOT_JSON"), "{reply}");
    let (status, reply) = call_json(
        &h,
        "POST",
        create,
        Some(&token),
        json!({"invite": "not a list"}),
    )
    .await;
    assert_eq!((status, errcode(&reply)), (400, "M_BAD_JSON"), "{reply}");
    let (status, reply) = call_json(
        &h,
        "POST",
        create,
        Some(&token),
        json!({"room_version": "99"}),
    )
    .await;
    assert_eq!(
        (status, errcode(&reply)),
        (400, "M_UNSUPPORTED_ROOM_VERSION"),
        "{reply}"
    );
    let bearer = format!("Bearer {token}");
    let (status, reply) = http::declare_body(
        http::Target::Plain(h.client),
        "POST",
        create,
        &[("authorization", &bearer)],
        9 * 1024 * 1024,
    )
    .await;
    assert_eq!((status, errcode(&reply)), (413, "M_TOO_LARGE"), "{reply}");

    for path in [
        "/_matrix/client/v3/no_such_thing",
        "/_matrix/client/v1/media/no_such_thing",
    ] {
        let (status, reply) = call(&h, "GET", path, Some(&token), None).await;
        assert_eq!(
            (status, errcode(&reply)),
            (404, "M_UNRECOGNIZED"),
            "{path}: {reply}"
        );
    }

    // A room the user is not in is not readable, and a message cannot be sent to it.
    let (status, room) = call_json(&h, "POST", create, Some(&token), json!({})).await;
    assert_eq!(status, 200, "{room}");
    add_user(&h, "mallory");
    let mallory = self::token(&h, "mallory").await;
    let room_id = common::rooms::encode(room["room_id"].as_str().expect("room"));
    let (status, reply) = call(
        &h,
        "GET",
        &format!("/_matrix/client/v3/rooms/{room_id}/messages?dir=b"),
        Some(&mallory),
        None,
    )
    .await;
    assert_eq!((status, errcode(&reply)), (403, "M_FORBIDDEN"), "{reply}");
    let (status, reply) = call_json(
        &h,
        "PUT",
        &format!("/_matrix/client/v3/rooms/{room_id}/send/m.room.message/1"),
        Some(&mallory),
        json!({"msgtype": "m.text", "body": "hi"}),
    )
    .await;
    assert_eq!((status, errcode(&reply)), (403, "M_FORBIDDEN"), "{reply}");

    // Registration is off by default.
    let (status, reply) = call_json(
        &h,
        "POST",
        "/_matrix/client/v3/register",
        None,
        json!({"username": "eve", "password": PASSWORD, "auth": {"type": "m.login.dummy"}}),
    )
    .await;
    assert_eq!((status, errcode(&reply)), (403, "M_FORBIDDEN"), "{reply}");

    // Logging out ends the token.
    let (status, _) = call_json(
        &h,
        "POST",
        "/_matrix/client/v3/logout",
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, reply) = call(&h, "GET", whoami, Some(&token), None).await;
    assert_eq!(
        (status, errcode(&reply)),
        (401, "M_UNKNOWN_TOKEN"),
        "{reply}"
    );
}

#[tokio::test]
async fn registration_follows_user_interactive_auth_with_a_token() {
    let ca = TestCa::new();
    let h = Hearth::start_with(
        &ca,
        &[
            ("HEARTH_REGISTRATION__ENABLED", "true"),
            ("HEARTH_REGISTRATION__TOKEN", "let-me-in"),
        ],
    );
    let register = "/_matrix/client/v3/register";
    // Without auth: the flow to follow.
    let (status, reply) = call_json(
        &h,
        "POST",
        register,
        None,
        json!({"username": "eve", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(
        reply["flows"][0]["stages"][0], "m.login.registration_token",
        "{reply}"
    );
    let session = reply["session"].as_str().expect("session").to_owned();
    // A wrong token is refused, and nothing is created.
    let (status, reply) = call_json(
        &h,
        "POST",
        register,
        None,
        json!({"username": "eve", "password": PASSWORD,
        "auth": {"type": "m.login.registration_token", "token": "guess", "session": session}}),
    )
    .await;
    assert_eq!((status, errcode(&reply)), (401, "M_FORBIDDEN"), "{reply}");
    let (status, reply) = call(
        &h,
        "GET",
        "/_matrix/client/v3/register/available?username=eve",
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, reply["available"].clone()),
        (200, json!(true)),
        "{reply}"
    );
    // The right one creates the account and logs in.
    let (status, reply) = call_json(
        &h,
        "POST",
        register,
        None,
        json!({"username": "eve", "password": PASSWORD,
        "auth": {"type": "m.login.registration_token", "token": "let-me-in", "session": session}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let token = reply["access_token"].as_str().expect("token");
    let (status, who) = call(
        &h,
        "GET",
        "/_matrix/client/v3/account/whoami",
        Some(token),
        None,
    )
    .await;
    assert_eq!(
        (status, who["user_id"].clone()),
        (200, json!(format!("@eve:{}", h.server_name)))
    );
    // Taken and invalid names.
    let (status, reply) = call_json(
        &h,
        "POST",
        register,
        None,
        json!({"username": "eve", "password": PASSWORD}),
    )
    .await;
    assert_eq!((status, errcode(&reply)), (400, "M_USER_IN_USE"), "{reply}");
    let (status, reply) = call_json(
        &h,
        "POST",
        register,
        None,
        json!({"username": "Not Valid!", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        (status, errcode(&reply)),
        (400, "M_INVALID_USERNAME"),
        "{reply}"
    );
    let (status, reply) = call(
        &h,
        "POST",
        &format!("{register}?kind=guest"),
        None,
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(
        (status, errcode(&reply)),
        (403, "M_GUEST_ACCESS_FORBIDDEN"),
        "{reply}"
    );
}

#[tokio::test]
async fn sessions_messages_and_sync_positions_survive_kill_9() {
    let ca = TestCa::new();
    let mut h = Hearth::start(&ca);
    add_user(&h, "alice");
    let token = token(&h, "alice").await;
    let (status, room) = call_json(
        &h,
        "POST",
        "/_matrix/client/v3/createRoom",
        Some(&token),
        json!({"name": "durable"}),
    )
    .await;
    assert_eq!(status, 200, "{room}");
    let room_id = common::rooms::encode(room["room_id"].as_str().expect("room"));
    let send = |n: u32| format!("/_matrix/client/v3/rooms/{room_id}/send/m.room.message/txn{n}");
    let mut sent = Vec::new();
    for n in 0..5 {
        let (status, reply) = call_json(
            &h,
            "PUT",
            &send(n),
            Some(&token),
            json!({"msgtype": "m.text", "body": format!("message {n}")}),
        )
        .await;
        assert_eq!(status, 200, "{reply}");
        sent.push(reply["event_id"].clone());
    }
    let (_, before) = call(&h, "GET", "/_matrix/client/v3/sync", Some(&token), None).await;
    let since = before["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();

    h.kill();
    h.restart();

    // The token still works; a retried transaction creates nothing new.
    let (status, reply) = call_json(
        &h,
        "PUT",
        &send(4),
        Some(&token),
        json!({"msgtype": "m.text", "body": "message 4"}),
    )
    .await;
    assert_eq!((status, &reply["event_id"]), (200, &sent[4]), "{reply}");
    // Nothing new since the old token, then exactly the new message.
    let (status, quiet) = call(
        &h,
        "GET",
        &format!("/_matrix/client/v3/sync?since={since}&timeout=0"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{quiet}");
    assert_eq!(quiet["rooms"]["join"], json!({}), "{quiet}");
    let (status, reply) = call_json(
        &h,
        "PUT",
        &send(5),
        Some(&token),
        json!({"msgtype": "m.text", "body": "after"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (_, after) = call(
        &h,
        "GET",
        &format!("/_matrix/client/v3/sync?since={since}&timeout=5000"),
        Some(&token),
        None,
    )
    .await;
    let timeline: Vec<Value> = after["rooms"]["join"]
        .as_object()
        .and_then(|rooms| rooms.values().next())
        .map(|r| {
            r["timeline"]["events"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let bodies: Vec<&str> = timeline
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert_eq!(bodies, ["after"], "{after}");
    // History reads back every message, newest first.
    let (status, history) = call(
        &h,
        "GET",
        &format!("/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit=6"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let ids: Vec<Value> = history["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .map(|e| e["event_id"].clone())
        .collect();
    // The context of a message: its neighbours either side.
    let (status, context) = call(
        &h,
        "GET",
        &format!(
            "/_matrix/client/v3/rooms/{room_id}/context/{}?limit=2",
            common::rooms::encode(sent[2].as_str().expect("id"))
        ),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{context}");
    assert_eq!(context["event"]["event_id"], sent[2]);
    assert_eq!(
        context["events_before"][0]["event_id"], sent[1],
        "{context}"
    );
    assert_eq!(context["events_after"][0]["event_id"], sent[3], "{context}");
    let mut expected: Vec<Value> = sent.iter().rev().cloned().collect();
    expected.insert(0, reply["event_id"].clone());
    assert_eq!(ids, expected);
}

/// Browsers: every answer on the client listener carries the spec's CORS
/// headers (errors and the client well-known too), and a preflight is
/// answered without running the endpoint.
#[tokio::test]
async fn browsers_get_cors_headers_and_preflights_are_answered() {
    let ca = TestCa::new();
    let h = Hearth::start_with(
        &ca,
        &[("HEARTH_WELL_KNOWN__CLIENT", "https://matrix.example.org")],
    );
    add_user(&h, "alice");
    let token = token(&h, "alice").await;
    let cors = |headers: &::http::HeaderMap| -> [String; 3] {
        [
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-headers",
        ]
        .map(|name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        })
    };
    let expected = [
        "*".to_owned(),
        "GET, POST, PUT, DELETE, OPTIONS".to_owned(),
        "X-Requested-With, Content-Type, Authorization".to_owned(),
    ];
    let target = || http::Target::Plain(h.client);
    // A preflight of a send: answered at once, and nothing is sent.
    let preflight = [
        ("origin", "https://app.element.io"),
        ("access-control-request-method", "PUT"),
        (
            "access-control-request-headers",
            "authorization, content-type",
        ),
    ];
    let send = "/_matrix/client/v3/rooms/!nowhere:localhost/send/m.room.message/t1";
    let (status, headers, body) =
        http::request_full(target(), "OPTIONS", send, &preflight, None).await;
    assert_eq!(status, 204, "{body:?}");
    assert_eq!(cors(&headers), expected);
    // Successes, errors and the client well-known carry them too.
    let bearer = format!("Bearer {token}");
    let asked = [
        ("GET", "/_matrix/client/versions", None, 200),
        (
            "GET",
            "/_matrix/client/v3/account/whoami",
            Some(bearer.as_str()),
            200,
        ),
        ("GET", "/_matrix/client/v3/account/whoami", None, 401),
        ("GET", "/_matrix/client/v3/no/such/endpoint", None, 404),
        ("GET", "/.well-known/matrix/client", None, 200),
    ];
    for (method, path, auth, want) in asked {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let (status, got, body) = http::request_full(target(), method, path, &headers, None).await;
        assert_eq!(status, want, "{path}: {body:?}");
        assert_eq!(cors(&got), expected, "{method} {path}");
    }
    // The preflight ran nothing: the room is still unknown, not created.
    let (status, _) = call(&h, "OPTIONS", "/_matrix/client/v3/createRoom", None, None).await;
    assert_eq!(status, 204);
    let (_, rooms) = call(
        &h,
        "GET",
        "/_matrix/client/v3/joined_rooms",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(rooms["joined_rooms"], serde_json::json!([]), "{rooms}");
}

/// `/versions` claims only what is served (v1.11: authenticated media,
/// not v1.12), and the unstable features clients gate on (Element offers
/// cross-signing only with `org.matrix.e2e_cross_signing`).
#[tokio::test]
async fn versions_advertise_what_is_served() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let (status, versions) = call(&h, "GET", "/_matrix/client/versions", None, None).await;
    assert_eq!(status, 200, "{versions}");
    let listed: Vec<&str> = versions["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(listed.contains(&"v1.11"), "{versions}");
    assert!(!listed.contains(&"v1.12"), "{versions}");
    assert_eq!(
        versions["unstable_features"]["org.matrix.e2e_cross_signing"], true,
        "{versions}"
    );
}

/// Membership and state changes that would change nothing: a kick of
/// someone not in the room and an unban of someone not banned are
/// refused; the same state sent twice, or a second join, makes no new
/// event; a banned user cannot rejoin until unbanned.
#[tokio::test]
async fn no_op_kicks_unbans_and_repeated_state_make_no_events() {
    use common::{client::Client, rooms::encode};
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let carol = Client::login(&h, "carol").await;
    let room = alice
        .ok("POST", "createRoom", json!({"preset": "public_chat"}))
        .await["room_id"]
        .as_str()
        .expect("room")
        .to_owned();
    let at = |action: &str| format!("rooms/{}/{action}", encode(&room));
    let timeline_length = || async {
        let path = format!("{}?dir=b&limit=100", at("messages"));
        alice.ok("GET", &path, json!(null)).await["chunk"]
            .as_array()
            .expect("chunk")
            .len()
    };

    // Carol never joined: kicking or unbanning her is refused.
    for action in ["kick", "unban"] {
        let (status, reply) = alice
            .call("POST", &at(action), json!({"user_id": carol.user}))
            .await;
        assert_eq!(
            (status, reply["errcode"].as_str()),
            (403, Some("M_FORBIDDEN")),
            "{action}: {reply}"
        );
    }

    // The same topic twice, and bob joining twice: one event each.
    let topic = format!("{}/m.room.topic", at("state"));
    let first = alice.ok("PUT", &topic, json!({"topic": "tea"})).await;
    let again = alice.ok("PUT", &topic, json!({"topic": "tea"})).await;
    assert_eq!(first["event_id"], again["event_id"]);
    let joined = bob
        .ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let before = timeline_length().await;
    let rejoined = bob
        .ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    assert_eq!(joined["room_id"], rejoined["room_id"]);
    assert_eq!(
        timeline_length().await,
        before,
        "a second join added an event"
    );
    let changed = alice.ok("PUT", &topic, json!({"topic": "coffee"})).await;
    assert_ne!(changed["event_id"], first["event_id"]);
    // `format=event` (v1.16): the whole event, not only its content.
    let content = alice.ok("GET", &topic, json!(null)).await;
    assert_eq!(content, json!({"topic": "coffee"}));
    let event = alice
        .ok("GET", &format!("{topic}?format=event"), json!(null))
        .await;
    assert_eq!(event["event_id"], changed["event_id"], "{event}");
    assert_eq!(event["content"]["topic"], "coffee", "{event}");
    assert_eq!(event["sender"], json!(alice.user), "{event}");

    // Banned, bob cannot rejoin; unbanned, he can; kicked, he is out.
    alice
        .ok("POST", &at("ban"), json!({"user_id": bob.user}))
        .await;
    let (status, _) = bob
        .call("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    assert_eq!(status, 403);
    alice
        .ok("POST", &at("unban"), json!({"user_id": bob.user}))
        .await;
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    alice
        .ok("POST", &at("kick"), json!({"user_id": bob.user}))
        .await;
    let (status, _) = alice
        .call("POST", &at("kick"), json!({"user_id": bob.user}))
        .await;
    assert_eq!(status, 403, "a second kick");
}

/// A new user's display name starts as their localpart, as with Synapse,
/// whether made by `hearth user add` or by registering.
#[tokio::test]
async fn new_users_are_named_after_their_localpart() {
    use common::{client::Client, rooms::encode};
    let ca = TestCa::new();
    let h = Hearth::start_with(&ca, &[("HEARTH_REGISTRATION__ENABLED", "true")]);
    let alice = Client::login(&h, "alice").await;
    let profile = alice
        .ok(
            "GET",
            &format!("profile/{}", encode(&alice.user)),
            json!(null),
        )
        .await;
    assert_eq!(profile["displayname"], "alice", "{profile}");
    let (status, registered) = call_json(
        &h,
        "POST",
        "/_matrix/client/v3/register",
        None,
        json!({"username": "dora", "password": PASSWORD, "auth": {"type": "m.login.dummy"}}),
    )
    .await;
    assert_eq!(status, 200, "{registered}");
    let user = registered["user_id"].as_str().expect("user");
    let profile = alice
        .ok("GET", &format!("profile/{}", encode(user)), json!(null))
        .await;
    assert_eq!(profile["displayname"], "dora", "{profile}");
}
