//! Outbound delivery over real loopback federation: hearth A holds a room
//! joined by a user of each of N other hearths (N = 1, 20, 100).
//!
//! Latency: each of a few messages is timed from the moment A is asked to
//! send it to the moment A's sender has a 200 for it from a destination
//! (a receiver answers only once the PDU is on its disk), read off A's
//! `federation status` (last success per destination, in Unix ms).
//!
//! Memory: with every destination down, A queues M more messages; A's
//! resident memory and data directory are read before and after, per
//! queued (event, destination) pair.
//!
//! Run: `cargo bench --bench delivery` (HEARTH_BENCH_DESTINATIONS runs one
//! count instead of 1, 20 and 100; HEARTH_BENCH_QUEUED sets M, default
//! 2000).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    proc::{cpu_ms, dir_bytes, rss_kb},
    rooms::{create, join, make_public, say, user},
    Hearth, TestCa,
};
use futures_util::{stream, StreamExt};

/// Messages timed per destination count.
const ROUNDS: usize = 10;
/// Joins in flight at once while the room is set up.
const JOINING: usize = 4;

fn main() {
    let env = |name: &str| std::env::var(name).ok().and_then(|n| n.parse().ok());
    let counts: Vec<usize> = env("HEARTH_BENCH_DESTINATIONS").map_or(vec![1, 20, 100], |n| vec![n]);
    let queued: usize = env("HEARTH_BENCH_QUEUED").unwrap_or(2000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ca = TestCa::new();
        for n in counts {
            run(&ca, n, queued).await;
        }
    });
}

async fn run(ca: &TestCa, n: usize, queued: usize) {
    let quiet = [("HEARTH_LOG", "error")];
    let a = Hearth::start_with(ca, &quiet);
    let mut destinations: Vec<Hearth> = (0..n).map(|_| Hearth::start_with(ca, &quiet)).collect();
    let alice = user(&a, "alice");
    let room = create(&a, &alice, "12").await;
    make_public(&a, &room, &alice).await;
    let setup = Instant::now();
    stream::iter(&destinations)
        .for_each_concurrent(JOINING, |h| {
            let (room, a) = (&room, &a);
            async move {
                let (status, reply) = join(h, room, &user(h, "member"), &[&a.server_name]).await;
                assert_eq!(status, 200, "{reply}");
            }
        })
        .await;
    println!(
        "{n} destination(s) joined in {:.1}s",
        setup.elapsed().as_secs_f64()
    );

    let (mut first, mut median, mut last) = (Vec::new(), Vec::new(), Vec::new());
    let a_pid = a.pid().expect("A runs");
    let mut a_cpu = 0;
    // Round 0 warms up: connections are open and the joins relayed.
    for round in 0..=ROUNDS {
        let (sent_ms, cpu_before) = (now_ms(), cpu_ms(a_pid));
        say(&a, &room, &alice, &format!("round {round}")).await;
        let mut latencies = delivered_after(&a, n, sent_ms).await;
        if round == 0 {
            continue;
        }
        a_cpu += cpu_ms(a_pid) - cpu_before;
        latencies.sort_unstable();
        first.push(latencies[0]);
        median.push(latencies[n / 2]);
        last.push(latencies[n - 1]);
    }
    println!(
        "{n} destination(s): creation to delivery, median of {ROUNDS} messages: \
         first destination {} ms, median destination {} ms, last destination {} ms \
         (worst message: last destination {} ms); A's CPU {:.0} us per message and destination \
         (its status polling included)",
        middle(&mut first),
        middle(&mut median),
        middle(&mut last),
        last.iter().max().copied().unwrap_or(0),
        (a_cpu * 1000) as f64 / (ROUNDS * n) as f64,
    );

    for h in &mut destinations {
        h.kill();
    }
    let (rss_before, disk_before) = (rss_kb(a_pid), dir_bytes(&a.data_dir()));
    for i in 0..queued {
        say(&a, &room, &alice, &format!("queued {i}")).await;
    }
    let depth = total_queued(&a).await;
    assert!(depth >= queued * n, "only {depth} queued");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_after, disk_after) = (rss_kb(a_pid), dir_bytes(&a.data_dir()));
    let pairs = (queued * n) as f64;
    println!(
        "{n} destination(s) down, {queued} messages queued for each ({depth} pairs): \
         A's RSS {} -> {} kB ({:.1} bytes per pair, the events themselves included), \
         data dir +{:.1} bytes per pair",
        rss_before,
        rss_after,
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / pairs,
        disk_after.saturating_sub(disk_before) as f64 / pairs,
    );
}

/// Waits until each of the `n` destinations has nothing queued and took
/// a transaction at or after `since_ms`; returns each one's latency (ms).
async fn delivered_after(a: &Hearth, n: usize, since_ms: u64) -> Vec<u64> {
    let started = Instant::now();
    loop {
        let (status, body) = a.admin_get("federation/status").await;
        assert_eq!(status, 200, "{body}");
        let done: Vec<u64> = body["destinations"]
            .as_array()
            .expect("destinations")
            .iter()
            .filter(|d| d["queued"] == 0)
            .filter_map(|d| d["last_success_ms"].as_u64())
            .filter(|ms| *ms >= since_ms)
            .map(|ms| ms - since_ms)
            .collect();
        if done.len() >= n {
            return done;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {} of {n} destinations took the event",
            done.len()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Entries queued for every destination together, from A's status.
async fn total_queued(a: &Hearth) -> usize {
    let (_, body) = a.admin_get("federation/status").await;
    body["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .map(|d| d["queued"].as_u64().unwrap_or(0) as usize)
        .sum()
}

fn middle(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
