//! Refresh tokens over a real process: a client that asks gets one with
//! an access token that expires (`M_UNKNOWN_TOKEN`, `soft_logout: true`
//! once it has); `/refresh` renews the pair once, across a `kill -9`;
//! clients that did not ask keep tokens that never expire; logging out
//! ends the refresh token too.

mod common;

use std::time::Duration;

use common::{client::PASSWORD, http, rooms::user, Hearth, TestCa};
use serde_json::{json, Value};

async fn call(
    h: &Hearth,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let body = (method != "GET").then(|| body.to_string().into_bytes());
    http::request(
        http::Target::Plain(h.client),
        method,
        &format!("/_matrix/client/v3/{path}"),
        &headers,
        body,
    )
    .await
}

async fn login(h: &Hearth, name: &str, refresh: bool) -> Value {
    let body = json!({"type": "m.login.password", "user": name, "password": PASSWORD, "refresh_token": refresh});
    let (status, reply) = call(h, "POST", "login", None, body).await;
    assert_eq!(status, 200, "{reply}");
    reply
}

async fn whoami(h: &Hearth, token: &str) -> (u16, Value) {
    call(h, "GET", "account/whoami", Some(token), json!(null)).await
}

fn text<'a>(reply: &'a Value, field: &str) -> &'a str {
    reply[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {reply}"))
}

#[tokio::test]
async fn refreshable_tokens_expire_and_are_renewed_once() {
    let ca = TestCa::new();
    let mut h = Hearth::start_with(&ca, &[("HEARTH_AUTH__ACCESS_TOKEN_LIFETIME", "2")]);
    user(&h, "alice");
    let lasting = login(&h, "alice", false).await;
    assert!(lasting.get("refresh_token").is_none(), "{lasting}");
    let session = login(&h, "alice", true).await;
    assert_eq!(session["expires_in_ms"], 2000, "{session}");
    let (access, refresh) = (
        text(&session, "access_token"),
        text(&session, "refresh_token"),
    );
    assert_eq!(whoami(&h, access).await.0, 200);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, reply) = whoami(&h, access).await;
    assert_eq!(
        (
            status,
            reply["errcode"].as_str(),
            reply["soft_logout"].as_bool()
        ),
        (401, Some("M_UNKNOWN_TOKEN"), Some(true)),
        "{reply}"
    );
    assert_eq!(
        whoami(&h, text(&lasting, "access_token")).await.0,
        200,
        "a token without refresh never expires"
    );

    let (status, renewed) = call(
        &h,
        "POST",
        "refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["expires_in_ms"], 2000);
    let (status, me) = whoami(&h, text(&renewed, "access_token")).await;
    assert_eq!(
        (status, me["device_id"].clone()),
        (200, session["device_id"].clone()),
        "the same device"
    );
    // The old refresh token was used up.
    let (status, reply) = call(
        &h,
        "POST",
        "refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (401, Some("M_UNKNOWN_TOKEN")),
        "{reply}"
    );
    let (status, reply) = call(&h, "POST", "refresh", None, json!({})).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_MISSING_PARAM")),
        "{reply}"
    );

    // Kept across kill -9: the new refresh token still renews.
    h.kill();
    h.restart();
    let (status, again) = call(
        &h,
        "POST",
        "refresh",
        None,
        json!({"refresh_token": text(&renewed, "refresh_token")}),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    let token = text(&again, "access_token");
    assert_eq!(whoami(&h, token).await.0, 200);

    // Logging out ends the refresh token with the session.
    let (status, _) = call(&h, "POST", "logout", Some(token), json!({})).await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &h,
        "POST",
        "refresh",
        None,
        json!({"refresh_token": text(&again, "refresh_token")}),
    )
    .await;
    assert_eq!(status, 401);
}
