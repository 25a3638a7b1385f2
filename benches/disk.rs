//! Disk bytes per stored event against its canonical JSON, with release
//! builds (#28's target: at most 2x, all indexes and state included):
//! - HEARTH_BENCH_MESSAGES messages (default 50,000) sent by four users
//!   into one room;
//! - HEARTH_BENCH_MEMBERS joins (default 10,000) of one room.
//!
//! For each: the stored PDUs' canonical JSON (a sample of 500 read back
//! through the admin API), the database's records (keys and values, from
//! a `hearth backup`), and the bytes `data/db` takes while the server
//! runs, after a restart, and in a fresh copy (the backup's database).
//!
//! Run: `cargo bench --bench disk`; compare builds with HEARTH_TEST_BINARY.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{
    proc::dir_bytes,
    rooms::{add_members, create, encode, make_public, user},
    Hearth, TestCa,
};
use serde_json::{json, Value};

const UNLIMITED: [(&str, &str); 3] = [
    ("HEARTH_LOG", "error"),
    ("HEARTH_LIMITS__MESSAGES_BURST", "100000000"),
    ("HEARTH_LIMITS__MESSAGES_PER_MINUTE", "100000000"),
];

fn count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The mean canonical JSON length of a sample of the stored events.
async fn mean_pdu(hearth: &Hearth, ids: &[String]) -> f64 {
    let step = (ids.len() / 500).max(1);
    let mut total = 0;
    let mut sampled = 0;
    for id in ids.iter().step_by(step) {
        let (status, reply) = hearth.admin_get(&format!("events/{}", encode(id))).await;
        assert_eq!(status, 200, "{reply}");
        total += serde_json::to_vec(&reply["event"]).expect("JSON").len();
        sampled += 1;
    }
    total as f64 / sampled as f64
}

/// Reports `events` events' cost on disk against `pdu` bytes each.
async fn report(what: &str, hearth: &mut Hearth, events: usize, pdu: f64, before: u64) {
    let per = |bytes: u64| bytes.saturating_sub(before) as f64 / events as f64;
    let running = dir_bytes(&hearth.data_dir().join("db"));
    hearth.restart();
    let restarted = dir_bytes(&hearth.data_dir().join("db"));
    let copy = tempfile::tempdir().expect("dir");
    let dir = copy.path().join("copy");
    hearth.cli(&["backup", &dir.to_string_lossy()]);
    let marker: Value =
        serde_json::from_slice(&std::fs::read(dir.join("backup.json")).expect("marker"))
            .expect("JSON");
    let records = marker["database_bytes"].as_u64().unwrap_or(0);
    let fresh = dir_bytes(&dir.join("db"));
    let trees = tree_bytes(&dir);
    println!("{what}: {events} events, canonical JSON {pdu:.0} B each");
    for (label, bytes) in [
        ("records (keys+values)", records),
        ("data/db running", running),
        ("data/db restarted", restarted),
        ("fresh copy", fresh),
    ] {
        println!(
            "  {label:<22} {:>8.1} MB  {:>7.0} B/event  {:.2}x",
            bytes as f64 / 1e6,
            per(bytes),
            per(bytes) / pdu
        );
    }
    println!("  largest trees (keys+values of all their records, per event):");
    for (tree, bytes) in trees.iter().take(8) {
        println!("    {tree:<20} {:>7.0} B", *bytes as f64 / events as f64);
    }
}

/// The bytes of keys and values in each tree of the database in
/// `data_dir`, largest first.
fn tree_bytes(data_dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut trees = std::collections::HashMap::<String, u64>::new();
    hearth::store::dump::read_all(data_dir, |tree, key, value| {
        *trees.entry(tree.to_owned()).or_default() += (key.len() + value.len()) as u64;
        Ok(())
    })
    .expect("read the copy");
    let mut trees: Vec<_> = trees.into_iter().collect();
    trees.sort_by_key(|tree| std::cmp::Reverse(tree.1));
    trees
}

async fn messages(ca: &TestCa, count: usize) {
    let mut hearth = Hearth::start_with(ca, &UNLIMITED);
    let (writers, room) = common::client::writers_in_room(&hearth, 4).await;
    let before = dir_bytes(&hearth.data_dir().join("db"));
    let per_writer = count / writers.len();
    let ids: Vec<Vec<String>> =
        futures_util::future::join_all(writers.iter().enumerate().map(|(w, client)| {
            let room = &room;
            async move {
                let mut ids = Vec::with_capacity(per_writer);
                for n in 0..per_writer {
                    let path = format!("rooms/{}/send/m.room.message/m{w}-{n}", encode(room));
                    let body = json!({"msgtype": "m.text", "body": format!("a message of ordinary length, number {n} from writer {w}")});
                    let reply = client.ok("PUT", &path, body).await;
                    ids.push(reply["event_id"].as_str().expect("event_id").to_owned());
                }
                ids
            }
        }))
        .await;
    let ids: Vec<String> = ids.into_iter().flatten().collect();
    let pdu = mean_pdu(&hearth, &ids).await;
    drop(writers);
    report("messages", &mut hearth, ids.len(), pdu, before).await;
}

async fn joins(ca: &TestCa, count: usize) {
    let mut hearth = Hearth::start_with(ca, &UNLIMITED);
    let alice = user(&hearth, "alice");
    let room = create(&hearth, &alice, "12").await;
    make_public(&hearth, &room, &alice).await;
    let before = dir_bytes(&hearth.data_dir().join("db"));
    add_members(&hearth, &room, count).await;
    let (status, view) = hearth.admin_get(&format!("rooms/{}", encode(&room))).await;
    assert_eq!(status, 200);
    let ids: Vec<String> = view["state"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry[0] == "m.room.member")
        .filter_map(|entry| entry[2].as_str().map(str::to_owned))
        .collect();
    let pdu = mean_pdu(&hearth, &ids).await;
    report("joins", &mut hearth, count, pdu, before).await;
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ca = TestCa::new();
        messages(&ca, count("HEARTH_BENCH_MESSAGES", 50_000)).await;
        joins(&ca, count("HEARTH_BENCH_MEMBERS", 10_000)).await;
    });
}
