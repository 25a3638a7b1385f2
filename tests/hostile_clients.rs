//! What a stranger can do at the client API without an account: guess
//! passwords only slowly, and not learn which accounts exist.

mod common;

use std::time::{Duration, Instant};

use common::{client::PASSWORD, http, Hearth, TestCa};
use serde_json::{json, Value};

/// A password login for `user`, as if forwarded by a proxy on this
/// machine for `address` (127.0.0.1 is a proxy address by default).
async fn login(hearth: &Hearth, user: &str, password: &str, address: &str) -> (u16, Value) {
    let body = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    });
    http::request(
        http::Target::Plain(hearth.client),
        "POST",
        "/_matrix/client/v3/login",
        &[("x-forwarded-for", address)],
        Some(body.to_string().into_bytes()),
    )
    .await
}

fn add_user(hearth: &Hearth, name: &str) {
    let out = hearth
        .command(&["user", "add", name, "--password", PASSWORD])
        .output()
        .expect("user add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn logins_are_limited_per_address_and_failures_per_account() {
    let ca = TestCa::new();
    let hearth = Hearth::start(&ca);
    add_user(&hearth, "alice");
    // One address: a burst of 5 attempts, then 429 with a wait.
    for i in 0..5 {
        let (status, reply) = login(&hearth, &format!("nobody{i}"), "guess", "203.0.113.5").await;
        assert_eq!(status, 403, "attempt {i}: {reply}");
    }
    let (status, reply) = login(&hearth, "nobody9", "guess", "203.0.113.5").await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (429, Some("M_LIMIT_EXCEEDED")),
        "{reply}"
    );
    let wait = reply["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!((1..=10_000).contains(&wait), "{wait}");
    // Another address is not held up by it.
    let (status, reply) = login(&hearth, "alice", PASSWORD, "203.0.113.6").await;
    assert_eq!(status, 200, "{reply}");

    // Wrong passwords for one account from many addresses: after 5, the
    // account takes no more guesses for a while, the right one included.
    for i in 0..5 {
        let address = format!("198.51.100.{i}");
        assert_eq!(login(&hearth, "alice", "wrong", &address).await.0, 403);
    }
    let (status, reply) = login(&hearth, "alice", PASSWORD, "198.51.100.99").await;
    assert_eq!(status, 429, "{reply}");
}

#[tokio::test]
async fn an_unknown_account_answers_as_slowly_as_a_wrong_password() {
    let ca = TestCa::new();
    let hearth = Hearth::start_with(&ca, &[("HEARTH_LIMITS__LOGIN_BURST", "100")]);
    add_user(&hearth, "alice");
    let mut known = Duration::ZERO;
    let mut unknown = Duration::ZERO;
    // Alternated, so that the machine's drift falls on both alike.
    for i in 0..4 {
        let address = format!("192.0.2.{i}");
        let started = Instant::now();
        assert_eq!(login(&hearth, "alice", "wrong", &address).await.0, 403);
        known += started.elapsed();
        let started = Instant::now();
        assert_eq!(login(&hearth, "mallory", "wrong", &address).await.0, 403);
        unknown += started.elapsed();
    }
    assert!(
        unknown * 2 > known && known * 2 > unknown,
        "wrong password took {known:?}, unknown account {unknown:?}"
    );
}
