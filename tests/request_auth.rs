//! Request authentication between real servers: hearth A signs, hearth B
//! fetches A's key and verifies; every kind of bad request is refused.

mod common;

use common::{Hearth, TestCa};
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

#[tokio::test]
async fn bad_requests_are_refused_with_the_right_codes() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let content = json!({"edus": [], "pdus": [], "origin": a.server_name});
    let body = content.to_string().into_bytes();
    let header = sign(&a, &b.server_name, "PUT", PROBE, Some(content.clone())).await;

    // The genuine request passes (and makes B fetch and cache A's key).
    let (status, reply) = b
        .federation_request(
            &ca,
            "PUT",
            PROBE,
            &[("authorization", &header)],
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (status, errcode(&reply)),
        (404, "M_UNRECOGNIZED"),
        "{reply} {}",
        b.log()
    );

    // Tampered body.
    let tampered = json!({"edus": [], "pdus": [], "origin": "evil.example"})
        .to_string()
        .into_bytes();
    let (status, reply) = b
        .federation_request(
            &ca,
            "PUT",
            PROBE,
            &[("authorization", &header)],
            Some(tampered),
        )
        .await;
    assert_eq!(
        (status, errcode(&reply)),
        (401, "M_UNAUTHORIZED"),
        "{reply}"
    );
    assert!(
        reply["error"].as_str().unwrap_or("").contains("signature"),
        "{reply}"
    );

    // Same signature replayed against another path or method.
    let other_path = "/_matrix/federation/v1/hearth_probe/t2";
    let (status, _) = b
        .federation_request(
            &ca,
            "PUT",
            other_path,
            &[("authorization", &header)],
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = b
        .federation_request(
            &ca,
            "POST",
            PROBE,
            &[("authorization", &header)],
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 401);

    // Signed for another destination.
    let elsewhere = sign(&a, "other.example", "PUT", PROBE, Some(content.clone())).await;
    let (status, reply) = b
        .federation_request(
            &ca,
            "PUT",
            PROBE,
            &[("authorization", &elsewhere)],
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (status, errcode(&reply)),
        (401, "M_UNAUTHORIZED"),
        "{reply}"
    );
    assert!(
        reply["error"]
            .as_str()
            .unwrap_or("")
            .contains("other.example"),
        "{reply}"
    );

    // A key id A never published.
    let key_start = header.find("key=\"").expect("key param") + 5;
    let key_end = key_start + header[key_start..].find('"').expect("closing quote");
    let unknown_key = format!(
        "{}ed25519:nosuchkey{}",
        &header[..key_start],
        &header[key_end..]
    );
    let (status, reply) = b
        .federation_request(
            &ca,
            "PUT",
            PROBE,
            &[("authorization", &unknown_key)],
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (status, errcode(&reply)),
        (401, "M_UNAUTHORIZED"),
        "{reply}"
    );
    assert!(
        reply["error"].as_str().unwrap_or("").contains("nosuchkey"),
        "{reply}"
    );

    // An origin that does not exist: its keys cannot be fetched.
    let (status, reply) = b
        .federation_request(
            &ca,
            "PUT",
            PROBE,
            &[(
                "authorization",
                &header.replace(&a.server_name, "127.0.0.1:1"),
            )],
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (status, errcode(&reply)),
        (401, "M_UNAUTHORIZED"),
        "{reply}"
    );

    // Garbled and missing headers.
    for garbled in [
        "X-Matrix",
        "X-Matrix origin=",
        "Basic dXNlcjpwYXNz",
        "X-Matrix origin=\"a\",key=\"k\",sig=\"!\"",
    ] {
        let (status, reply) = b
            .federation_request(
                &ca,
                "PUT",
                PROBE,
                &[("authorization", garbled)],
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, errcode(&reply)),
            (400, "M_UNAUTHORIZED"),
            "{garbled}: {reply}"
        );
    }
    let (status, reply) = b
        .federation_request(&ca, "PUT", PROBE, &[], Some(body.clone()))
        .await;
    assert_eq!(
        (status, errcode(&reply)),
        (401, "M_UNAUTHORIZED"),
        "{reply}"
    );

    // A body that is not JSON.
    let (status, reply) = b
        .federation_request(
            &ca,
            "PUT",
            PROBE,
            &[("authorization", &header)],
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_eq!((status, errcode(&reply)), (400, "M_NOT_JSON"), "{reply}");

    // The genuine request still passes afterwards: nothing was poisoned.
    let (status, _) = b
        .federation_request(&ca, "PUT", PROBE, &[("authorization", &header)], Some(body))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_verification() {
    let ca = TestCa::new();
    let b = Hearth::start(&ca);
    let huge = vec![b'a'; 9 * 1024 * 1024];
    let header = "X-Matrix origin=\"127.0.0.1:1\",key=\"ed25519:x\",sig=\"K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ\"";
    let (status, reply) = b
        .federation_request(&ca, "PUT", PROBE, &[("authorization", header)], Some(huge))
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
