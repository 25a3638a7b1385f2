//! `hearth federation status` over real processes: a destination that is
//! down shows its queue and failures, the failures survive `kill -9`, and
//! the queue drains once it is back; `hearth federation retry` forgets
//! a destination's failures, running or not.

mod common;

use std::time::{Duration, Instant};

use common::{
    rooms::{say, shared_room, wait_for_events},
    Hearth,
};
use serde_json::{json, Value};

/// The entry for `destination` in `h`'s federation status, if listed.
fn status_of(h: &Hearth, destination: &str) -> Option<Value> {
    let status = h.federation_status();
    let destinations = status["destinations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    destinations
        .into_iter()
        .find(|d| d["destination"] == destination)
}

/// Waits until `check` accepts the status of `destination` on `h`.
async fn wait_for_status(
    h: &Hearth,
    destination: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = status_of(h, destination).unwrap_or_default();
        if check(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: {status}\n{}", h.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn status_shows_queues_and_failures_that_survive_a_restart() {
    let ca = common::TestCa::new();
    let mut a = Hearth::start_with(&ca, &[("HEARTH_METRICS__ENABLED", "true")]);
    let mut b = Hearth::start(&ca);
    let (room, alice, _) = shared_room(&a, &b).await;
    let before = say(&a, &room, &alice, "while B is up").await;
    wait_for_events(&b, &room, &[before], 10).await;
    let ok = wait_for_status(&a, &b.server_name, "a success is recorded", |s| {
        s["last_success_ms"].as_u64().is_some()
    })
    .await;
    assert_eq!(
        (ok["queued"].as_u64(), ok["consecutive_failures"].as_u64()),
        (Some(0), Some(0)),
        "{ok}"
    );

    b.kill();
    let mut queued = Vec::new();
    for i in 0..3 {
        queued.push(say(&a, &room, &alice, &format!("while B is down {i}")).await);
    }
    let down = wait_for_status(&a, &b.server_name, "B's failure is shown", |s| {
        s["queued"] == 3 && s["consecutive_failures"].as_u64() >= Some(1)
    })
    .await;
    assert!(
        down["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{down}"
    );
    assert!(down["oldest_queued_ms"].as_u64().is_some(), "{down}");
    assert!(down["next_retry_ms"].as_u64().is_some(), "{down}");
    // The same numbers for Prometheus; B does not serve metrics (off by default).
    let metrics = a.metrics().await.expect("A serves metrics");
    let line = format!(
        "hearth_federation_queued{{destination=\"{}\"}} 3\n",
        b.server_name
    );
    assert!(metrics.contains(&line), "{metrics}");
    assert!(
        metrics.contains("# TYPE hearth_federation_consecutive_failures gauge"),
        "{metrics}"
    );

    let c = Hearth::start(&ca);
    assert_eq!(c.metrics().await, None);

    // kill -9: the queue and the failures are read from the data directory.
    a.kill();
    let offline = status_of(&a, &b.server_name).expect("B listed while A is down");
    assert_eq!(offline["queued"], 3, "{offline}");
    assert!(
        offline["consecutive_failures"].as_u64() >= down["consecutive_failures"].as_u64(),
        "{offline}"
    );
    assert!(offline["next_retry_ms"].as_u64().is_some(), "{offline}");
    assert!(
        offline["last_success_ms"].is_null(),
        "only a running server knows: {offline}"
    );

    // Restarted, A still knows B is failing; once B is back, A drains to it.
    a.restart();
    let restarted = status_of(&a, &b.server_name).expect("B listed after the restart");
    assert!(
        restarted["consecutive_failures"].as_u64() >= Some(1),
        "{restarted}"
    );
    b.restart();
    wait_for_events(&b, &room, &queued, 60).await;
    wait_for_status(&a, &b.server_name, "the queue drains", |s| {
        s["queued"] == 0
            && s["consecutive_failures"] == 0
            && s["last_success_ms"].as_u64().is_some()
    })
    .await;
}

/// What a signed probe from `h` to `destination` failed with.
async fn probe_error(h: &Hearth, destination: &str) -> String {
    let probe = json!({"destination": destination, "method": "GET",
                       "uri": "/_matrix/federation/v1/version"});
    let (status, reply) = h.admin("federation/request", probe).await;
    assert_eq!(status, 502, "nothing listens at {destination}: {reply}");
    reply["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn retry_forgets_a_destinations_failures_running_or_not() {
    let ca = common::TestCa::new();
    let mut a = Hearth::start(&ca);
    // Nothing listens there and nothing is queued for it: only the
    // probes below try it, so only they and `retry` change its record.
    let down = format!("127.0.0.1:{}", common::free_port());
    let tried = |error: &str| error.contains("refused") && !error.contains("not trying");
    assert!(tried(&probe_error(&a, &down).await));
    assert!(probe_error(&a, &down).await.contains("not trying"));

    // Running: through the admin API.
    let out = a.cli(&["federation", "retry", &down]);
    assert!(out.contains("failures forgotten"), "{out}");
    assert!(tried(&probe_error(&a, &down).await), "tried at once");
    assert!(probe_error(&a, &down).await.contains("not trying"));

    // Stopped: on the data directory; the restarted server tries at once.
    // A failure record is acknowledged to no one, so it reaches the disk
    // with sled's next periodic flush (every 500 ms), not at once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill();
    assert!(status_of(&a, &down).is_some(), "the failure is on record");
    let out = a.cli(&["federation", "retry", &down]);
    assert!(out.contains("failures forgotten"), "{out}");
    assert_eq!(status_of(&a, &down), None);
    let out = a.cli(&["federation", "retry", &down]);
    assert!(out.contains("no failures on record"), "{out}");
    a.restart();
    assert!(
        tried(&probe_error(&a, &down).await),
        "tried after the restart"
    );
}
