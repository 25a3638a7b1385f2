use super::Recent;

#[test]
fn keeps_what_is_used_and_bounds_the_rest() {
    let mut recent = Recent::new(4);
    recent.put(0, "hot");
    for n in 1..100 {
        recent.put(n, "cold");
        // Read after every insert: the hot entry is never dropped.
        assert_eq!(recent.get(&0), Some("hot"), "after {n} inserts");
    }
    assert!(recent.young.len() + recent.old.len() <= 8);
    assert_eq!(recent.get(&1), None, "an old cold entry is dropped");
    assert_eq!(recent.get(&99), Some("cold"));
}

#[test]
fn a_later_put_replaces_an_older_value() {
    let mut recent = Recent::new(2);
    recent.put("k", 1);
    recent.put("other", 0);
    // "k" is now in the old generation; the new value must win.
    recent.put("k", 2);
    assert_eq!(recent.get("k"), Some(2));
    recent.put("x", 0);
    recent.put("y", 0);
    assert_eq!(recent.get("k"), Some(2));
}
