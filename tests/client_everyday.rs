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

#[tokio::test]
async fn room_summaries_here_and_over_federation() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&a, "bob").await;
    let carol = Client::login(&b, "carol").await;
    let public = alice
        .create_room(json!({"preset": "public_chat", "name": "Garden", "topic": "plants", "room_alias_name": "garden"}))
        .await;
    let private = alice
        .create_room(json!({"preset": "private_chat", "name": "Secret"}))
        .await;
    let summary = |client: &Client<'_>, target: String| {
        let auth = format!("Bearer {}", client.token);
        let target_addr = common::http::Target::Plain(client.h.client);
        let path = format!("/_matrix/client/v1/room_summary/{target}");
        async move {
            common::http::request(
                target_addr,
                "GET",
                &path,
                &[("authorization", auth.as_str())],
                None,
            )
            .await
        }
    };
    let alias = encode(&format!("#garden:{}", a.server_name));
    let (status, seen) = summary(&bob, alias).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["room_id"], public.as_str());
    assert_eq!(
        (seen["name"].as_str(), seen["topic"].as_str()),
        (Some("Garden"), Some("plants"))
    );
    assert_eq!(
        (
            seen["num_joined_members"].as_u64(),
            seen["join_rule"].as_str()
        ),
        (Some(1), Some("public"))
    );
    assert!(seen.get("membership").is_none(), "{seen}");
    assert!(seen["room_version"].is_string(), "{seen}");
    let (_, own) = summary(&alice, encode(&public)).await;
    assert_eq!(own["membership"], "join");
    let (status, reply) = summary(&bob, encode(&private)).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND"))
    );

    // A room B does not hold, summarised by A over federation.
    let (status, far) = summary(
        &carol,
        format!("{}?via={}", encode(&public), encode(&a.server_name)),
    )
    .await;
    assert_eq!(status, 200, "{far}");
    assert_eq!(far["name"], "Garden");
    let (status, _) = summary(&carol, encode(&private)).await;
    assert_eq!(status, 404);

    // Cross-signing uploads under the older unstable path reach the same handler.
    let auth = format!("Bearer {}", alice.token);
    let (status, reply) = common::http::request(
        common::http::Target::Plain(a.client),
        "POST",
        "/_matrix/client/unstable/keys/device_signing/upload",
        &[("authorization", auth.as_str())],
        Some(b"{}".to_vec()),
    )
    .await;
    assert_ne!(status, 404, "{reply}");
    assert_ne!(reply["errcode"], "M_UNRECOGNIZED");
}

#[tokio::test]
async fn extended_profile_fields_are_kept_and_read_over_federation() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let carol = Client::login(&b, "carol").await;
    let me = encode(&alice.user);
    alice
        .ok(
            "PUT",
            &format!("profile/{me}/m.tz"),
            json!({"m.tz": "Europe/London"}),
        )
        .await;
    alice
        .ok(
            "PUT",
            &format!("profile/{me}/org.example.pets"),
            json!({"org.example.pets": ["cat", 2]}),
        )
        .await;
    alice
        .ok(
            "PUT",
            &format!("profile/{me}/displayname"),
            json!({"displayname": "Alice"}),
        )
        .await;
    let whole = alice.ok("GET", &format!("profile/{me}"), json!(null)).await;
    assert_eq!(whole["m.tz"], "Europe/London");
    assert_eq!(whole["org.example.pets"], json!(["cat", 2]));
    assert_eq!(whole["displayname"], "Alice");

    // Carol on another server reads one field and the whole profile.
    let tz = carol
        .ok("GET", &format!("profile/{me}/m.tz"), json!(null))
        .await;
    assert_eq!(tz, json!({"m.tz": "Europe/London"}));
    let far = carol.ok("GET", &format!("profile/{me}"), json!(null)).await;
    assert_eq!(far["org.example.pets"], json!(["cat", 2]));

    alice
        .ok(
            "DELETE",
            &format!("profile/{me}/org.example.pets"),
            json!(null),
        )
        .await;
    let (status, _) = alice
        .call(
            "GET",
            &format!("profile/{me}/org.example.pets"),
            json!(null),
        )
        .await;
    assert_eq!(status, 404);
    for (key, body, code) in [
        ("Not.A.Key", json!({"Not.A.Key": 1}), "M_INVALID_PARAM"),
        ("m.tz", json!({"other": 1}), "M_MISSING_PARAM"),
        (
            "org.example.big",
            json!({"org.example.big": "x".repeat(70_000)}),
            "M_PROFILE_TOO_LARGE",
        ),
    ] {
        let (status, reply) = alice
            .call("PUT", &format!("profile/{me}/{key}"), body)
            .await;
        assert_eq!(
            (status, reply["errcode"].as_str()),
            (400, Some(code)),
            "{key}: {reply}"
        );
    }
    let long = format!("org.{}", "a".repeat(300));
    let (status, reply) = alice
        .call(
            "PUT",
            &format!("profile/{me}/{long}"),
            json!({ long.clone(): 1 }),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_KEY_TOO_LARGE"))
    );
    let (status, _) = carol
        .call("PUT", &format!("profile/{me}/m.tz"), json!({"m.tz": "UTC"}))
        .await;
    assert_eq!(status, 403);
}
