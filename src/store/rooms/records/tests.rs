use super::*;

fn group(parent: Option<u64>, delta: Vec<(u64, u64)>) -> StateGroup {
    StateGroup {
        parent,
        chain: 3,
        delta,
    }
}

#[test]
fn state_groups_round_trip_in_a_few_bytes_an_entry() {
    let snapshot = group(None, (1..=1000).map(|k| (k * 3, 500_000 + k)).collect());
    let bytes = snapshot.to_bytes();
    assert!(bytes.len() <= 8 + 1000 * 4, "{} bytes", bytes.len());
    assert_eq!(StateGroup::from_bytes(&bytes).expect("decode"), snapshot);
    // Unsorted entries, a removal and the largest ids survive too.
    let delta = group(Some(7), vec![(u64::MAX, 1), (5, 0), (9, u64::MAX)]);
    let mut sorted = delta.clone();
    sorted.delta.sort_unstable();
    assert_eq!(
        StateGroup::from_bytes(&delta.to_bytes()).expect("decode"),
        sorted
    );
}

#[test]
fn json_groups_written_before_still_read() {
    let json = br#"{"parent":4,"chain":1,"delta":[[2,3]]}"#;
    assert_eq!(
        StateGroup::from_bytes(json).expect("decode"),
        StateGroup {
            parent: Some(4),
            chain: 1,
            delta: vec![(2, 3)],
        }
    );
}

#[test]
fn corrupt_groups_are_errors() {
    let bytes = group(Some(1), vec![(1, 2), (3, 4)]).to_bytes();
    for cut in 1..bytes.len() {
        assert!(
            StateGroup::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(StateGroup::from_bytes(&extra).is_err(), "trailing bytes");
    // A huge count in a short record fails without reserving memory for it.
    let mut huge = vec![GROUP_FORMAT, 0, 0];
    huge.extend([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
    assert!(StateGroup::from_bytes(&huge).is_err());
}
