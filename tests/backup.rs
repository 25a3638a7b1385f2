//! Backups of a running server: `hearth backup DIR` under continuous
//! writes gives a directory hearth starts on as the same server, holding
//! every event acknowledged before the backup began; a server started on
//! a backup drops the one-time keys it may have handed out; scheduled
//! backups rotate.

mod common;

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use common::{client::Client, free_port, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

/// Writes go on without the per-user message limit; the copy is slowed
/// to 512 KiB/s so that many writes land while it runs.
const BUSY: [(&str, &str); 3] = [
    ("HEARTH_LIMITS__MESSAGES_BURST", "1000000"),
    ("HEARTH_LIMITS__MESSAGES_PER_MINUTE", "1000000"),
    ("HEARTH_BACKUP__KIB_PER_SEC", "512"),
];

/// Sends messages until `stop`, noting each acknowledged event and when.
async fn keep_sending(
    client: &Client<'_>,
    room: &str,
    tag: &str,
    stop: &AtomicBool,
    acked: &Mutex<Vec<(String, Instant)>>,
) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let path = format!("rooms/{}/send/m.room.message/{tag}{n}", encode(room));
        let body = json!({"msgtype": "m.text", "body": format!("{tag} {n}")});
        let reply = client.ok("PUT", &path, body).await;
        let id = reply["event_id"].as_str().expect("event_id").to_owned();
        acked.lock().expect("lock").push((id, Instant::now()));
        n += 1;
    }
}

async fn one_time_keys(client: &Client<'_>) -> u64 {
    let reply = client.ok("POST", "keys/upload", json!({})).await;
    reply["one_time_key_counts"]["signed_curve25519"]
        .as_u64()
        .unwrap_or(0)
}

/// A second server on `dir`, under `original`'s name and settings.
fn start_on(ca: &TestCa, original: &Hearth, dir: &Path) -> Hearth {
    let federation = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut extra: Vec<(&str, &str)> = BUSY.to_vec();
    let dir = dir.to_string_lossy().into_owned();
    extra.push(("HEARTH_DATA_DIR", &dir));
    Hearth::start_at(ca, &original.server_name, federation, &extra)
}

fn current_key(keys: &Value) -> String {
    common::current_key_id(keys)
}

