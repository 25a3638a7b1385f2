use super::*;

fn key(valid_until_ts: u64, expired_ts: Option<u64>) -> RemoteKey {
    RemoteKey {
        key: String::new(),
        valid_until_ts,
        expired_ts,
    }
}

#[test]
fn request_keys_must_be_current_and_valid_now() {
    assert!(key(2000, None).usable_for(KeyUse::Request, 1000));
    assert!(!key(500, None).usable_for(KeyUse::Request, 1000));
    assert!(!key(2000, Some(1500)).usable_for(KeyUse::Request, 1000));
}

#[test]
fn event_keys_follow_validity_at_the_event_time() {
    // v5+: an expired response still vouches for events signed before it expired.
    assert!(key(500, None).usable_for(KeyUse::EventAt(400), 1000));
    assert!(key(500, None).usable_for(KeyUse::EventAt(500), 1000));
    assert!(!key(500, None).usable_for(KeyUse::EventAt(501), 1000));
    assert!(key(9000, Some(700)).usable_for(KeyUse::EventAt(699), 1000));
    assert!(!key(9000, Some(700)).usable_for(KeyUse::EventAt(700), 1000));
}
