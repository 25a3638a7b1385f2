//! Both sync APIs for a user in many rooms (HEARTH_BENCH_ROOMS, default
//! 1,000), release builds over loopback, p50/p99:
//! - classic `/sync`: the initial sync, and an incremental sync after one
//!   room changed;
//! - sliding sync (MSC4186): the first answer of a connection with a
//!   20-room window, and an incremental answer after one room changed on
//!   a connection whose list covers every room (as Element X's grows to).
//!
//! Run: `cargo bench --bench sync`; `HEARTH_TEST_BINARY` compares another
//! build (one without sliding sync reports classic `/sync` alone).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

const QUIET: [(&str, &str); 5] = [
    ("HEARTH_LOG", "error"),
    ("HEARTH_LIMITS__MESSAGES_BURST", "1000000"),
    ("HEARTH_LIMITS__MESSAGES_PER_MINUTE", "1000000"),
    ("HEARTH_LIMITS__JOINS_BURST", "1000000"),
    ("HEARTH_LIMITS__JOINS_PER_MINUTE", "1000000"),
];

const SLIDING: &str = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";
const ROUNDS: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{what}: p50 {:.2} ms, p99 {:.2} ms ({} runs)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        times.len()
    );
}

async fn classic(user: &Client<'_>, rooms: &[String]) {
    let mut initial = Vec::new();
    let mut since = String::new();
    for _ in 0..5 {
        let started = Instant::now();
        let sync = user.ok("GET", "sync", json!(null)).await;
        initial.push(started.elapsed());
        since = sync["next_batch"].as_str().expect("batch").to_owned();
    }
    let mut incremental = Vec::new();
    for n in 0..ROUNDS {
        user.say(&rooms[(n * 7) % rooms.len()], "classic").await;
        let started = Instant::now();
        let sync = user
            .ok("GET", &format!("sync?since={since}&timeout=0"), json!(null))
            .await;
        incremental.push(started.elapsed());
        assert_eq!(
            sync["rooms"]["join"].as_object().map_or(0, |r| r.len()),
            1,
            "one room changed"
        );
        since = sync["next_batch"].as_str().expect("batch").to_owned();
    }
    report(&format!("/sync initial, {} rooms", rooms.len()), initial);
    report("/sync incremental, one room changed", incremental);
}

fn list(to: usize) -> Value {
    json!({"lists": {"all": {
        "ranges": [[0, to]], "timeline_limit": 1,
        "required_state": [["m.room.name", ""], ["m.room.avatar", ""], ["m.room.encryption", ""], ["m.room.member", "$ME"]],
    }}, "extensions": {"e2ee": {"enabled": true}, "to_device": {"enabled": true},
        "typing": {"enabled": true}, "receipts": {"enabled": true}}})
}

/// None when the build has no sliding sync.
async fn sliding(user: &Client<'_>, pos: Option<&str>, body: &Value) -> Option<Value> {
    let query = pos.map_or(String::new(), |p| format!("?pos={p}&timeout=0"));
    let (status, reply) = user
        .call_at("POST", &format!("{SLIDING}{query}"), body.clone())
        .await;
    (status == 200).then_some(reply)
}

async fn sliding_sync(user: &Client<'_>, rooms: &[String]) {
    let window = list(19);
    let mut initial = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let Some(reply) = sliding(user, None, &window).await else {
            println!("sliding sync: not served by this build");
            return;
        };
        initial.push(started.elapsed());
        assert_eq!(reply["rooms"].as_object().map_or(0, |r| r.len()), 20);
    }
    let all = list(rooms.len());
    let first = sliding(user, None, &all).await.expect("sliding sync");
    let mut pos = first["pos"].as_str().expect("pos").to_owned();
    let mut incremental = Vec::new();
    for n in 0..ROUNDS {
        user.say(&rooms[(n * 13) % rooms.len()], "sliding").await;
        let started = Instant::now();
        let reply = sliding(user, Some(&pos), &all).await.expect("sliding sync");
        incremental.push(started.elapsed());
        assert_eq!(
            reply["rooms"].as_object().map_or(0, |r| r.len()),
            1,
            "one room changed"
        );
        pos = reply["pos"].as_str().expect("pos").to_owned();
    }
    report("sliding sync, first answer of a 20-room window", initial);
    report(
        &format!(
            "sliding sync incremental, list of all {} rooms, one changed",
            rooms.len()
        ),
        incremental,
    );
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("HEARTH_BENCH_ROOMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    let ca = TestCa::new();
    let h = Hearth::start_with(&ca, &QUIET);
    let user = Client::login(&h, "busy").await;
    let mut rooms = Vec::new();
    for n in 0..count {
        let room = user.create_room(json!({"name": format!("room {n}")})).await;
        let path = format!("rooms/{}/send/m.room.message/m{n}", encode(&room));
        user.ok("PUT", &path, json!({"msgtype": "m.text", "body": "hello"}))
            .await;
        rooms.push(room);
    }
    // Alternated, so that the machine's drift hits both alike.
    for _ in 0..2 {
        classic(&user, &rooms).await;
        sliding_sync(&user, &rooms).await;
    }
}
