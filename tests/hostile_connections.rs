//! What a stranger can hold of the server with connections alone: idle
//! connections are closed and capped per address and in total, stalled
//! bodies pin a bounded amount of memory for a bounded time, and a
//! federation request's body is not read before its header checks out.

mod common;

use std::time::{Duration, Instant};

use common::{http::connect_tls, proc::rss_kb, Hearth, TestCa};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Settings that make the caps testable over loopback: 127.0.0.1 is not
/// treated as a proxy, and the timeouts are short.
fn limits<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut settings = vec![
        ("HEARTH_LIMITS__PROXY_ADDRESSES", "[]"),
        ("HEARTH_LIMITS__IDLE_TIMEOUT_SECS", "2"),
    ];
    settings.extend_from_slice(extra);
    settings
}

/// Reads until the server closes the connection; how long that took, or
/// `None` if it was still open after `wait`.
async fn closed_within(stream: &mut (impl AsyncRead + Unpin), wait: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(
            wait.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::test]
async fn idle_connections_are_closed_and_capped_per_address() {
    let ca = TestCa::new();
    let hearth = Hearth::start_with(&ca, &limits(&[("HEARTH_LIMITS__CONNECTIONS_PER_IP", "20")]));
    let pid = hearth.pid().expect("running");
    let fds_before = open_fds(pid);
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(TcpStream::connect(hearth.client).await.expect("connect"));
    }
    // Past the cap, connections are closed at once, unread.
    for stream in &mut held[20..] {
        assert!(
            closed_within(stream, Duration::from_secs(2))
                .await
                .is_some(),
            "a connection past the per-address cap stayed open"
        );
    }
    let fds = open_fds(pid);
    assert!(
        fds <= fds_before + 25,
        "300 idle connections took {} descriptors",
        fds - fds_before
    );
    // The ones within the cap are closed once idle for 2 s.
    for stream in &mut held[..20] {
        let closed = closed_within(stream, Duration::from_secs(8)).await;
        assert!(closed.is_some(), "an idle connection was never closed");
    }
    // And the server still answers.
    let versions = get_by_hand(&hearth, "/_matrix/client/versions").await;
    assert!(versions.starts_with("HTTP/1.1 200"), "{versions}");
}

#[tokio::test]
async fn connections_past_the_total_are_closed() {
    let ca = TestCa::new();
    let hearth = Hearth::start_with(
        &ca,
        &limits(&[
            ("HEARTH_LIMITS__MAX_CONNECTIONS", "30"),
            ("HEARTH_LIMITS__IDLE_TIMEOUT_SECS", "30"),
        ]),
    );
    // The harness's probes of the listeners count until they are closed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(TcpStream::connect(hearth.client).await.expect("connect"));
    }
    let mut closed = 0;
    for stream in &mut held {
        if closed_within(stream, Duration::from_millis(300))
            .await
            .is_some()
        {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 10,
        "the 10 connections past 30 are closed, no others"
    );
}

/// A `/login` request whose headers promise `length` bytes, followed by
/// all of them but the last: the server waits for that byte.
async fn stall_body(hearth: &Hearth, length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(hearth.client).await.expect("connect");
    let head = format!(
        "POST /_matrix/client/v3/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < length - 1 {
        let n = chunk.len().min(length - 1 - sent);
        // The server may answer (429) and stop reading before the end.
        if stream.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        sent += n;
    }
    stream
}

#[tokio::test]
async fn stalled_bodies_pin_a_bounded_amount_of_memory_for_a_bounded_time() {
    let ca = TestCa::new();
    let hearth = Hearth::start_with(
        &ca,
        &limits(&[
            ("HEARTH_LIMITS__BODY_MIB_IN_FLIGHT", "16"),
            ("HEARTH_LIMITS__BODY_TIMEOUT_SECS", "4"),
            ("HEARTH_LIMITS__IDLE_TIMEOUT_SECS", "60"),
        ]),
    );
    let pid = hearth.pid().expect("running");
    let rss_before = rss_kb(pid);
    let mut stalled = Vec::new();
    for _ in 0..20 {
        stalled.push(stall_body(&hearth, 8 * 1024 * 1024).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown_mb = rss_kb(pid).saturating_sub(rss_before) / 1024;
    // 20 bodies of 8 MiB are 160 MiB; the budget is 16.
    assert!(grown_mb < 48, "20 stalled 8 MiB bodies took {grown_mb} MB");
    // Each is answered (429 past the budget, 408 at the deadline) and closed.
    let started = Instant::now();
    for stream in &mut stalled {
        let closed = closed_within(stream, Duration::from_secs(10)).await;
        assert!(closed.is_some(), "a stalled body's connection stayed open");
    }
    assert!(started.elapsed() < Duration::from_secs(9));
    let versions = get_by_hand(&hearth, "/_matrix/client/versions").await;
    assert!(versions.starts_with("HTTP/1.1 200"), "{versions}");
}

#[tokio::test]
async fn a_federation_body_is_not_read_before_the_header_checks_out() {
    let ca = TestCa::new();
    let hearth = Hearth::start(&ca);
    let mut stream = connect_tls(hearth.federation, &ca.ca_pem()).await;
    // Signed by a server that is not there (port 1 refuses at once): its
    // key cannot be found, so the 1 MB body it promises is never awaited.
    let head = format!(
        "PUT /_matrix/federation/v1/send/t1 HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         authorization: X-Matrix origin=\"127.0.0.1:1\",destination=\"{}\",key=\"ed25519:a\",sig=\"c2ln\"\r\n\
         content-length: 1000000\r\n\r\n",
        hearth.server_name, hearth.server_name
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered before the body was sent")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("M_UNAUTHORIZED"), "{answer}");
    // Requests without a signature are refused too, and none of it is an
    // error of the server's own (it used to log one per request).
    for (method, path) in [
        ("PUT", "/_matrix/federation/v1/send/t2"),
        ("GET", "/_matrix/federation/v1/state/!r:x?event_id=$e"),
        ("POST", "/_matrix/federation/v1/user/keys/query"),
    ] {
        let (status, _) = common::http::request(
            common::http::Target::Tls(hearth.federation, ca.ca_pem()),
            method,
            path,
            &[],
            Some(b"{}".to_vec()),
        )
        .await;
        assert_eq!(status, 401, "{method} {path}");
    }
    assert!(!hearth.log().contains("ERROR"), "{}", hearth.log());
}

/// A GET written by hand on a fresh connection; the whole answer.
async fn get_by_hand(hearth: &Hearth, path: &str) -> String {
    let mut stream = TcpStream::connect(hearth.client).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}
