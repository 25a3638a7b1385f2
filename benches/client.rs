//! The client-server API end to end, over real loopback federation with
//! release builds:
//! - latency from `PUT /send` by a user of hearth A to its arrival in the
//!   long-polling `/sync` of a user of hearth B (p50/p99);
//! - messages per second sustained from A's user to B's syncing user;
//! - resident memory of one hearth holding 10 users in 50 rooms, after
//!   every user's initial sync.
//!
//! Run: `cargo bench --bench client` (HEARTH_BENCH_MESSAGES, default 300).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

fn bodies(sync: &Value) -> Vec<String> {
    sync["rooms"]["join"]
        .as_object()
        .into_iter()
        .flat_map(|rooms| rooms.values())
        .flat_map(|room| {
            room["timeline"]["events"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|event| event["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Quiet, and without the per-user limits a bench would run into.
const UNLIMITED: [(&str, &str); 3] = [
    ("HEARTH_LOG", "error"),
    ("HEARTH_LIMITS__MESSAGES_BURST", "1000000"),
    ("HEARTH_LIMITS__JOINS_BURST", "1000000"),
];

async fn federated_chat(ca: &TestCa, messages: usize) {
    let quiet = UNLIMITED;
    let a = Hearth::start_with(ca, &quiet);
    let b = Hearth::start_with(ca, &quiet);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    let room = alice
        .ok("POST", "createRoom", json!({"invite": [bob.user]}))
        .await["room_id"]
        .as_str()
        .expect("room")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while bob
        .call("POST", &format!("join/{}", encode(&room)), json!({}))
        .await
        .0
        != 200
    {
        assert!(Instant::now() < deadline, "bob could not join");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let send = |n: usize, body: String| {
        let path = format!("rooms/{}/send/m.room.message/b{n}", encode(&room));
        let alice = &alice;
        async move {
            alice
                .ok("PUT", &path, json!({"msgtype": "m.text", "body": body}))
                .await
        }
    };
    let mut since = bob.ok("GET", "sync", json!(null)).await["next_batch"]
        .as_str()
        .expect("batch")
        .to_owned();

    // Latency: one message at a time, bob already long-polling.
    let mut latencies = Vec::new();
    for n in 0..50 {
        let body = format!("ping {n}");
        let path = format!("sync?since={since}&timeout=10000");
        let poll = bob.ok("GET", &path, json!(null));
        let started = Instant::now();
        let (_, arrived) = tokio::join!(send(n, body.clone()), async {
            let mut reply = poll.await;
            while !bodies(&reply).contains(&body) {
                let next = reply["next_batch"].as_str().expect("batch").to_owned();
                reply = bob
                    .ok(
                        "GET",
                        &format!("sync?since={next}&timeout=10000"),
                        json!(null),
                    )
                    .await;
            }
            reply
        });
        latencies.push(started.elapsed());
        since = arrived["next_batch"].as_str().expect("batch").to_owned();
    }
    latencies.sort();
    println!(
        "send on A -> long-polling sync on B: p50 {:.1} ms, p99 {:.1} ms ({} messages)",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len()
    );

    // Throughput: alice sends back to back; bob syncs until the last arrives.
    let started = Instant::now();
    let sender = async {
        for n in 0..messages {
            send(1000 + n, format!("bulk {n}")).await;
        }
        started.elapsed()
    };
    let receiver = async {
        let (mut seen, mut since) = (0, since.clone());
        while seen < messages {
            let reply = bob.ok("GET", &format!("sync?since={since}&timeout=10000&filter=%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A100%7D%7D%7D"), json!(null)).await;
            seen += bodies(&reply)
                .iter()
                .filter(|b| b.starts_with("bulk "))
                .count();
            since = reply["next_batch"].as_str().expect("batch").to_owned();
        }
        started.elapsed()
    };
    let (sent, received) = tokio::join!(sender, receiver);
    println!(
        "{messages} messages A -> B: sent in {:.2}s, all in B's sync after {:.2}s: {:.0} messages/s end to end",
        sent.as_secs_f64(),
        received.as_secs_f64(),
        messages as f64 / received.as_secs_f64()
    );
}

async fn memory(ca: &TestCa) {
    let h = Hearth::start_with(ca, &UNLIMITED);
    let pid = h.pid().expect("pid");
    println!("idle: {} KiB resident", rss_kib(pid));
    let mut users = Vec::new();
    for n in 0..10 {
        users.push(Client::login(&h, &format!("user{n}")).await);
    }
    println!("10 users logged in: {} KiB resident", rss_kib(pid));
    let invite: Vec<&str> = users[1..].iter().map(|u| u.user.as_str()).collect();
    for r in 0..50 {
        let room = users[0]
            .ok(
                "POST",
                "createRoom",
                json!({"name": format!("room {r}"), "invite": invite}),
            )
            .await["room_id"]
            .as_str()
            .expect("room")
            .to_owned();
        for user in &users[1..] {
            user.ok("POST", &format!("join/{}", encode(&room)), json!({}))
                .await;
        }
        for (n, user) in users.iter().enumerate() {
            let path = format!("rooms/{}/send/m.room.message/m{r}", encode(&room));
            user.ok(
                "PUT",
                &path,
                json!({"msgtype": "m.text", "body": format!("hi from {n}")}),
            )
            .await;
        }
    }
    println!("50 rooms made: {} KiB resident", rss_kib(pid));
    for user in &users {
        let sync = user.ok("GET", "sync", json!(null)).await;
        assert_eq!(sync["rooms"]["join"].as_object().map(|r| r.len()), Some(50));
    }
    println!(
        "10 users in 50 rooms, after every initial sync: {} KiB resident",
        rss_kib(pid)
    );
}

fn main() {
    let messages = std::env::var("HEARTH_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ca = TestCa::new();
        if std::env::var("HEARTH_BENCH_ONLY_MEMORY").is_err() {
            federated_chat(&ca, messages).await;
        }
        memory(&ca).await;
    });
}
