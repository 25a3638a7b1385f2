use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::*;

/// Writes key n to `first`, then to `second`, counting up, until told to stop.
fn write_pairs(
    first: &super::super::tree::Tree,
    second: &super::super::tree::Tree,
    stop: &AtomicBool,
    written: &AtomicU64,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        first.insert(n.to_be_bytes(), vec![1; 200]).expect("write");
        second.insert(n.to_be_bytes(), vec![2; 200]).expect("write");
        n += 1;
        written.store(n, Ordering::Release);
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

fn keys(db: &sled::Db, name: &str) -> Vec<u64> {
    db.open_tree(name)
        .expect("tree")
        .iter()
        .keys()
        .map(|key| u64::from_be_bytes(key.expect("key").as_ref().try_into().expect("u64")))
        .collect()
}

/// A copy taken (slowly) while pairs are written shows one instant of the
/// writes: every pair before the copy began, and the second tree of a pair
/// never without the first, though the second tree is copied after the
/// first.
#[test]
fn a_copy_under_writes_holds_one_instant_of_them() {
    let dir = tempfile::tempdir().expect("dir");
    let dest = tempfile::tempdir().expect("dest");
    let store = crate::store::reopen(dir.path());
    let (a, b) = (
        store.db.open_tree("a_test").expect("a"),
        store.db.open_tree("b_test").expect("b"),
    );
    let (stop, written) = (AtomicBool::new(false), AtomicU64::new(0));
    let report = std::thread::scope(|scope| {
        scope.spawn(|| write_pairs(&a, &b, &stop, &written));
        while written.load(Ordering::Acquire) < 2000 {
            std::thread::yield_now();
        }
        let before = written.load(Ordering::Acquire);
        // Slow enough that many pairs are written while it runs.
        let report = store.copy_database(dest.path(), Some(2_000_000));
        stop.store(true, Ordering::Relaxed);
        (report.expect("copied"), before)
    });
    let (report, before) = report;
    verify_copy(dest.path(), &report).expect("verified");
    let copy = reopen_copy(dest.path()).expect("reopen");
    let (first, second) = (keys(&copy, "a_test"), keys(&copy, "b_test"));
    assert!(
        second.len() as u64 >= before,
        "pairs written before the copy are missing"
    );
    assert!(
        first.len() == second.len() || first.len() == second.len() + 1,
        "not one instant: {} in the first tree, {} in the second",
        first.len(),
        second.len()
    );
    assert!(
        first.iter().copied().eq(0..first.len() as u64),
        "gaps in the first tree"
    );
    assert!(
        second.iter().copied().eq(0..second.len() as u64),
        "gaps in the second tree"
    );
    let a_total = written.load(Ordering::Acquire);
    assert!(
        a_total > second.len() as u64,
        "the writer should have gone on after the copy's instant"
    );
}

#[test]
fn a_copy_that_reads_back_differently_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let dest = tempfile::tempdir().expect("dest");
    let store = crate::store::reopen(dir.path());
    store
        .db
        .open_tree("a_test")
        .expect("a")
        .insert("k", "v")
        .expect("write");
    let mut report = store.copy_database(dest.path(), None).expect("copied");
    verify_copy(dest.path(), &report).expect("verified");
    let tree = report
        .trees
        .iter_mut()
        .find(|t| t.name == "a_test")
        .expect("a summary");
    tree.records += 1;
    let error = verify_copy(dest.path(), &report).expect_err("a wrong count is found");
    assert!(error.to_string().contains("a_test"), "{error}");
    assert!(
        store.copy_database(dest.path(), None).is_err(),
        "copied over an existing copy"
    );
}
