//! Events per second through the whole local pipeline (build, hash, sign,
//! auth against auth events / state before / current state, state groups,
//! one durable commit each), for a linear room of messages and for members
//! joining one by one; plus disk bytes per event.
//!
//! Run: `cargo bench --bench rooms` (HEARTH_BENCH_EVENTS sets the count,
//! default 2000).

#[path = "../tests/common/proc.rs"]
mod proc;

use std::{sync::Arc, time::Instant};

use hearth::{
    config::Config,
    keys::KeyService,
    net::https::HttpsClient,
    rooms::{state_res::resolve, RoomService},
    store::Store,
};
use proc::{dir_bytes, rss_kb};
use ruma::{events::StateEventType, OwnedUserId, RoomVersionId};
use serde_json::json;

fn main() {
    let count: usize = std::env::var("HEARTH_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("dir");
        let config = Config { server_name: "bench.test".try_into().expect("name"), ..Config::default() };
        let store = Store::open(dir.path()).expect("store");
        let client = Arc::new(HttpsClient::new(&config).expect("client"));
        let keys = Arc::new(KeyService::new(&config, store.clone(), client).expect("keys"));
        let rooms = RoomService::new(
            config.server_name.clone(),
            RoomVersionId::V12,
            &store,
            keys,
            Arc::new(tokio::sync::Notify::new()),
        );
        let alice = OwnedUserId::try_from("@alice:bench.test").expect("user");

        let room = rooms.create_room(&alice, None).await.expect("room");
        let (bytes_before, rss_before) = (dir_bytes(dir.path()), rss_kb(std::process::id()));
        let started = Instant::now();
        for i in 0..count {
            rooms.send(&room, &alice, "m.room.message", None, json!({"body": format!("message {i}"), "msgtype": "m.text"})).await.expect("send");
        }
        let elapsed = started.elapsed().as_secs_f64();
        store.flush().await.expect("flush");
        let bytes = dir_bytes(dir.path()) - bytes_before;
        println!(
            "linear room: {count} messages in {elapsed:.2}s = {:.0} events/s; {} bytes/event on disk; RSS +{} KiB",
            count as f64 / elapsed,
            bytes / count as u64,
            rss_kb(std::process::id()).saturating_sub(rss_before)
        );

        let public = json!({"join_rule": "public"});
        rooms.send(&room, &alice, "m.room.join_rules", Some(""), public).await.expect("public");
        let bytes_before = dir_bytes(dir.path());
        let started = Instant::now();
        for i in 0..count {
            let user = OwnedUserId::try_from(format!("@user{i}:bench.test")).expect("user");
            rooms.send(&room, &user, "m.room.member", Some(user.as_str()), json!({"membership": "join"})).await.expect("join");
        }
        let elapsed = started.elapsed().as_secs_f64();
        store.flush().await.expect("flush");
        let bytes = dir_bytes(dir.path()) - bytes_before;
        let state = rooms.view(&room).expect("view").state.len();
        println!(
            "joins: {count} members in {elapsed:.2}s = {:.0} events/s; {} bytes/event on disk; {state} state entries; RSS {} KiB",
            count as f64 / elapsed,
            bytes / count as u64,
            rss_kb(std::process::id())
        );

        // Merging forks. First the current state against the state before
        // the last join, as when an event built before that join arrives;
        // then a user who left and joined again against the state before
        // the rejoin: the leave is in the auth difference and no member's
        // chain holds it, the case that once walked the whole room.
        let rules = RoomVersionId::V12.rules().expect("rules");
        let current = rooms.view(&room).expect("view").state;
        let mut before_last = current.clone();
        let last = format!("@user{}:bench.test", count - 1);
        before_last.remove(&(StateEventType::RoomMember, last));
        let user = OwnedUserId::try_from("@user0:bench.test").expect("user");
        let leave = rooms.send(&room, &user, "m.room.member", Some(user.as_str()), json!({"membership": "leave"})).await.expect("leave");
        rooms.send(&room, &user, "m.room.member", Some(user.as_str()), json!({"membership": "join"})).await.expect("rejoin");
        let rejoined = rooms.view(&room).expect("view").state;
        let mut before_rejoin = rejoined.clone();
        before_rejoin.insert((StateEventType::RoomMember, user.to_string()), leave);
        let fetch = |id: &ruma::EventId| rooms.pdu(id, &rules);
        let runs = 5;
        let time = |resolve: &dyn Fn() -> usize, expected: usize| {
            let started = Instant::now();
            for _ in 0..runs {
                assert_eq!(resolve(), expected);
            }
            started.elapsed().as_secs_f64() * 1000.0 / runs as f64
        };
        for (name, states) in [("a join", [current.clone(), before_last]), ("a rejoin", [rejoined.clone(), before_rejoin])] {
            let size = states[0].len();
            // The auth DAG from metadata and the index, and (as a caller
            // without them would) by parsing every event of the chains.
            let indexed = time(&|| rooms.resolve(&rules, &states, |_| None).expect("resolve").len(), size);
            let parsed = time(&|| resolve(&rules, &states, fetch).expect("resolve").len(), size);
            println!(
                "fork over {name} in a room of {size} state entries: {indexed:.1} ms per resolution ({parsed:.1} ms walking every chain by parsing events)",
            );
        }
    });
}
