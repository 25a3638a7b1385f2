//! Server-side search with a release build: HEARTH_BENCH_MESSAGES
//! messages (default 100,000) of 8 to 16 words drawn from a 5,000-word
//! vocabulary with a Zipf-like skew, sent by four users into one room;
//! then the search index's bytes per message (its records, keys and
//! values, from a backup; and `data/db` per message after a restart,
//! to compare with a build without the index), and the latency
//! of `POST /search` as Element sends it (newest first, ten results,
//! one event of context each side, profiles) and by rank: p50 and p99
//! over words of every frequency, two-word terms and word beginnings.
//!
//! Run: `cargo bench --bench search`; an older build through
//! HEARTH_TEST_BINARY gives the disk figures without the index.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{client::Client, proc::dir_bytes, rooms::encode, Hearth, TestCa};
use serde_json::json;

const UNLIMITED: [(&str, &str); 3] = [
    ("HEARTH_LOG", "error"),
    ("HEARTH_LIMITS__MESSAGES_BURST", "100000000"),
    ("HEARTH_LIMITS__MESSAGES_PER_MINUTE", "100000000"),
];
const VOCABULARY: usize = 5_000;

fn count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A word rank skewed towards the common ones (rank ~ 1/u²).
    fn rank(&mut self) -> usize {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((u * u * u) * VOCABULARY as f64) as usize
    }
}

/// The word of a rank: pronounceable, 3 to 9 letters.
fn word(rank: usize) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fu", "go", "hi", "jo", "pe",
        "wa",
    ];
    let mut n = rank + 1;
    let mut word = String::new();
    while n > 0 {
        word.push_str(SYLLABLES[n % 16]);
        n /= 16;
    }
    if rank.is_multiple_of(3) {
        word.push('n');
    }
    word
}

fn message(rng: &mut Rng) -> String {
    let words = 8 + (rng.next() % 9) as usize;
    (0..words)
        .map(|_| word(rng.rank()))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn fill(hearth: &Hearth, messages: usize) -> (Vec<Client<'_>>, String) {
    let (writers, room) = common::client::writers_in_room(hearth, 4).await;
    let per_writer = messages / writers.len();
    futures_util::future::join_all(writers.iter().enumerate().map(|(w, client)| {
        let room = &room;
        async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1));
            for n in 0..per_writer {
                let path = format!("rooms/{}/send/m.room.message/m{w}-{n}", encode(room));
                client
                    .ok(
                        "PUT",
                        &path,
                        json!({"msgtype": "m.text", "body": message(&mut rng)}),
                    )
                    .await;
            }
        }
    }))
    .await;
    (writers, room)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1000.0
}

async fn relogin(hearth: &Hearth, count: usize) -> Vec<Client<'_>> {
    let mut clients = Vec::with_capacity(count);
    for i in 1..=count {
        clients.push(Client::login_again(hearth, &format!("w{i}")).await);
    }
    clients
}

async fn latencies(client: &Client<'_>, label: &str, terms: &[String], recent: bool) {
    let mut times = Vec::with_capacity(terms.len());
    let mut results = 0u64;
    for term in terms {
        let mut criteria = json!({"search_term": term, "filter": {"limit": 10}});
        if recent {
            criteria["order_by"] = json!("recent");
            criteria["event_context"] =
                json!({"before_limit": 1, "after_limit": 1, "include_profile": true});
        }
        let body = json!({"search_categories": {"room_events": criteria}});
        let started = Instant::now();
        let (status, reply) = client.call("POST", "search", body).await;
        times.push(started.elapsed());
        assert_eq!(status, 200, "{reply}");
        results += reply["search_categories"]["room_events"]["count"]
            .as_u64()
            .unwrap_or(0);
    }
    times.sort();
    println!(
        "  {label:<34} p50 {:>7.2} ms  p99 {:>7.2} ms  (mean matches {:.0})",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        results as f64 / terms.len() as f64
    );
}

/// The search index's records (keys and values) in a backup of the
/// server's data, and the whole database's.
fn index_bytes(hearth: &Hearth) -> (u64, u64) {
    let copy = tempfile::tempdir().expect("dir");
    let dir = copy.path().join("copy");
    hearth.cli(&["backup", &dir.to_string_lossy()]);
    let (mut search, mut all) = (0, 0);
    hearth::store::dump::read_all(&dir, |tree, key, value| {
        let bytes = (key.len() + value.len()) as u64;
        all += bytes;
        if tree == "search" {
            search += bytes;
        }
        Ok(())
    })
    .expect("read the copy");
    (search, all)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ca = TestCa::new();
        let messages = count("HEARTH_BENCH_MESSAGES", 100_000);
        let hearth = Hearth::start_with(&ca, &UNLIMITED);
        let started = Instant::now();
        let (writers, _room) = fill(&hearth, messages).await;
        let writers = writers.len();
        println!(
            "{messages} messages sent in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut hearth = hearth;
        let (search, all) = index_bytes(&hearth);
        println!(
            "records: {:.0} B/message in the database, {:.0} B/message in the search index",
            all as f64 / messages as f64,
            search as f64 / messages as f64,
        );
        hearth.restart();
        let writers = relogin(&hearth, writers).await;
        println!(
            "data/db after a restart: {:.0} B/message (compare builds with HEARTH_TEST_BINARY)",
            dir_bytes(&hearth.data_dir().join("db")) as f64 / messages as f64
        );
        let (status, _) = writers[0]
            .call("POST", "search", json!({"search_categories": {}}))
            .await;
        if status != 200 {
            println!("this build has no /search ({status})");
            return;
        }
        let reader = &writers[0];
        let mut rng = Rng(42);
        let common: Vec<String> = (0..20).map(word).collect();
        let middling: Vec<String> = (0..100).map(|_| word(50 + rng.rank() % 500)).collect();
        let rare: Vec<String> = (0..100)
            .map(|_| word(2_000 + (rng.next() % 3_000) as usize))
            .collect();
        let pairs: Vec<String> = (0..100)
            .map(|_| format!("{} {}", word(rng.rank()), word(rng.rank())))
            .collect();
        let beginnings: Vec<String> = (0..100)
            .map(|_| word(100 + rng.rank() % 900).chars().take(3).collect())
            .collect();
        println!("POST /search, newest first (as Element asks):");
        for (label, terms) in [
            ("20 most common words", &common),
            ("middling words", &middling),
            ("rare words", &rare),
            ("two words", &pairs),
            ("word beginnings (3 letters)", &beginnings),
        ] {
            latencies(reader, label, terms, true).await;
        }
        println!("POST /search, by rank:");
        latencies(reader, "middling words", &middling, false).await;
        latencies(reader, "two words", &pairs, false).await;
    });
}
