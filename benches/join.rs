//! Joining a remote room over real loopback federation: hearth A holds a
//! public room with N members; a user of hearth B joins it through A, and
//! a user of hearth C with partial state (`omit_members`).
//! Timed: make_join, send_join (A answers with the state and auth chain),
//! and B verifying every returned event's signatures and hashes, checking
//! each against its auth events and storing the room. For C: until its
//! join returns (the non-member state checked and stored), and until the
//! member events it fetched after (`/state`) are checked and stored.
//!
//! Then A serving the room's state: one `/state` alone, and how long A
//! takes to answer a cheap request while B has three `/state` in progress
//! (a blocked runtime shows here).
//!
//! Run: `cargo bench --bench join` (HEARTH_BENCH_MEMBERS sets N, default 1000).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{
    rooms::{add_members, create, encode, federation, join, make_public, say, user, view},
    Hearth, TestCa,
};

fn main() {
    let members: usize = std::env::var("HEARTH_BENCH_MEMBERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ca = TestCa::new();
        let release = [("HEARTH_LOG", "error")];
        let a = Hearth::start_with(&ca, &release);
        let b = Hearth::start_with(
            &ca,
            &[
                ("HEARTH_LOG", "error"),
                ("HEARTH_ROOMS__PARTIAL_STATE_JOINS", "false"),
            ],
        );
        let c = Hearth::start_with(&ca, &release);
        let alice = user(&a, "alice");
        let room = create(&a, &alice, "12").await;
        make_public(&a, &room, &alice).await;
        let started = Instant::now();
        add_members(&a, &room, members).await;
        println!(
            "A: {members} members joined in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let bob = user(&b, "bob");
        let started = Instant::now();
        let (status, reply) = join(&b, &room, &bob, &[&a.server_name]).await;
        assert_eq!(status, 200, "{reply}");
        println!(
            "B joined a room of {} members through A in {:.2}s",
            members + 1,
            started.elapsed().as_secs_f64()
        );

        let carol = user(&c, "carol");
        let started = Instant::now();
        let (status, reply) = join(&c, &room, &carol, &[&a.server_name]).await;
        assert_eq!(status, 200, "{reply}");
        let joined = started.elapsed().as_secs_f64();
        while view(&c, &room).await.1["partial_state"] != false {
            assert!(started.elapsed().as_secs() < 120, "{}", c.log());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        println!(
            "C joined with partial state in {joined:.2}s, all {} members stored after {:.2}s",
            members + 2,
            started.elapsed().as_secs_f64()
        );
        serving_state(&ca, &a, &b, &room, &alice).await;
    });
}

/// A answering `/state` for B, and a cheap request meanwhile.
async fn serving_state(ca: &TestCa, a: &Hearth, b: &Hearth, room: &str, alice: &str) {
    let event = say(a, room, alice, "here").await;
    let uri = format!(
        "/_matrix/federation/v1/state/{}?event_id={}",
        encode(room),
        encode(&event)
    );
    let started = Instant::now();
    let (status, body) = federation(b, a, "GET", &uri, None).await;
    assert_eq!(status, 200, "{body}");
    println!(
        "A answered /state ({} events) in {:.3}s",
        body["pdus"].as_array().map_or(0, Vec::len)
            + body["auth_chain"].as_array().map_or(0, Vec::len),
        started.elapsed().as_secs_f64()
    );
    let load = async {
        let started = Instant::now();
        futures_util::future::join_all((0..3).map(|_| federation(b, a, "GET", &uri, None))).await;
        started.elapsed().as_secs_f64()
    };
    let probe = async {
        let mut slowest = 0f64;
        let mut probes = 0;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let started = Instant::now();
        while started.elapsed().as_secs_f64() < 0.5 {
            let sent = Instant::now();
            let (status, _) = a
                .federation_request(ca, "GET", "/_matrix/federation/v1/version", &[], None)
                .await;
            assert_eq!(status, 200);
            slowest = slowest.max(sent.elapsed().as_secs_f64());
            probes += 1;
        }
        (slowest, probes)
    };
    let (loaded, (slowest, probes)) = tokio::join!(load, probe);
    println!(
        "three /state at once took {loaded:.3}s; A's /version meanwhile: slowest of {probes} {:.1} ms",
        slowest * 1000.0
    );
}
