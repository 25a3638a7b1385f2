//! Notifications, with release builds over loopback:
//! - what evaluating push rules costs per event and member: the time to
//!   send a message into a room where 1 and where 50 local users are
//!   joined (every member but the sender is evaluated), alternating the
//!   two rooms so the machine's drift hits both alike;
//! - `/sync` with unread counts for a user in 500 rooms, each holding one
//!   unread notification: the initial sync, and an incremental sync after
//!   one room changed (p50/p99).
//!
//! Run: `cargo bench --bench push` (HEARTH_BENCH_MESSAGES, default 300);
//! `HEARTH_TEST_BINARY` compares another build.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::json;

const QUIET: [(&str, &str); 3] = [
    ("HEARTH_LOG", "error"),
    ("HEARTH_LIMITS__MESSAGES_BURST", "1000000"),
    ("HEARTH_LIMITS__JOINS_BURST", "1000000"),
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn evaluation(ca: &TestCa, messages: usize) {
    let h = Hearth::start_with(ca, &QUIET);
    let sender = Client::login(&h, "sender").await;
    let alone = sender.create_room(json!({"preset": "public_chat"})).await;
    let crowded = sender.create_room(json!({"preset": "public_chat"})).await;
    for n in 0..50 {
        let member = Client::login(&h, &format!("member{n}")).await;
        let path = format!("join/{}", encode(&crowded));
        member.ok("POST", &path, json!({})).await;
    }
    let mut times = [Vec::new(), Vec::new()];
    for n in 0..messages * 2 {
        let (slot, room) = if n % 2 == 0 {
            (0, &alone)
        } else {
            (1, &crowded)
        };
        let path = format!("rooms/{}/send/m.room.message/m{n}", encode(room));
        let body = json!({"msgtype": "m.text", "body": format!("message {n} for member7 and all")});
        let started = Instant::now();
        sender.ok("PUT", &path, body).await;
        times[slot].push(started.elapsed());
    }
    let mean = |t: &[Duration]| t.iter().sum::<Duration>() / t.len() as u32;
    let (one, fifty) = (mean(&times[0]), mean(&times[1]));
    let per_member = fifty.saturating_sub(one) / 50;
    println!(
        "send: {:.3} ms with no other local member, {:.3} ms with 50; evaluation ~{:.1} µs per member and event ({messages} messages each)",
        ms(one),
        ms(fifty),
        per_member.as_secs_f64() * 1e6
    );
}

async fn sync_with_counts(ca: &TestCa) {
    let h = Hearth::start_with(ca, &QUIET);
    let reader = Client::login(&h, "reader").await;
    let writer = Client::login(&h, "writer").await;
    let mut rooms = Vec::new();
    for n in 0..500 {
        let room = writer
            .create_room(json!({"preset": "public_chat", "invite": [reader.user]}))
            .await;
        reader
            .ok("POST", &format!("join/{}", encode(&room)), json!({}))
            .await;
        let path = format!("rooms/{}/send/m.room.message/w{n}", encode(&room));
        writer
            .ok("PUT", &path, json!({"msgtype": "m.text", "body": "unread"}))
            .await;
        rooms.push(room);
    }
    let mut initial = Vec::new();
    let mut since = String::new();
    // An older build without counts is compared too: reported, not required.
    let mut counted_rooms = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let sync = reader.ok("GET", "sync", json!(null)).await;
        initial.push(started.elapsed());
        let counted = sync["rooms"]["join"].as_object().map_or(0, |r| {
            r.values()
                .filter(|r| r["unread_notifications"]["notification_count"] == 1)
                .count()
        });
        counted_rooms = counted;
        since = sync["next_batch"].as_str().expect("batch").to_owned();
    }
    let mut incremental = Vec::new();
    for n in 0..100 {
        let room = &rooms[n % rooms.len()];
        let path = format!("rooms/{}/send/m.room.message/x{n}", encode(room));
        writer
            .ok("PUT", &path, json!({"msgtype": "m.text", "body": "more"}))
            .await;
        let started = Instant::now();
        let sync = reader
            .ok("GET", &format!("sync?since={since}&timeout=0"), json!(null))
            .await;
        incremental.push(started.elapsed());
        since = sync["next_batch"].as_str().expect("batch").to_owned();
    }
    initial.sort();
    incremental.sort();
    println!(
        "sync, 500 rooms ({counted_rooms} with a count of 1): initial p50 {:.1} ms; incremental (one room changed) p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&initial, 0.5)),
        ms(percentile(&incremental, 0.5)),
        ms(percentile(&incremental, 0.99))
    );
}

#[tokio::main]
async fn main() {
    let messages = std::env::var("HEARTH_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let ca = TestCa::new();
    evaluation(&ca, messages).await;
    sync_with_counts(&ca).await;
}
