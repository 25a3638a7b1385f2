//! User-interactive auth as the spec has it: a session per operation, the
//! first 401 a plain challenge, failures reported with the session's
//! progress, a session unable to complete another request; registration
//! in two steps that remembers the first, idempotent, with any password.

mod common;

use common::{client::Client, client::PASSWORD, http, Hearth, TestCa};
use serde_json::{json, Value};

async fn post(h: &Hearth, path: &str, body: Value) -> (u16, Value) {
    http::request(
        http::Target::Plain(h.client),
        "POST",
        &format!("/_matrix/client/v3/{path}"),
        &[],
        Some(body.to_string().into_bytes()),
    )
    .await
}

fn password_auth(user: &str, password: &str, session: &str) -> Value {
    json!({"auth": {"type": "m.login.password", "session": session, "password": password,
        "identifier": {"type": "m.id.user", "user": user}}})
}

#[tokio::test]
async fn a_uia_session_completes_only_the_request_it_began_with() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let second = Client::login_again(&h, "alice").await;
    let third = Client::login_again(&h, "alice").await;
    let delete = |device: &str| format!("devices/{device}");

    // The first answer is the challenge: flows, params, a session, no errcode.
    let (status, challenge) = alice
        .call("DELETE", &delete(&second.device), json!({}))
        .await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.get("errcode").is_none(), "{challenge}");
    assert_eq!(
        challenge["flows"],
        json!([{"stages": ["m.login.password"]}])
    );
    assert!(challenge["params"].is_object(), "{challenge}");
    let session = challenge["session"].as_str().expect("session").to_owned();

    // A wrong password: 401 with an errcode, the same session, no progress.
    let (status, reply) = alice
        .call(
            "DELETE",
            &delete(&second.device),
            password_auth(&alice.user, "wrong", &session),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (401, Some("M_FORBIDDEN")),
        "{reply}"
    );
    assert_eq!(reply["session"], session.as_str());
    assert_eq!(reply["completed"], json!([]));

    // The session cannot delete another device, even with the password.
    let (status, reply) = alice
        .call(
            "DELETE",
            &delete(&third.device),
            password_auth(&alice.user, PASSWORD, &session),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{reply}"
    );
    let (status, _) = third.call("GET", "account/whoami", json!(null)).await;
    assert_eq!(status, 200, "the third device was deleted");

    // Nor can a made-up one.
    let (status, reply) = alice
        .call(
            "DELETE",
            &delete(&third.device),
            password_auth(&alice.user, PASSWORD, "made-up"),
        )
        .await;
    assert_eq!(status, 400, "{reply}");

    // The right password in the right session does it.
    alice
        .ok(
            "DELETE",
            &delete(&second.device),
            password_auth(&alice.user, PASSWORD, &session),
        )
        .await;
    let (status, _) = second.call("GET", "account/whoami", json!(null)).await;
    assert_eq!(status, 401, "the second device still works");

    // Several at once, as Element's session manager does it.
    let devices = json!({"devices": [third.device]});
    let (status, challenge) = alice.call("POST", "delete_devices", devices.clone()).await;
    assert_eq!(status, 401, "{challenge}");
    let mut confirmed = password_auth(
        &alice.user,
        PASSWORD,
        challenge["session"].as_str().expect("session"),
    );
    confirmed["devices"] = devices["devices"].clone();
    alice.ok("POST", "delete_devices", confirmed).await;
    let (status, _) = third.call("GET", "account/whoami", json!(null)).await;
    assert_eq!(status, 401, "the third device still works");
}

#[tokio::test]
async fn registration_remembers_its_first_step_and_is_idempotent() {
    let ca = TestCa::new();
    let h = Hearth::start_with(&ca, &[("HEARTH_REGISTRATION__ENABLED", "true")]);
    let password = "pässwörd — 長いパスワード 🔑";

    let (status, challenge) = post(
        &h,
        "register",
        json!({"username": "zoe", "password": password, "initial_device_display_name": "phone"}),
    )
    .await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.get("errcode").is_none(), "{challenge}");
    assert_eq!(challenge["flows"], json!([{"stages": ["m.login.dummy"]}]));
    let session = challenge["session"].as_str().expect("session").to_owned();

    // The second step names only the session.
    let complete = json!({"auth": {"type": "m.login.dummy", "session": session}});
    let (status, first) = post(&h, "register", complete.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["user_id"], format!("@zoe:{}", h.server_name));
    let token = first["access_token"].as_str().expect("token");
    let (status, devices) = http::request(
        http::Target::Plain(h.client),
        "GET",
        "/_matrix/client/v3/devices",
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(devices["devices"][0]["display_name"], "phone", "{devices}");

    // Completing the same session again is the same account.
    let (status, again) = post(&h, "register", complete).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["user_id"], first["user_id"]);

    // The non-ASCII password logs in.
    let (status, login) = post(
        &h,
        "login",
        json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "zoe"}, "password": password}),
    )
    .await;
    assert_eq!(status, 200, "{login}");

    // inhibit_login: the account, no session.
    let (_, challenge) = post(
        &h,
        "register",
        json!({"username": "yan", "password": PASSWORD, "inhibit_login": true}),
    )
    .await;
    let session = challenge["session"].as_str().expect("session");
    let (status, reply) = post(
        &h,
        "register",
        json!({"auth": {"type": "m.login.dummy", "session": session}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["user_id"], format!("@yan:{}", h.server_name));
    assert!(reply.get("access_token").is_none(), "{reply}");

    // A registration session cannot change a password.
    let zoe_token = first["access_token"].as_str().expect("token");
    let (_, reg) = post(
        &h,
        "register",
        json!({"username": "xia", "password": PASSWORD}),
    )
    .await;
    let reg_session = reg["session"].as_str().expect("session");
    let (status, reply) = http::request(
        http::Target::Plain(h.client),
        "POST",
        "/_matrix/client/v3/account/password",
        &[("authorization", &format!("Bearer {zoe_token}"))],
        Some(
            json!({"new_password": "another long password", "auth": {"type": "m.login.password",
                "session": reg_session, "password": password, "identifier": {"type": "m.id.user", "user": "zoe"}}})
            .to_string()
            .into_bytes(),
        ),
    )
    .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{reply}"
    );
}
