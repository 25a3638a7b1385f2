//! Request authentication between real servers: hearth A signs, hearth B
//! fetches A's key and verifies; every kind of bad request is refused.

mod common;

use common::{
    identity::IdentityServer,
    presigned::Presigned,
    rooms::{self, create, encode, federation, membership, user},
    Hearth, TestCa,
};
use serde_json::{json, Value};

/// A federation path that exists on no server: a request that passes
/// authentication gets 404 M_UNRECOGNIZED, one that fails gets 401/400.
const PROBE: &str = "/_matrix/federation/v1/hearth_probe/t1";

async fn sign(
    a: &Hearth,
    destination: &str,
    method: &str,
    uri: &str,
    content: Option<Value>,
) -> String {
    let (status, body) = a
        .admin(
            "federation/sign",
            json!({"destination": destination, "method": method, "uri": uri, "content": content}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["authorization"]
        .as_str()
        .expect("authorization")
        .to_owned()
}

fn errcode(body: &Value) -> &str {
    body["errcode"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_signed_request_from_a_is_accepted_by_b() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let (status, body) = a
        .admin(
            "federation/request",
            json!({"destination": b.server_name, "method": "PUT", "uri": PROBE, "content": {"pdus": []}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["status"],
        404,
        "B must accept the signature: {body}\nB log: {}",
        b.log()
    );
    assert_eq!(body["body"]["errcode"], "M_UNRECOGNIZED");

    // A query string is part of what is signed.
    let uri = "/_matrix/federation/v1/hearth_probe?x=%40a%3Ab&y=1";
    let (_, body) = a
        .admin(
            "federation/request",
            json!({"destination": b.server_name, "method": "GET", "uri": uri}),
        )
        .await;
    assert_eq!(body["status"], 404, "{body}");
}

/// What, method, uri, Authorization, body, then the expected status,
/// errcode and a word the error must mention.
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a [u8],
    u16,
    &'a str,
    &'a str,
);

/// Sends `body` to `b` with `authorization` and returns (status, errcode, error).
async fn send(
    b: &Hearth,
    ca: &TestCa,
    method: &str,
    uri: &str,
    authorization: &str,
    body: &[u8],
) -> (u16, String, String) {
    let headers: Vec<(&str, &str)> = if authorization.is_empty() {
        vec![]
    } else {
        vec![("authorization", authorization)]
    };
    let (status, reply) = b
        .federation_request(ca, method, uri, &headers, Some(body.to_vec()))
        .await;
    let text = |k: &str| reply[k].as_str().unwrap_or("").to_owned();
    (status, text("errcode"), text("error"))
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_right_codes() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let content = json!({"edus": [], "pdus": [], "origin": a.server_name});
    let body = content.to_string().into_bytes();
    let header = sign(&a, &b.server_name, "PUT", PROBE, Some(content.clone())).await;

    // The genuine request passes (and makes B fetch and cache A's key).
    let (status, errcode, _) = send(&b, &ca, "PUT", PROBE, &header, &body).await;
    assert_eq!(
        (status, errcode.as_str()),
        (404, "M_UNRECOGNIZED"),
        "{}",
        b.log()
    );

    // The same content sent in another form (spaced, keys out of order)
    // is canonicalised before its signature is checked.
    let spaced = format!(
        "{{ \"pdus\": [],\n \"origin\": \"{}\", \"edus\": [] }}",
        a.server_name
    );
    assert_eq!(
        send(&b, &ca, "PUT", PROBE, &header, spaced.as_bytes())
            .await
            .0,
        404,
        "a non-canonical body of the signed content must pass"
    );

    let tampered = json!({"edus": [], "pdus": [], "origin": "evil.example"})
        .to_string()
        .into_bytes();
    let elsewhere = sign(&a, "other.example", "PUT", PROBE, Some(content.clone())).await;
    // Signed with no body: a body added later is not covered by it.
    let bodiless = sign(&a, &b.server_name, "PUT", PROBE, None).await;
    let key_start = header.find("key=\"").expect("key param") + 5;
    let key_end = key_start + header[key_start..].find('"').expect("closing quote");
    let unknown_key = format!(
        "{}ed25519:nosuchkey{}",
        &header[..key_start],
        &header[key_end..]
    );
    let unknown_origin = header.replace(&a.server_name, "127.0.0.1:1");
    let other_path = "/_matrix/federation/v1/hearth_probe/t2";
    // (what, method, uri, header, body, status, errcode, error mentions)
    let cases: Vec<Case> = vec![
        (
            "tampered body",
            "PUT",
            PROBE,
            &header,
            &tampered,
            401,
            "M_UNAUTHORIZED",
            "signature",
        ),
        (
            "replayed on another path",
            "PUT",
            other_path,
            &header,
            &body,
            401,
            "M_UNAUTHORIZED",
            "signature",
        ),
        (
            "replayed with another method",
            "POST",
            PROBE,
            &header,
            &body,
            401,
            "M_UNAUTHORIZED",
            "signature",
        ),
        (
            "signed for another server",
            "PUT",
            PROBE,
            &elsewhere,
            &body,
            401,
            "M_UNAUTHORIZED",
            "other.example",
        ),
        (
            "unpublished key",
            "PUT",
            PROBE,
            &unknown_key,
            &body,
            401,
            "M_UNAUTHORIZED",
            "nosuchkey",
        ),
        (
            "unreachable origin",
            "PUT",
            PROBE,
            &unknown_origin,
            &body,
            401,
            "M_UNAUTHORIZED",
            "127.0.0.1:1",
        ),
        (
            "scheme only",
            "PUT",
            PROBE,
            "X-Matrix",
            &body,
            400,
            "M_UNAUTHORIZED",
            "malformed",
        ),
        (
            "empty value",
            "PUT",
            PROBE,
            "X-Matrix origin=",
            &body,
            400,
            "M_UNAUTHORIZED",
            "malformed",
        ),
        (
            "another scheme",
            "PUT",
            PROBE,
            "Basic dXNlcjpwYXNz",
            &body,
            400,
            "M_UNAUTHORIZED",
            "malformed",
        ),
        (
            "bad key id",
            "PUT",
            PROBE,
            "X-Matrix origin=\"a\",key=\"k\",sig=\"!\"",
            &body,
            400,
            "M_UNAUTHORIZED",
            "malformed",
        ),
        (
            "no header",
            "PUT",
            PROBE,
            "",
            &body,
            401,
            "M_UNAUTHORIZED",
            "missing",
        ),
        (
            "bytes added to a request signed without a body",
            "PUT",
            PROBE,
            &bodiless,
            b"\xff\xfe",
            400,
            "M_NOT_JSON",
            "JSON",
        ),
        (
            "body not JSON",
            "PUT",
            PROBE,
            &header,
            b"{not json",
            400,
            "M_NOT_JSON",
            "JSON",
        ),
    ];
    for (what, method, uri, authorization, case_body, status, errcode, mentions) in cases {
        let got = send(&b, &ca, method, uri, authorization, case_body).await;
        assert_eq!(
            (got.0, got.1.as_str()),
            (status, errcode),
            "{what}: {}",
            got.2
        );
        assert!(
            got.2.contains(mentions),
            "{what}: {:?} should mention {mentions:?}",
            got.2
        );
    }

    // The genuine request still passes afterwards: nothing was poisoned.
    assert_eq!(send(&b, &ca, "PUT", PROBE, &header, &body).await.0, 404);
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_verification() {
    let ca = TestCa::new();
    let b = Hearth::start(&ca);
    let header = "X-Matrix origin=\"127.0.0.1:1\",key=\"ed25519:x\",sig=\"K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ\"";
    let (status, reply) = common::http::declare_body(
        common::http::Target::Tls(b.federation, ca.ca_pem()),
        "PUT",
        PROBE,
        &[("authorization", header)],
        9 * 1024 * 1024,
    )
    .await;
    assert_eq!((status, errcode(&reply)), (413, "M_TOO_LARGE"), "{reply}");
}

#[tokio::test]
async fn unknown_endpoints_and_methods_get_matrix_errors() {
    let ca = TestCa::new();
    let b = Hearth::start(&ca);
    let (status, reply) = b
        .federation_request(&ca, "GET", "/not/matrix", &[], None)
        .await;
    assert_eq!((status, errcode(&reply)), (404, "M_UNRECOGNIZED"));
    let (status, reply) = b
        .federation_request(&ca, "DELETE", "/_matrix/key/v2/server", &[], None)
        .await;
    assert_eq!(errcode(&reply), "M_UNRECOGNIZED", "{status} {reply}");
    assert!(status == 405 || status == 404, "{status}");
    let (status, reply) = b
        .federation_request(&ca, "GET", "/_matrix/federation/v1/version", &[], None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(reply["server"]["name"], "hearth");
}

#[tokio::test]
async fn a_server_that_reaches_us_is_no_longer_backed_off() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let port = common::free_port();
    let b_name = format!("127.0.0.1:{port}");
    let probe = json!({"destination": b_name, "method": "GET", "uri": PROBE});
    let (status, reply) = a.admin("federation/request", probe.clone()).await;
    assert_eq!(status, 502, "B is down: {reply}");
    let (_, reply) = a.admin("federation/request", probe.clone()).await;
    assert!(
        reply["error"].as_str().unwrap_or("").contains("not trying"),
        "{reply}"
    );

    // B comes up and talks to A: A now knows B is back.
    let b = Hearth::start_at(&ca, &b_name, b_name.parse().expect("addr"), &[]);
    let (_, reply) = b
        .admin(
            "federation/request",
            json!({"destination": a.server_name, "method": "GET", "uri": PROBE}),
        )
        .await;
    assert_eq!(reply["status"], 404, "{reply}");
    let (status, reply) = a.admin("federation/request", probe).await;
    assert_eq!(
        (status, reply["status"].as_u64()),
        (200, Some(404)),
        "{reply}"
    );
}

/// A's requests wait for A's slot on B, beyond that they are refused with
/// 429, and C is served meanwhile. A's slot is held by an exchange of a
/// third-party invite, which B answers only once A has answered B's
/// `/invite`, and A is frozen meanwhile.
#[tokio::test]
async fn a_server_with_too_many_requests_in_progress_waits_then_is_refused() {
    let ca = TestCa::new();
    let (a, c) = (Hearth::start(&ca), Hearth::start(&ca));
    let b = Hearth::start_with(
        &ca,
        &[
            ("HEARTH_METRICS__ENABLED", "true"),
            ("HEARTH_FEDERATION__REQUESTS_PER_SERVER", "1"),
            ("HEARTH_FEDERATION__WAITING_PER_SERVER", "1"),
        ],
    );
    let (bob, alice) = (user(&b, "bob"), user(&a, "alice"));
    let identity = IdentityServer::new();
    let room = create(&b, &bob, "12").await;
    let (status, reply) = rooms::send(
        &b,
        &room,
        json!({"sender": bob, "type": "m.room.third_party_invite", "state_key": "tok1",
               "content": {"display_name": "a...@example.org",
                           "key_validity_url": "https://identity.test/_matrix/identity/v2/pubkey/isvalid",
                           "public_key": identity.public_key(),
                           "public_keys": [{"public_key": identity.public_key()}]}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let exchange = Presigned::new(
        &a,
        &b,
        "PUT",
        &format!(
            "/_matrix/federation/v1/exchange_third_party_invite/{}",
            encode(&room)
        ),
        Some(
            json!({"type": "m.room.member", "room_id": room, "sender": bob, "state_key": alice,
                    "content": {"membership": "invite",
                                "third_party_invite": {"signed": identity.sign(&alice, "tok1")}}}),
        ),
    )
    .await;
    let devices = format!("/_matrix/federation/v1/user/devices/{}", encode(&bob));
    let lookup = Presigned::new(&a, &b, "GET", &devices, None).await;
    // B learns A's key while A can answer.
    assert_eq!(lookup.send(&b, &ca).await.0, 200);

    a.freeze();
    let thawed = std::sync::atomic::AtomicBool::new(false);
    let b = &b;
    let gauge = |state: &'static str| async move {
        let name = format!("hearth_federation_inbound_requests{{state=\"{state}\"}}");
        let started = std::time::Instant::now();
        while b.metric(&name).await != 1 {
            assert!(started.elapsed().as_secs() < 20, "no request {state}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let waiting = async {
        gauge("running").await;
        let answer = lookup.send(b, &ca).await;
        (answer, thawed.load(std::sync::atomic::Ordering::SeqCst))
    };
    let probes = async {
        gauge("running").await;
        gauge("waiting").await;
        let refused = lookup.send(b, &ca).await;
        let other = federation(&c, b, "GET", &devices, None).await;
        thawed.store(true, std::sync::atomic::Ordering::SeqCst);
        a.thaw();
        (refused, other)
    };
    let (exchanged, (waited, after_thaw), ((status, refused), (other, _))) =
        tokio::join!(exchange.send(b, &ca), waiting, probes);
    assert_eq!(
        (status, refused["errcode"].as_str()),
        (429, Some("M_LIMIT_EXCEEDED")),
        "{refused}"
    );
    assert!(refused["retry_after_ms"].as_u64().is_some(), "{refused}");
    assert_eq!(other, 200, "another server is served");
    assert_eq!(waited.0, 200, "{:?}", waited.1);
    assert!(after_thaw, "answered before its turn");
    assert_eq!(exchanged.0, 200, "{}\n{}", exchanged.1, b.log());
    assert_eq!(
        membership(b, &room, &alice).await.as_deref(),
        Some("invite")
    );
    assert_eq!(b.metric("hearth_federation_inbound_limited_total").await, 1);
}
