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
