//! Inbound federation ingest over real loopback federation: hearth A
//! queues N messages for hearth B while B is down; B comes back and A's
//! sender delivers them in transactions of 50 PDUs. Measures how fast B
//! takes them in (TLS, request signature, PDU signatures and hashes, auth,
//! state, durable commit per transaction, A's sending included).
//!
//! Run: `cargo bench --bench ingest` (HEARTH_BENCH_EVENTS sets N, default 5000).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{
    rooms::{say, shared_room, timeline, view},
    Hearth, TestCa,
};

fn main() {
    let count: usize = std::env::var("HEARTH_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ca = TestCa::new();
        let release = [("HEARTH_LOG", "error")];
        let a = Hearth::start_with(&ca, &release);
        let mut b = Hearth::start_with(&ca, &release);
        let (room, alice, _) = shared_room(&a, &b).await;
        b.kill();
        let started = Instant::now();
        for i in 0..count {
            say(&a, &room, &alice, &format!("message {i}")).await;
        }
        println!(
            "A created and queued {count} messages in {:.2}s",
            started.elapsed().as_secs_f64()
        );
        b.restart();
        // Timed from the first delivered batch: A's sender may first wait
        // out the backoff it built up while B was down.
        let waited = Instant::now();
        let mut first: Option<(Instant, usize)> = None;
        let (start, already) = loop {
            let (_, on_b) = view(&b, &room).await;
            let have = timeline(&on_b).len() - 1;
            match first {
                None if have > 0 => first = Some((Instant::now(), have)),
                Some(first) if have >= count => break first,
                _ => {}
            }
            assert!(
                waited.elapsed() < Duration::from_secs(600),
                "B did not catch up"
            );
            // Each look reads B's whole timeline: not too often, or the
            // measuring slows B down.
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let elapsed = start.elapsed().as_secs_f64();
        let timed = count - already;
        println!(
            "B ingested {timed} PDUs (50 per transaction) in {elapsed:.2}s = {:.0} PDUs/s",
            timed as f64 / elapsed
        );
    });
}
