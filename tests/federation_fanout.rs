//! One room shared by 21 real hearth processes: an event sent on one
//! reaches all 20 other servers, each once, and every join made through
//! the resident server is relayed to the servers already in the room.

mod common;

use common::{
    rooms::{create, join, make_public, say, timeline, user, view, wait_for_events},
    Hearth, TestCa,
};

const DESTINATIONS: usize = 20;

#[tokio::test]
async fn one_event_reaches_twenty_destinations() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let alice = user(&a, "alice");
    let room = create(&a, &alice, "12").await;
    make_public(&a, &room, &alice).await;
    let others: Vec<Hearth> = (0..DESTINATIONS).map(|_| Hearth::start(&ca)).collect();
    let mut joins = Vec::new();
    for h in &others {
        let (status, reply) = join(h, &room, &user(h, "member"), &[&a.server_name]).await;
        assert_eq!(status, 200, "{reply}\n{}", h.log());
        joins.push(reply["event_id"].as_str().expect("event_id").to_owned());
    }
    let message = say(&a, &room, &alice, "hello, twenty servers").await;
    for (i, h) in others.iter().enumerate() {
        let on_h = wait_for_events(h, &room, std::slice::from_ref(&message), 60).await;
        assert_eq!(
            on_h.iter().filter(|e| **e == message).count(),
            1,
            "server {i}"
        );
        // The joins after its own were relayed to it by A.
        wait_for_events(h, &room, &joins[i..], 60).await;
    }
    let (_, on_a) = view(&a, &room).await;
    let members = on_a["state"]
        .as_array()
        .map(|s| s.iter().filter(|e| e[0] == "m.room.member").count())
        .unwrap_or_default();
    assert_eq!(members, DESTINATIONS + 1, "{on_a}");
    assert!(timeline(&on_a).contains(&message));
}
