use std::time::Duration;

use super::RateLimiter;

#[test]
fn a_burst_then_a_wait() {
    let limiter = RateLimiter::new(3, 60);
    for _ in 0..3 {
        assert!(limiter.take(&"a").is_ok());
    }
    let wait = limiter.take(&"a").unwrap_err();
    assert!(
        wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    assert!(limiter.allows(&"a").is_err());
    // Another key has its own bucket.
    assert!(limiter.take(&"b").is_ok());
    assert!(limiter.allows(&"c").is_ok());
}

#[test]
fn buckets_refill() {
    let limiter = RateLimiter::new(1, 6000);
    assert!(limiter.take(&1).is_ok());
    assert!(limiter.take(&1).is_err());
    std::thread::sleep(Duration::from_millis(20));
    assert!(limiter.take(&1).is_ok());
}
