use super::*;

#[test]
fn staged_transactions_survive_a_reopen_in_order_until_unstaged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let origin = <&ServerName>::try_from("a.example").expect("name");
    let seqs: Vec<u64> = {
        let store = crate::store::reopen(dir.path());
        let tree = &store.transactions;
        let seqs: Vec<u64> = (0..3)
            .map(|i| tree.stage(origin, format!("{{\"n\":{i}}}").as_bytes()))
            .collect::<Result<_>>()
            .expect("staged");
        tree.unstage(seqs[1]).expect("unstaged");
        seqs
    };
    let store = crate::store::reopen(dir.path());
    let tree = &store.transactions;
    let left = tree.staged().expect("read");
    let found: Vec<_> = left.iter().map(|s| (s.seq, s.body.as_slice())).collect();
    assert_eq!(
        found,
        vec![(seqs[0], &b"{\"n\":0}"[..]), (seqs[2], &b"{\"n\":2}"[..])]
    );
    assert!(left.iter().all(|s| s.origin == origin));
    assert_eq!(tree.staged_count(), 2);
    let next = tree.stage(origin, b"{}").expect("staged");
    assert!(
        next > seqs[2],
        "sequence went back: {next} after {}",
        seqs[2]
    );
}

#[test]
fn answers_are_kept_until_pruned_and_old_ones_read_as_they_were() {
    let dir = tempfile::tempdir().expect("temp dir");
    let origin = <&ServerName>::try_from("a.example").expect("name");
    let store = crate::store::reopen(dir.path());
    let tree = &store.transactions;
    // A record from before answers were timed: the JSON alone.
    tree.tree
        .insert(key(origin, "old"), &b"{\"pdus\":{}}"[..])
        .expect("insert");
    tree.record(origin, "new", b"{\"pdus\":{\"$a\":{}}}")
        .expect("record");
    assert_eq!(
        tree.response(origin, "old").expect("read").as_deref(),
        Some(&b"{\"pdus\":{}}"[..])
    );
    assert_eq!(
        tree.response(origin, "new").expect("read").as_deref(),
        Some(&b"{\"pdus\":{\"$a\":{}}}"[..])
    );
    let an_hour_ago = crate::time::now_ms() - 3_600_000;
    assert_eq!(tree.prune(an_hour_ago).expect("pruned"), 1);
    assert!(tree.response(origin, "old").expect("read").is_none());
    assert!(tree.response(origin, "new").expect("read").is_some());
    assert_eq!(tree.prune(u64::MAX).expect("pruned"), 1);
}