#[tokio::test]
async fn a_backup_under_writes_starts_as_the_same_server_with_every_acknowledged_event() {
    let ca = TestCa::new();
    let mut hearth = Hearth::start_with(&ca, &BUSY);
    let alice = Client::login(&hearth, "alice").await;
    let bob = Client::login(&hearth, "bob").await;
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let otks = json!({"one_time_keys": {
        "signed_curve25519:AAAA": {"key": "otk-a", "signatures": {}},
        "signed_curve25519:AAAB": {"key": "otk-b", "signatures": {}},
    }});
    alice.ok("POST", "keys/upload", otks).await;
    assert_eq!(one_time_keys(&alice).await, 2);

    let copy_parent = tempfile::tempdir().expect("dir");
    let copy = copy_parent.path().join("copy");
    let mut backup = hearth.command(&["backup", &copy.to_string_lossy()]);
    let (stop, acked) = (AtomicBool::new(false), Mutex::new(Vec::new()));
    let taking = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let began = Instant::now();
        let out = tokio::task::spawn_blocking(move || backup.output().expect("run backup"))
            .await
            .expect("backup");
        let ended = Instant::now();
        stop.store(true, Ordering::Relaxed);
        (began, ended, out)
    };
    let (_, _, (began, ended, out)) = tokio::join!(
        keep_sending(&alice, &room, "a", &stop, &acked),
        keep_sending(&bob, &room, "b", &stop, &acked),
        taking
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "backup failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        hearth.log()
    );
    assert!(stdout.contains("checked"), "{stdout}");
    let acked = acked.into_inner().expect("lock");
    let before: Vec<&String> = acked
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(id, _)| id)
        .collect();
    let during = acked
        .iter()
        .filter(|(_, at)| *at > began && *at < ended)
        .count();
    assert!(before.len() > 20, "too few writes before: {}", before.len());
    // Against the rate before it, measured under the same load (the
    // whole suite may run beside this test): a backup that stopped writes
    // would let next to none through.
    let first = acked.iter().map(|(_, at)| *at).min().expect("writes");
    let rate_before = before.len() as f64 / (began - first).as_secs_f64();
    let rate_during = during as f64 / (ended - began).as_secs_f64();
    assert!(
        during >= 5 && rate_during >= rate_before / 4.0,
        "writes stalled while the backup ran ({during} acknowledged in {:?}, \
         {rate_during:.0}/s against {rate_before:.0}/s before): {stdout}",
        ended - began
    );
    let original_key = current_key(&hearth.server_keys(&ca).await);
    let copy_marker = copy.join("backup.json");
    assert!(copy_marker.is_file(), "the backup records what it holds");

    let restored = start_on(&ca, &hearth, &copy);
    assert_eq!(current_key(&restored.server_keys(&ca).await), original_key);
    let alice_there = Client {
        h: &restored,
        token: alice.token.clone(),
        user: alice.user.clone(),
        device: alice.device.clone(),
    };
    for id in &before {
        let path = format!("rooms/{}/event/{}", encode(&room), encode(id));
        let (status, event) = alice_there.call("GET", &path, json!(null)).await;
        assert_eq!(
            status, 200,
            "{id} acknowledged before the backup is missing: {event}"
        );
    }
    // Handed out or not since, the copy's one-time keys are dropped.
    assert_eq!(one_time_keys(&alice_there).await, 0);
    assert_eq!(
        one_time_keys(&alice).await,
        2,
        "the original keeps its keys"
    );
    assert!(!copy_marker.exists(), "the restore is done once");
    // New events on the restored server come after everything it holds.
    let path = format!("rooms/{}/send/m.room.message/after", encode(&room));
    let body = json!({"msgtype": "m.text", "body": "after the restore"});
    let newest = alice_there.ok("PUT", &path, body).await["event_id"].clone();
    let path = format!("rooms/{}/messages?dir=b&limit=1", encode(&room));
    let latest = alice_there.ok("GET", &path, json!(null)).await;
    assert_eq!(latest["chunk"][0]["event_id"], newest, "{latest}");

    // A stopped server is backed up directly, all acknowledged writes in.
    let (token, user, device) = (
        alice.token.clone(),
        alice.user.clone(),
        alice.device.clone(),
    );
    drop((alice, bob));
    hearth.kill();
    let stopped_copy = copy_parent.path().join("stopped");
    let out = hearth.cli(&["backup", &stopped_copy.to_string_lossy()]);
    assert!(out.contains("checked"), "{out}");
    drop(restored);
    let again = start_on(&ca, &hearth, &stopped_copy);
    let alice_again = Client {
        h: &again,
        token,
        user,
        device,
    };
    for (id, _) in acked.iter().rev().take(5) {
        let path = format!("rooms/{}/event/{}", encode(&room), encode(id));
        let (status, _) = alice_again.call("GET", &path, json!(null)).await;
        assert_eq!(status, 200, "{id} acknowledged before the kill is missing");
    }
}

#[tokio::test]
async fn a_backup_refuses_a_directory_that_holds_something() {
    let ca = TestCa::new();
    let hearth = Hearth::start(&ca);
    let target = tempfile::tempdir().expect("dir");
    std::fs::write(target.path().join("precious.txt"), "keep me").expect("file");
    let out = hearth
        .command(&["backup", &target.path().to_string_lossy()])
        .output()
        .expect("run backup");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(target.path().join("precious.txt")).expect("file"),
        "keep me"
    );
}

#[tokio::test]
async fn scheduled_backups_are_taken_and_the_oldest_rotated_out() {
    let ca = TestCa::new();
    let backups = tempfile::tempdir().expect("dir");
    let dir = backups.path().to_string_lossy().into_owned();
    let hearth = Hearth::start_with(
        &ca,
        &[
            ("HEARTH_BACKUP__DIR", &dir),
            ("HEARTH_BACKUP__EVERY", "1s"),
            ("HEARTH_BACKUP__KEEP", "2"),
        ],
    );
    let list = || {
        let mut names: Vec<String> = std::fs::read_dir(backups.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("hearth-"))
            .collect();
        names.sort();
        names
    };
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 4 {
        assert!(Instant::now() < deadline, "only {seen:?}: {}", hearth.log());
        let now = list();
        assert!(now.len() <= 3, "not rotated: {now:?}");
        seen.extend(now);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = list();
    assert!(left.len() <= 3 && left.len() >= 2, "{left:?}");
    let newest = backups.path().join(left.last().expect("a backup"));
    let marker: Value =
        serde_json::from_slice(&std::fs::read(newest.join("backup.json")).expect("marker"))
            .expect("JSON");
    assert_eq!(marker["server_name"], hearth.server_name.as_str());
    assert!(newest.join("identity.json").is_file());
    assert!(newest.join("admin.token").is_file());
}
