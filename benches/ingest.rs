//! Inbound federation ingest over real loopback federation, from one and
//! from ten origins: each origin hearth shares a linear room with hearth
//! B and queues its part of N messages while B is down; B comes back and
//! the origins' senders deliver them in transactions of up to 50 PDUs,
//! all at once. Measures how fast B takes them in (TLS, request
//! signature, PDU signatures and hashes, auth, state, durable commit per
//! transaction, the origins' sending included) and the p50/p99 time B
//! takes to answer a `/send`, from its Prometheus histogram.
//!
//! The speed of a shared 2-core machine drifts (here by ±20% within
//! minutes), so each run also measures bare ed25519 verifies per second
//! on one core, before and after, and reports PDUs taken in per bare
//! verify: a ratio that cancels most of the drift. Compare runs by it.
//!
//! Run: `cargo bench --bench ingest` (HEARTH_BENCH_EVENTS sets N, default
//! 5000; HEARTH_BENCH_ORIGINS runs one origin count instead of 1 and 10).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{
    proc::cpu_ms,
    rooms::{federation, say, shared_room, timeline, view},
    sample, Hearth, TestCa,
};
use futures_util::future::join_all;
use hearth::keys::{own::key_pair_from_seed, verify::verify_bytes};
use ruma::signatures::KeyPair;

/// Bare ed25519 verifies (1,200-byte message, as X-Matrix checks them)
/// per second on one core of this machine, now.
fn verifies_per_second() -> f64 {
    let pair = key_pair_from_seed(&[7u8; 32], "ed25519:bench").expect("key");
    let message = vec![b'x'; 1200];
    let signature = pair.sign(&message);
    let public = pair.public_key();
    let count = 10_000;
    let started = Instant::now();
    for _ in 0..count {
        assert!(verify_bytes(&public, signature.as_bytes(), &message));
    }
    count as f64 / started.elapsed().as_secs_f64()
}

const HISTOGRAM: &str = "hearth_federation_inbound_transaction_seconds";
const PDUS: &str = "hearth_federation_inbound_pdus_total";

fn main() {
    let env = |name: &str| std::env::var(name).ok().and_then(|n| n.parse().ok());
    let count: usize = env("HEARTH_BENCH_EVENTS").unwrap_or(5000);
    let origins: Vec<usize> = env("HEARTH_BENCH_ORIGINS").map_or(vec![1, 10], |n| vec![n]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ca = TestCa::new();
        for n in origins {
            run(&ca, n, count).await;
        }
    });
}

async fn run(ca: &TestCa, n_origins: usize, count: usize) {
    let quiet = [("HEARTH_LOG", "error")];
    let mut b = Hearth::start_with(
        ca,
        &[("HEARTH_LOG", "error"), ("HEARTH_METRICS__ENABLED", "true")],
    );
    let origins: Vec<Hearth> = (0..n_origins)
        .map(|_| Hearth::start_with(ca, &quiet))
        .collect();
    let mut rooms = Vec::new();
    for a in &origins {
        rooms.push(shared_room(a, &b).await);
    }
    b.kill();
    let per_origin = count / n_origins;
    let started = Instant::now();
    join_all(
        origins
            .iter()
            .zip(&rooms)
            .map(|(a, (room, alice, _))| async move {
                for i in 0..per_origin {
                    say(a, room, alice, &format!("message {i}")).await;
                }
            }),
    )
    .await;
    println!(
        "{n_origins} origin(s) created and queued {} messages in {:.2}s",
        per_origin * n_origins,
        started.elapsed().as_secs_f64()
    );
    // Before B is back: the origins start sending as soon as it is.
    let speed_before = verifies_per_second();
    b.restart();
    // B reaching each origin clears the backoff it built up there, so
    // they all send at once (a request from B is what a real return looks
    // like); timed from those requests to the last PDU taken in.
    let expected = (per_origin * n_origins) as u64;
    let cpu = |h: &Hearth| cpu_ms(h.pid().expect("running"));
    let b_cpu = cpu(&b);
    let origins_cpu: u64 = origins.iter().map(cpu).sum();
    let start = Instant::now();
    join_all(origins.iter().map(|a| {
        let uri = format!(
            "/_matrix/federation/v1/query/profile?user_id=%40alice%3A{}",
            a.server_name
        );
        let b = &b;
        async move { federation(b, a, "GET", &uri, None).await }
    }))
    .await;
    while b.metric(PDUS).await < expected {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "B did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let b_cpu = cpu(&b) - b_cpu;
    let origins_cpu = origins.iter().map(cpu).sum::<u64>() - origins_cpu;
    let speed = (speed_before + verifies_per_second()) / 2.0;
    let timed = expected;
    for (room, _, _) in &rooms {
        let (_, on_b) = view(&b, room).await;
        // Each room's timeline: bob's join, then every message.
        assert_eq!(
            timeline(&on_b).len(),
            per_origin + 1,
            "B lacks events of {room}"
        );
    }
    let text = b.metrics().await.expect("metrics");
    let transactions = sample(&text, &format!("{HISTOGRAM}_count"));
    println!(
        "{n_origins} origin(s): B ingested {timed} PDUs in {elapsed:.2}s = {:.0} PDUs/s; \
         /send answered in p50 <= {} ms, p99 <= {} ms ({transactions} transactions); \
         CPU per PDU: B {:.0} us, origins {:.0} us (of {:.0} us wall per PDU on 2 cores); \
         this machine: {speed:.0} bare ed25519 verifies/s on one core, \
         {:.3} PDUs per verify",
        timed as f64 / elapsed,
        quantile_ms(&text, 0.5),
        quantile_ms(&text, 0.99),
        b_cpu as f64 * 1000.0 / timed as f64,
        origins_cpu as f64 * 1000.0 / timed as f64,
        elapsed * 2e6 / timed as f64,
        timed as f64 / elapsed / speed,
    );
}

/// The upper bound (ms) of the histogram bucket holding quantile `q`.
fn quantile_ms(text: &str, q: f64) -> String {
    let prefix = format!("{HISTOGRAM}_bucket{{le=\"");
    let buckets: Vec<(String, u64)> = text
        .lines()
        .filter_map(|l| {
            let (le, n) = l.strip_prefix(&prefix)?.split_once("\"} ")?;
            Some((le.to_owned(), n.parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0, |(_, n)| *n);
    let (le, _) = buckets
        .iter()
        .find(|(_, n)| *n as f64 >= q * total as f64)
        .expect("a bucket");
    match le.parse::<f64>() {
        Ok(seconds) => format!("{}", seconds * 1000.0),
        Err(_) => le.clone(),
    }
}
