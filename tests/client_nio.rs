//! The client-server API driven by a real Matrix client library
//! (matrix-nio): two users of one hearth chat; a user of one hearth and a
//! user of another chat over federation. Both run the same conversation:
//! invite, join, messages both ways in order, history, profiles, leave.

mod common;

use std::time::Duration;

use common::{nio::run_script, Hearth, TestCa};

const PASSWORD: &str = "correct horse battery staple";

/// Creates a user through the `hearth` CLI, which goes through the running
/// server's admin API.
fn add_user(h: &Hearth, name: &str) -> String {
    let out = h
        .command(&["user", "add", name, "--password", PASSWORD])
        .output()
        .expect("hearth user add");
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("@{name}:{}", h.server_name)
}

fn chat(a: &Hearth, user_a: &str, b: &Hearth, user_b: &str) -> serde_json::Value {
    let url = |h: &Hearth| format!("http://{}", h.client);
    let args = [
        url(a),
        user_a.to_owned(),
        PASSWORD.to_owned(),
        url(b),
        user_b.to_owned(),
        PASSWORD.to_owned(),
    ];
    let out = run_script("chat.py", &args, Duration::from_secs(240));
    serde_json::from_str(out.trim()).expect("report")
}

#[test]
fn two_users_of_one_hearth_chat_with_matrix_nio() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = add_user(&h, "alice");
    let bob = add_user(&h, "bob");
    let report = chat(&h, &alice, &h, &bob);
    assert_eq!(report["ok"], true, "{report}\n{}", h.log());
}

#[test]
fn users_of_two_hearths_chat_over_federation_with_matrix_nio() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = add_user(&a, "alice");
    let bob = add_user(&b, "bob");
    let report = chat(&a, &alice, &b, &bob);
    assert_eq!(report["ok"], true, "{report}\n{}\n{}", a.log(), b.log());
}
