//! Token buckets keyed by who is asking (an address, an account), in the
//! spirit of Synapse's `rc_*` settings: `burst` actions at once, refilled
//! at `per_minute`. A refused action is told how long to wait.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::error::Error;

/// Keys tracked before full buckets (the same as untracked) are dropped,
/// so that made-up keys cannot grow the map.
const PRUNE_AT: usize = 10_000;

pub struct RateLimiter<K> {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one action for `key`, or says how long until one is allowed.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, bucket| self.refilled(bucket, now) < self.burst);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = self.refilled(bucket, now);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    /// Whether `key` could take an action now, without taking it.
    pub fn allows(&self, key: &K) -> Result<(), Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match buckets.get(key) {
            Some(bucket) if self.refilled(bucket, Instant::now()) < 1.0 => {
                let tokens = self.refilled(bucket, Instant::now());
                Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
            }
            _ => Ok(()),
        }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }
}

/// 429 `M_LIMIT_EXCEEDED` with `retry_after_ms`, counted as a refusal
/// for `what`.
pub fn too_many(what: &'static str, wait: Duration) -> Error {
    count_refusal(what);
    Error::limit_exceeded(
        format!("too many {what}; try again in {} s", wait.as_secs().max(1)),
        wait.as_millis().max(1) as u64,
    )
}

/// Requests refused so far, by what there were too many of (for
/// `/metrics`). One count for the process, as the limits are.
static REFUSALS: Mutex<Vec<(&'static str, u64)>> = Mutex::new(Vec::new());

pub fn count_refusal(what: &'static str) {
    let mut refusals = REFUSALS.lock().unwrap_or_else(|e| e.into_inner());
    match refusals.iter_mut().find(|(reason, _)| *reason == what) {
        Some((_, count)) => *count += 1,
        None => refusals.push((what, 1)),
    }
}

/// (reason, count) of every refusal so far.
pub fn refusals() -> Vec<(&'static str, u64)> {
    REFUSALS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[cfg(test)]
mod tests;
