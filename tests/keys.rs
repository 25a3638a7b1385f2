//! Publishing keys, keeping them across restarts, rotating them, and the
//! notary, all on real processes.

mod common;

use common::{assert_signed_by, current_key_id, Hearth, TestCa};
use serde_json::{json, Value};

fn assert_self_signed(response: &Value, server: &str) {
    assert_signed_by(response, server, &response["verify_keys"]);
}

/// Checks that `notary` signed `response` with the key it publishes.
async fn assert_notary_signed(response: &Value, notary: &Hearth, ca: &TestCa) {
    let (_, notary_keys) = notary
        .federation_request(ca, "GET", "/_matrix/key/v2/server", &[], None)
        .await;
    assert_signed_by(response, &notary.server_name, &notary_keys["verify_keys"]);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

#[tokio::test]
async fn published_keys_are_signed_valid_and_survive_kill_9() {
    let ca = TestCa::new();
    let mut a = Hearth::start_with(&ca, &[("HEARTH_KEYS__VALIDITY", "2h")]);
    let (status, keys) = a
        .federation_request(&ca, "GET", "/_matrix/key/v2/server", &[], None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(keys["server_name"], a.server_name.as_str());
    assert_self_signed(&keys, &a.server_name);
    let valid_until = keys["valid_until_ts"].as_u64().expect("valid_until_ts");
    let expected = now_ms() + 2 * 3600 * 1000;
    assert!(
        valid_until.abs_diff(expected) < 60_000,
        "validity follows keys.validity: {valid_until} vs {expected}"
    );
    let key_ids: Vec<String> = keys["verify_keys"]
        .as_object()
        .expect("keys")
        .keys()
        .cloned()
        .collect();
    assert_eq!(key_ids.len(), 1);
    assert!(key_ids[0].starts_with("ed25519:"));

    // The deprecated per-key path answers the same keys.
    let (_, again) = a
        .federation_request(
            &ca,
            "GET",
            &format!("/_matrix/key/v2/server/{}", key_ids[0]),
            &[],
            None,
        )
        .await;
    assert_eq!(again["verify_keys"], keys["verify_keys"]);

    a.restart(); // SIGKILL, then start on the same data dir
    let after = a.server_keys(&ca).await;
    assert_eq!(
        after["verify_keys"], keys["verify_keys"],
        "a restart must never regenerate the key"
    );
}

#[tokio::test]
async fn rotation_keeps_the_old_key_published_offline_and_online() {
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let first = a.server_keys(&ca).await;
    let first_id = current_key_id(&first);

    // Online: the CLI goes through the running server's admin API.
    let out = a.command(&["keys", "rotate"]).output().expect("run rotate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = a.server_keys(&ca).await;
    let second_id = current_key_id(&second);
    assert_ne!(first_id, second_id);
    assert_eq!(
        second["old_verify_keys"][&first_id]["key"],
        first["verify_keys"][&first_id]["key"]
    );
    let expired = second["old_verify_keys"][&first_id]["expired_ts"]
        .as_u64()
        .expect("expired_ts");
    assert!(expired.abs_diff(now_ms()) < 60_000);
    assert_self_signed(&second, &a.server_name);

    // Offline: the CLI opens data/ itself.
    a.kill();
    let out = a.command(&["keys", "rotate"]).output().expect("run rotate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    a.restart();
    let third = a.server_keys(&ca).await;
    let old: Vec<&String> = third["old_verify_keys"]
        .as_object()
        .expect("old")
        .keys()
        .collect();
    assert_eq!(old.len(), 2, "{third}");
    assert!(third["verify_keys"].get(&second_id).is_none());
}

#[tokio::test]
async fn notary_answers_for_a_and_keeps_answering_when_a_is_gone() {
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let c = Hearth::start(&ca);
    // B looks keys up only through notary C.
    let trusted = format!("[\"{}\"]", c.server_name);
    let b = Hearth::start_with(&ca, &[("HEARTH_FEDERATION__TRUSTED_KEY_SERVERS", &trusted)]);

    // A talks to B; B learns A's key from C, which fetched it from A.
    let (_, reply) = a
        .admin(
            "federation/request",
            json!({"destination": b.server_name, "method": "GET", "uri": "/_matrix/federation/v1/hearth_probe"}),
        )
        .await;
    assert_eq!(
        reply["status"],
        404,
        "B must accept A via notary C: {reply}\nB: {}\nC: {}",
        b.log(),
        c.log()
    );

    let a_keys = a.server_keys(&ca).await;
    let query = format!("/_matrix/key/v2/query/{}", a.server_name);
    let (status, from_c) = c.federation_request(&ca, "GET", &query, &[], None).await;
    assert_eq!(status, 200);
    let relayed = &from_c["server_keys"][0];
    assert_eq!(relayed["verify_keys"], a_keys["verify_keys"]);
    assert_self_signed(relayed, &a.server_name);
    assert_notary_signed(relayed, &c, &ca).await;

    a.kill();
    // Asking for keys valid further out than the cache forces a refetch, which fails: the last response is served.
    let far = now_ms() + 365 * 86_400_000;
    let (status, stale) = c
        .federation_request(
            &ca,
            "GET",
            &format!("{query}?minimum_valid_until_ts={far}"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        stale["server_keys"][0]["verify_keys"], a_keys["verify_keys"],
        "{stale}"
    );
    assert_notary_signed(&stale["server_keys"][0], &c, &ca).await;

    // The batch form too, alongside a server that never existed and the notary itself.
    let batch = json!({"server_keys": {
        a.server_name.clone(): {},
        "127.0.0.1:1": {},
        c.server_name.clone(): {"ed25519:whatever": {"minimum_valid_until_ts": 0}},
    }});
    let (status, reply) = c
        .federation_request(
            &ca,
            "POST",
            "/_matrix/key/v2/query",
            &[],
            Some(batch.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let names: Vec<&str> = reply["server_keys"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["server_name"].as_str())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "unreachable servers with no cache are left out: {reply}"
    );
    assert!(names.contains(&a.server_name.as_str()) && names.contains(&c.server_name.as_str()));
}

#[tokio::test]
async fn malformed_key_queries_get_matrix_errors() {
    let ca = TestCa::new();
    let c = Hearth::start(&ca);
    let cases: [(&str, &str, Option<&str>, u16, &str); 4] = [
        (
            "GET",
            "/_matrix/key/v2/query/not%20a%20name",
            None,
            400,
            "M_INVALID_PARAM",
        ),
        (
            "GET",
            "/_matrix/key/v2/query/a.org?minimum_valid_until_ts=soon",
            None,
            400,
            "M_INVALID_PARAM",
        ),
        (
            "POST",
            "/_matrix/key/v2/query",
            Some("{nope"),
            400,
            "M_NOT_JSON",
        ),
        (
            "POST",
            "/_matrix/key/v2/query",
            Some("{\"server_keys\": 5}"),
            400,
            "M_BAD_JSON",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        let (got, reply) = c
            .federation_request(&ca, method, uri, &[], body.map(|b| b.as_bytes().to_vec()))
            .await;
        assert_eq!(
            (got, reply["errcode"].as_str().unwrap_or("")),
            (status, code),
            "{method} {uri}: {reply}"
        );
    }
}

#[tokio::test]
async fn a_bad_config_is_one_clear_line() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let out = a
        .command(&[])
        .env("HEARTH_LISTEN__FEDERATION", "not-an-address")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen.federation"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    // A second server on the same data dir is refused, not corrupting anything.
    let out = a
        .command(&[])
        .env("HEARTH_LISTEN__FEDERATION", "127.0.0.1:0")
        .env("HEARTH_LISTEN__CLIENT", "127.0.0.1:0")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_flood_of_notary_queries_costs_the_origin_one_fetch() {
    let ca = TestCa::new();
    let c = Hearth::start(&ca);
    // A "server" that accepts TCP and hangs up: every fetch attempt is one accept.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let origin = listener.local_addr().expect("addr");
    let accepts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    let query = format!("/_matrix/key/v2/query/{origin}");
    for _ in 0..20 {
        let (status, reply) = c.federation_request(&ca, "GET", &query, &[], None).await;
        assert_eq!(
            (status, reply["server_keys"].as_array().map(Vec::len)),
            (200, Some(0)),
            "{reply}"
        );
    }
    assert_eq!(
        accepts.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one fetch per server per few seconds"
    );
}
