use serde_json::json;

use super::*;

fn edu(user: &str, n: u64) -> Queued {
    Queued::Edu {
        edu: json!({"user": user, "n": n}),
        expires_ms: None,
    }
}

#[test]
fn a_batch_reads_past_edus_that_merge_but_keeps_the_limits() {
    let dir = tempfile::tempdir().expect("dir");
    let store = crate::store::Store::open(dir.path()).expect("store");
    let queue = &store.outbound;
    let to = <&ServerName>::try_from("b.example.org").expect("name");
    let mut seq = 0;
    let mut push = |item: Queued| {
        seq += 1;
        queue.push(&[to], seq, &item).expect("push");
    };
    // 300 updates of one user's receipt, then 3 other users, a PDU.
    for n in 0..300 {
        push(edu("@u:x", n));
    }
    for user in ["@v:x", "@w:x", "@x:x"] {
        push(edu(user, 0));
    }
    push(Queued::Pdu {
        event_id: OwnedEventId::try_from("$pdu").expect("id"),
    });
    let by_user = |edu: &serde_json::Value| edu["user"].as_str().map(str::to_owned);

    let all = queue.batch(to, 50, 3, by_user).expect("batch");
    assert_eq!(all.len(), 302, "u's 300 count once, then v and w; x waits");
    let unmerged = queue.batch(to, 50, 3, |_| None).expect("batch");
    assert_eq!(unmerged.len(), 3);
    let everything = queue.batch(to, 50, 100, by_user).expect("batch");
    assert_eq!(everything.len(), 304);
    assert!(matches!(everything[303].item, Queued::Pdu { .. }));
    assert_eq!(queue.first(to).expect("first"), Some(edu("@u:x", 0)));
}
