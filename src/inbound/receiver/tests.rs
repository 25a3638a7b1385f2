use futures_util::FutureExt;

use super::*;

fn server(name: &str) -> OwnedServerName {
    OwnedServerName::try_from(name).expect("server name")
}

fn resolved(done: &Option<Done>) -> bool {
    done.clone().is_none_or(|d| d.now_or_never().is_some())
}

#[test]
fn an_origin_waits_for_its_own_earlier_transactions_only() {
    let lanes = Lanes::default();
    let (a, b) = (server("a.example"), server("b.example"));
    let first = lanes.enter(&a, None).expect("entered");
    let second = lanes.enter(&a, None).expect("entered");
    let third = lanes.enter(&a, None).expect("entered");
    let other = lanes.enter(&b, None).expect("entered");
    assert!(first.after.is_none() && first.stage_after.is_none());
    assert!(other.after.is_none(), "origins do not wait for each other");
    assert!(!resolved(&second.after) && !resolved(&third.after));
    // The third is staged once the first is taken in.
    assert!(!resolved(&third.stage_after));
    lanes.leave(first);
    assert!(resolved(&second.after) && resolved(&third.stage_after));
    assert!(!resolved(&third.after));
    lanes.leave(second);
    assert!(resolved(&third.after));
    lanes.leave(third);
    lanes.leave(other);
    assert!(
        lanes.0.lock().expect("lanes").1.is_empty(),
        "idle lanes stay"
    );
}

#[test]
fn an_abandoned_transaction_does_not_let_the_next_overtake() {
    let lanes = Lanes::default();
    let a = server("a.example");
    let first = lanes.enter(&a, None).expect("entered");
    let abandoned = lanes.enter(&a, None).expect("entered");
    let third = lanes.enter(&a, None).expect("entered");
    drop(abandoned);
    assert!(!resolved(&third.after), "overtook the first");
    lanes.leave(first);
    assert!(resolved(&third.after));
    // A lane whose last ticket was abandoned goes once a later one leaves.
    lanes.leave(third);
    let fresh = lanes.enter(&a, None).expect("entered");
    assert!(resolved(&fresh.after));
}

#[test]
fn an_origin_with_too_many_in_progress_is_told_to_slow_down() {
    let lanes = Lanes::default();
    let (a, b) = (server("a.example"), server("b.example"));
    let limit = Some(MAX_IN_PROGRESS);
    let mut tickets: Vec<Ticket> = (0..MAX_IN_PROGRESS)
        .map(|_| lanes.enter(&a, limit).expect("within the limit"))
        .collect();
    let refused = lanes.enter(&a, limit).err().expect("refused");
    assert_eq!(
        (refused.status, refused.errcode),
        (http::StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED")
    );
    assert!(
        lanes.enter(&b, limit).is_ok(),
        "another origin is not held up"
    );
    // One taken in, one abandoned: room for two more, not three.
    lanes.leave(tickets.remove(0));
    drop(tickets.pop());
    let again: Vec<Ticket> = (0..2)
        .map(|_| lanes.enter(&a, limit).expect("room again"))
        .collect();
    assert!(lanes.enter(&a, limit).is_err(), "full again");
    drop(again);
}
