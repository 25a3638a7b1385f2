use super::*;

fn cached(fetched_ts: u64, valid_until_ts: u64) -> StoredKeyResponse {
    let response = [(
        "valid_until_ts".to_owned(),
        CanonicalJsonValue::Integer(valid_until_ts.try_into().expect("small")),
    )];
    StoredKeyResponse {
        fetched_ts,
        response: response.into(),
    }
}

#[test]
fn cache_lasts_half_the_remaining_lifetime() {
    let c = cached(1000, 3000);
    assert!(is_fresh(&c, 0, 1999));
    assert!(!is_fresh(&c, 0, 2000));
}

#[test]
fn minimum_valid_until_forces_a_refetch() {
    let c = cached(1000, 3000);
    assert!(is_fresh(&c, 3000, 1500));
    assert!(!is_fresh(&c, 3001, 1500));
}
