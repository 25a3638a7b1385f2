//! Delivery to one application service, with release builds over
//! loopback, to a receiver in this process that answers every transaction
//! at once (a bridge's own work is not measured):
//! - the delay from a message's send request to the transaction holding
//!   it arriving, one message at a time (p50/p99; the send itself, which
//!   makes the event durable before it goes out, is most of it);
//! - events per second: messages queued while the receiver refuses
//!   transactions, then the time it takes to drain the queue once it
//!   answers again.
//!
//! Run: `cargo bench --bench appservices` (HEARTH_BENCH_MESSAGES, default
//! 2000); `HEARTH_TEST_BINARY` compares another build.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::{client::Client, rooms::encode, Hearth, TestCa};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// When each event arrived, and whether transactions are answered 200.
#[derive(Default)]
struct Receiver {
    arrived: Mutex<HashMap<String, Instant>>,
    refusing: AtomicBool,
}

async fn listen(receiver: Arc<Receiver>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let receiver = receiver.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let receiver = receiver.clone();
                        async move {
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            let now = Instant::now();
                            let status = if receiver.refusing.load(Ordering::SeqCst) {
                                503
                            } else {
                                let body: Value = body
                                    .ok()
                                    .and_then(|b| serde_json::from_slice(&b).ok())
                                    .unwrap_or(Value::Null);
                                let mut arrived = receiver.arrived.lock().expect("lock");
                                for event in body["events"].as_array().into_iter().flatten() {
                                    if let Some(id) = event["event_id"].as_str() {
                                        arrived.entry(id.to_owned()).or_insert(now);
                                    }
                                }
                                200
                            };
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"{}")))
                                    .expect("response"),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn send(alice: &Client<'_>, room: &str, n: usize) -> String {
    let path = format!("rooms/{}/send/m.room.message/b{n}", encode(room));
    let answer = alice
        .ok(
            "PUT",
            &path,
            json!({"msgtype": "m.text", "body": format!("message {n}")}),
        )
        .await;
    answer["event_id"].as_str().expect("event id").to_owned()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let messages: usize = std::env::var("HEARTH_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let receiver = Arc::new(Receiver::default());
    let addr = listen(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("bench.yaml");
    std::fs::write(
        &file,
        format!(
            "id: bench\nurl: http://{addr}\nas_token: bench_as\nhs_token: bench_hs\n\
             sender_localpart: benchbot\nrate_limited: false\nnamespaces:\n  users:\n  \
             - exclusive: true\n    regex: '@bench_.*'\n"
        ),
    )
    .expect("registration");
    let files = json!([file.to_str().expect("path")]).to_string();
    let ca = TestCa::new();
    let h = Hearth::start_with(
        &ca,
        &[
            ("HEARTH_LOG", "error"),
            ("HEARTH_LIMITS__MESSAGES_BURST", "1000000"),
            ("HEARTH_APPSERVICE__REGISTRATIONS", &files),
        ],
    );
    let alice = Client::login(&h, "alice").await;
    // The application service is interested in the room: its user joined.
    let room = alice.create_room(json!({})).await;
    let bot = Client {
        h: &h,
        token: "bench_as".into(),
        user: format!("@benchbot:{}", h.server_name),
        device: String::new(),
    };
    alice.invite(&room, &bot.user).await;
    bot.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;

    // Delay: one message at a time, from its send answered to its arrival.
    let mut delays = Vec::new();
    for n in 0..200 {
        let sent = Instant::now();
        let id = send(&alice, &room, n).await;
        let arrived = loop {
            if let Some(at) = receiver.arrived.lock().expect("lock").get(&id) {
                break *at;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(30),
                "{id} never arrived"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        delays.push(arrived.saturating_duration_since(sent));
    }
    delays.sort();
    println!(
        "send request to transaction, one at a time: p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.99))
    );

    // Throughput: a backlog drained once the receiver answers again.
    receiver.refusing.store(true, Ordering::SeqCst);
    let mut backlog = Vec::new();
    for n in 0..messages {
        backlog.push(send(&alice, &room, 1000 + n).await);
    }
    // The sender is backing off now: it retries within 30 s.
    receiver.refusing.store(false, Ordering::SeqCst);
    let started = Instant::now();
    let mut first = None;
    loop {
        let done: Vec<Instant> = {
            let arrived = receiver.arrived.lock().expect("lock");
            backlog
                .iter()
                .filter_map(|id| arrived.get(id).copied())
                .collect()
        };
        if first.is_none() {
            first = done.iter().min().copied();
        }
        if done.len() == backlog.len() {
            let last = done.into_iter().max().expect("last");
            let took = last.saturating_duration_since(first.expect("first"));
            println!(
                "{messages} queued events drained in {:.0} ms: {:.0} events/s \
                 (from the first transaction taken to the last)",
                ms(took),
                messages as f64 / took.as_secs_f64().max(1e-6)
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the backlog never drained"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
