//! The client-server API driven by a real Matrix client library
//! (matrix-nio): two users of one hearth chat; a user of one hearth and a
//! user of another chat over federation; a hearth user and a real Synapse
//! user chat, each side creating the room, and again after hearth
//! restarts. All run the same conversation: invite, join, messages both
//! ways in order, history, profiles, leave.

mod common;

use std::time::Duration;

use common::{nio::run_script, synapse::Synapse, Hearth, TestCa};

const PASSWORD: &str = "correct horse battery staple";
/// What the Synapse harness registers its users with.
const SYNAPSE_PASSWORD: &str = "correct horse battery";

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

/// Runs the conversation; `Err` holds what the script printed.
fn converse(args: &[String]) -> Result<serde_json::Value, String> {
    let out = run_script("chat.py", args, Duration::from_secs(240))?;
    serde_json::from_str(out.trim()).map_err(|e| format!("report {out:?}: {e}"))
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
    converse(&args).unwrap_or_else(|e| panic!("{e}\n{}\n{}", a.log(), b.log()))
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

/// A hearth user and a Synapse user chat both ways (each side creating the
/// room once), and again after hearth restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hearth_user_and_a_synapse_user_chat_with_matrix_nio() {
    let ca = TestCa::new();
    let mut h = Hearth::start(&ca);
    let syn = Synapse::start(&ca);
    let alice = add_user(&h, "alice");
    syn.register("bob").await;
    let bob = syn.user_id("bob");
    let hearth = (format!("http://{}", h.client), alice, PASSWORD.to_owned());
    let synapse = (
        format!("http://{}", syn.client),
        bob,
        SYNAPSE_PASSWORD.to_owned(),
    );
    let run = |h: &Hearth, a: &(String, String, String), b: &(String, String, String)| {
        let args = [&a.0, &a.1, &a.2, &b.0, &b.1, &b.2].map(|s| s.to_string());
        let report = tokio::task::block_in_place(|| converse(&args))
            .unwrap_or_else(|e| panic!("{e}\n--- hearth\n{}\n--- synapse\n{}", h.log(), syn.log()));
        assert_eq!(report["ok"], true, "{report}");
    };
    run(&h, &hearth, &synapse);
    run(&h, &synapse, &hearth);
    h.restart();
    run(&h, &hearth, &synapse);
}
