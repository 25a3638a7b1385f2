//! Smaller endpoints clients call every day, over a real process: jump
//! to a date (`timestamp_to_event`), a room's aliases, TURN credentials
//! by the TURN REST scheme, third-party networks (none), and the spec's
//! answers for email and phone identifiers, which this server cannot
//! validate.

mod common;

use common::{client::Client, rooms::encode, Hearth, TestCa};
use ruma::serde::{base64::Standard, Base64};
use serde_json::json;

#[tokio::test]
async fn jump_to_date_aliases_and_third_party_answers() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let room = alice
        .create_room(json!({"room_alias_name": "kitchen"}))
        .await;
    let r = encode(&room);
    let before = hearth::time::now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let sent = alice
        .ok(
            "PUT",
            &format!("rooms/{r}/send/m.room.message/t1"),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await["event_id"]
        .as_str()
        .expect("event")
        .to_owned();

    let jump = |ts: u64, dir: &str| {
        format!("/_matrix/client/v1/rooms/{r}/timestamp_to_event?ts={ts}&dir={dir}")
    };
    let call = |client: &Client<'_>, path: String| {
        let auth = format!("Bearer {}", client.token);
        let target = common::http::Target::Plain(client.h.client);
        async move {
            common::http::request(
                target,
                "GET",
                &path,
                &[("authorization", auth.as_str())],
                None,
            )
            .await
        }
    };
    let (status, found) = call(&alice, jump(before, "f")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["event_id"], sent.as_str());
    assert!(found["origin_server_ts"].as_u64() >= Some(before));
    let (status, _) = call(&bob, jump(before, "f")).await;
    assert_eq!(status, 403, "bob is not in the room");
    let (status, reply) = call(&alice, jump(before, "sideways")).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM"))
    );

    let aliases = alice
        .ok("GET", &format!("rooms/{r}/aliases"), json!(null))
        .await;
    assert_eq!(
        aliases["aliases"],
        json!([format!("#kitchen:{}", h.server_name)])
    );
    let (status, _) = bob
        .call("GET", &format!("rooms/{r}/aliases"), json!(null))
        .await;
    assert_eq!(status, 403);

    assert_eq!(
        alice.ok("GET", "thirdparty/protocols", json!(null)).await,
        json!({})
    );
    assert_eq!(
        alice
            .ok("GET", "thirdparty/location?alias=x", json!(null))
            .await,
        json!([])
    );
    assert_eq!(
        alice.ok("GET", "voip/turnServer", json!(null)).await,
        json!({})
    );

    let (status, reply) = alice
        .call(
            "POST",
            "account/3pid/email/requestToken",
            json!({"client_secret": "s", "email": "a@b.c", "send_attempt": 1}),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_THREEPID_MEDIUM_NOT_SUPPORTED"))
    );
    let (status, reply) = alice
        .call(
            "POST",
            "account/3pid/add",
            json!({"client_secret": "s", "sid": "x"}),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_THREEPID_AUTH_FAILED"))
    );
    let removed = alice
        .ok(
            "POST",
            "account/3pid/delete",
            json!({"medium": "email", "address": "a@b.c"}),
        )
        .await;
    assert_eq!(removed["id_server_unbind_result"], "no-support");
    assert_eq!(
        alice.ok("GET", "account/3pid", json!(null)).await,
        json!({"threepids": []})
    );
}

#[tokio::test]
async fn turn_credentials_follow_the_turn_rest_scheme() {
    let ca = TestCa::new();
    let secret = "a shared secret";
    let h = Hearth::start_with(
        &ca,
        &[
            (
                "HEARTH_VOIP__TURN_URIS",
                "[\"turn:turn.example.org:3478?transport=udp\"]",
            ),
            ("HEARTH_VOIP__TURN_SHARED_SECRET", secret),
            ("HEARTH_VOIP__TURN_TTL", "3600"),
        ],
    );
    let alice = Client::login(&h, "alice").await;
    let turn = alice.ok("GET", "voip/turnServer", json!(null)).await;
    let username = turn["username"].as_str().expect("username");
    let (expiry, user) = username.split_once(':').expect("expiry:user");
    assert_eq!(user, alice.user);
    let expiry: u64 = expiry.parse().expect("expiry");
    let now = hearth::time::now_ms() / 1000;
    assert!(
        (now + 3590..=now + 3610).contains(&expiry),
        "{expiry} vs {now}"
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let expected = Base64::<Standard, _>::new(
        ring::hmac::sign(&key, username.as_bytes())
            .as_ref()
            .to_vec(),
    )
    .encode();
    assert_eq!(turn["password"], expected.as_str());
    assert_eq!(
        turn["uris"],
        json!(["turn:turn.example.org:3478?transport=udp"])
    );
    assert_eq!(turn["ttl"], 3600);
}
