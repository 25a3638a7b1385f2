//! What a backup of a running server costs its users, with release builds:
//! a server holding HEARTH_BENCH_MESSAGES messages (default 20,000) is
//! backed up (`hearth backup`, through the admin API) while a user keeps
//! sending; reports the backup's time and rate, how long writes were held
//! (the report's `pause_ms`), and the send latency before and during it.
//!
//! Run: `cargo bench --bench backup`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::json;

const UNLIMITED: [(&str, &str); 3] = [
    ("HEARTH_LOG", "error"),
    ("HEARTH_LIMITS__MESSAGES_BURST", "100000000"),
    ("HEARTH_LIMITS__MESSAGES_PER_MINUTE", "100000000"),
];

async fn send(client: &Client<'_>, room: &str, txn: &str) -> Duration {
    let path = format!("rooms/{}/send/m.room.message/{txn}", encode(room));
    let body =
        json!({"msgtype": "m.text", "body": format!("a message of ordinary length, number {txn}")});
    let started = Instant::now();
    client.ok("PUT", &path, body).await;
    started.elapsed()
}

fn summary(mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "{} sends, p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

#[tokio::main]
async fn main() {
    let messages: usize = std::env::var("HEARTH_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let ca = TestCa::new();
    let hearth = Hearth::start_with(&ca, &UNLIMITED);
    let (writers, room) = common::client::writers_in_room(&hearth, 4).await;
    let filling = Instant::now();
    let per_writer = messages / writers.len();
    futures_util::future::join_all(writers.iter().enumerate().map(|(w, client)| {
        let room = &room;
        async move {
            for n in 0..per_writer {
                send(client, room, &format!("fill{w}-{n}")).await;
            }
        }
    }))
    .await;
    let data_bytes = common::proc::dir_bytes(&hearth.data_dir());
    println!(
        "filled: {messages} messages in {:?}; data/ holds {:.1} MB",
        filling.elapsed(),
        data_bytes as f64 / 1e6
    );

    let target = tempfile::tempdir().expect("dir");
    let dir = target.path().join("backup");
    let stop = AtomicBool::new(false);
    let sender = &writers[0];
    let measure = async {
        let (mut before, mut during) = (Vec::new(), Vec::new());
        let mut n = 0;
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let latency = send(sender, &room, &format!("probe{n}")).await;
            n += 1;
            if started.elapsed() < Duration::from_secs(2) {
                before.push(latency);
            } else {
                during.push(latency);
            }
        }
        (before, during)
    };
    let mut command = hearth.command(&["backup", &dir.to_string_lossy()]);
    let backup = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let began = Instant::now();
        let out = tokio::task::spawn_blocking(move || command.output().expect("backup"))
            .await
            .expect("backup");
        stop.store(true, Ordering::Relaxed);
        (began.elapsed(), out)
    };
    let ((before, during), (took, out)) = tokio::join!(measure, backup);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("backup.json")).expect("marker"))
            .expect("JSON");
    let bytes =
        marker["database_bytes"].as_u64().unwrap_or(0) + marker["file_bytes"].as_u64().unwrap_or(0);
    let copy_bytes = common::proc::dir_bytes(&dir);
    println!(
        "backup: {} records, {:.1} MB of records ({:.1} MB on disk) in {:?} ({:.1} MB/s); writes held {} ms",
        marker["records"],
        bytes as f64 / 1e6,
        copy_bytes as f64 / 1e6,
        took,
        bytes as f64 / 1e6 / took.as_secs_f64(),
        marker["pause_ms"]
    );
    println!("sends before: {}", summary(before));
    println!("sends during: {}", summary(during));
}
