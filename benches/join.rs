//! Joining a remote room over real loopback federation: hearth A holds a
//! public room with N members; a user of hearth B joins it through A.
//! Timed: make_join, send_join (A answers with the state and auth chain),
//! and B verifying every returned event's signatures and hashes, checking
//! each against its auth events and storing the room. B asks for the full
//! state (it does not use `omit_members` yet).
//!
//! Run: `cargo bench --bench join` (HEARTH_BENCH_MEMBERS sets N, default 1000).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{
    rooms::{create, join, make_public, send, user},
    Hearth, TestCa,
};
use serde_json::json;

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
        let b = Hearth::start_with(&ca, &release);
        let alice = user(&a, "alice");
        let room = create(&a, &alice, "12").await;
        make_public(&a, &room, &alice).await;
        let started = Instant::now();
        for i in 0..members {
            let member = user(&a, &format!("member{i}"));
            let (status, reply) = send(
                &a,
                &room,
                json!({"sender": member, "type": "m.room.member", "state_key": member, "content": {"membership": "join"}}),
            )
            .await;
            assert_eq!(status, 200, "{reply}");
        }
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
    });
}
