//! `hearth export` / `hearth import`: a server with rooms, users, keys and
//! a federation queue goes out to one engine-neutral file (while running
//! or stopped) and comes back the same server; a file cut short is
//! refused without leaving a half-made data directory.

mod common;

use std::path::Path;

use common::{client::Client, free_port, rooms, Hearth, TestCa};
use serde_json::{json, Value};

/// Runs `hearth args` on `hearth`'s settings with another data directory.
fn run_on(hearth: &Hearth, data_dir: &Path, args: &[&str]) -> std::process::Output {
    hearth
        .command(args)
        .env("HEARTH_DATA_DIR", data_dir)
        .output()
        .expect("run hearth")
}

fn succeeded(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The export's lines but its header (which carries the time) and the
/// id counter's ceiling (opening a database reserves ids), as parsed JSON.
fn content(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .expect("export")
        .lines()
        .skip(1)
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
        .filter(|line| line["tree"] != "counters")
        .collect()
}

fn queued_for(status: &Value, destination: &str) -> u64 {
    status["destinations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["destination"] == destination)
        .and_then(|d| d["queued"].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn an_export_round_trips_a_server_with_rooms_users_keys_and_queues() {
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let mut b = Hearth::start(&ca);
    let (room, alice, _bob) = rooms::shared_room(&a, &b).await;
    let client = Client::login_again(&a, "alice").await;
    let device_keys = client.device_keys("curve-alice");
    client
        .ok("POST", "keys/upload", json!({ "device_keys": device_keys }))
        .await;
    b.kill();
    let mut said = Vec::new();
    for i in 0..3 {
        said.push(rooms::say(&a, &room, &alice, &format!("while B is down {i}")).await);
    }
    let key = common::current_key_id(&a.server_keys(&ca).await);
    let files = tempfile::tempdir().expect("dir");
    let running = files.path().join("running.jsonl");
    let out = a.cli(&["export", &running.to_string_lossy()]);
    assert!(out.contains("exported"), "{out}");
    let token = client.token.clone();
    drop(client);

    a.kill();
    let queued = queued_for(&a.federation_status(), &b.server_name);
    assert!(queued >= 3, "the messages to B are queued");
    let stopped = files.path().join("stopped.jsonl");
    a.cli(&["export", &stopped.to_string_lossy()]);
    let lines = content(&stopped);
    assert!(
        lines.iter().any(|l| l["file"] == "identity.json"),
        "the identity goes with the export"
    );
    for tree in ["events", "users", "device_keys", "outbound", "signing_keys"] {
        assert!(lines.iter().any(|l| l["tree"] == tree), "no {tree} records");
    }
    assert!(!content(&running).is_empty());

    let imported = files.path().join("imported");
    succeeded(run_on(
        &a,
        &imported,
        &["import", &stopped.to_string_lossy()],
    ));
    let again = files.path().join("again.jsonl");
    succeeded(run_on(&a, &imported, &["export", &again.to_string_lossy()]));
    assert_eq!(
        content(&again),
        lines,
        "import then export changed something"
    );

    let federation = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let dir = imported.to_string_lossy().into_owned();
    let restored = Hearth::start_at(
        &ca,
        &a.server_name,
        federation,
        &[("HEARTH_DATA_DIR", &dir)],
    );
    assert_eq!(
        common::current_key_id(&restored.server_keys(&ca).await),
        key
    );
    let status = restored.federation_status();
    assert_eq!(queued_for(&status, &b.server_name), queued, "{status}");
    let alice_there = Client {
        h: &restored,
        token,
        user: alice.clone(),
        device: String::new(),
    };
    for id in &said {
        let path = format!("rooms/{}/event/{}", rooms::encode(&room), rooms::encode(id));
        alice_there.ok("GET", &path, json!(null)).await;
    }
    let query = json!({"device_keys": {alice.clone(): []}});
    let keys = alice_there.ok("POST", "keys/query", query).await;
    assert!(
        keys["device_keys"][&alice]
            .as_object()
            .is_some_and(|d| !d.is_empty()),
        "{keys}"
    );
    Client::login_again(&restored, "alice").await;
}

#[tokio::test]
async fn an_export_cut_short_is_refused_and_leaves_nothing() {
    let ca = TestCa::new();
    let mut hearth = Hearth::start(&ca);
    rooms::user(&hearth, "alice");
    hearth.kill();
    let files = tempfile::tempdir().expect("dir");
    let whole = files.path().join("whole.jsonl");
    hearth.cli(&["export", &whole.to_string_lossy()]);
    let text = std::fs::read_to_string(&whole).expect("export");
    let cut = files.path().join("cut.jsonl");
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, kept[..kept.len() - 1].join("\n")).expect("write");
    let target = files.path().join("target");
    let out = run_on(&hearth, &target, &["import", &cut.to_string_lossy()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cut short"), "{stderr}");
    assert!(!target.exists(), "a half-made data directory was left");
    // Into a directory that holds a server: refused.
    let out = run_on(
        &hearth,
        &hearth.data_dir(),
        &["import", &whole.to_string_lossy()],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}
