//! Per-destination backoff: after connection failures, ordinary requests to
//! a destination fail fast until its retry time, so a dead server costs us
//! nothing per event. Kept in memory here; the outbound sender builds its
//! persisted retry schedule on the same record.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use rand::Rng;
use ruma::{OwnedServerName, ServerName};

const FIRST_DELAY: Duration = Duration::from_secs(5);
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Destinations remembered at once; healthy ones are not stored at all.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone)]
pub struct DestinationState {
    pub consecutive_failures: u32,
    pub last_error: String,
    pub retry_at: Instant,
}

#[derive(Default)]
pub struct Backoff {
    entries: Mutex<HashMap<OwnedServerName, DestinationState>>,
}

/// The delay after `failures` consecutive failures: doubling from 5 s to an
/// hour, with ±20% jitter so that many destinations do not retry in step.
pub fn delay_after(failures: u32) -> Duration {
    let base = FIRST_DELAY
        .saturating_mul(1 << failures.saturating_sub(1).min(20))
        .min(MAX_DELAY);
    base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

impl Backoff {
    /// `Err` with the state when requests to `destination` should wait.
    pub fn check(&self, destination: &ServerName) -> Result<(), DestinationState> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(destination) {
            Some(state) if state.retry_at > Instant::now() => Err(state.clone()),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, destination: &ServerName, error: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(destination) {
            let now = Instant::now();
            entries.retain(|_, s| s.retry_at > now);
        }
        let failures = entries
            .get(destination)
            .map_or(0, |s| s.consecutive_failures)
            + 1;
        let state = DestinationState {
            consecutive_failures: failures,
            last_error: error.to_owned(),
            retry_at: Instant::now() + delay_after(failures),
        };
        entries.insert(destination.to_owned(), state);
    }

    /// The destination answered (or reached us): forget its failures.
    pub fn record_success(&self, destination: &ServerName) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(destination);
    }

    pub fn state(&self, destination: &ServerName) -> Option<DestinationState> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(destination)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_up_to_an_hour() {
        for (failures, base) in [(1, 5), (2, 10), (3, 20), (10, 2560), (11, 3600), (40, 3600)] {
            let delay = delay_after(failures).as_secs_f64();
            assert!(
                delay >= base as f64 * 0.8 && delay <= base as f64 * 1.2,
                "{failures}: {delay}"
            );
        }
    }

    #[test]
    fn failures_hold_off_and_success_clears() {
        let backoff = Backoff::default();
        let name = <&ServerName>::try_from("down.example").expect("name");
        assert!(backoff.check(name).is_ok());
        backoff.record_failure(name, "refused");
        backoff.record_failure(name, "refused again");
        let state = backoff.check(name).expect_err("backing off");
        assert_eq!(
            (state.consecutive_failures, state.last_error.as_str()),
            (2, "refused again")
        );
        backoff.record_success(name);
        assert!(backoff.check(name).is_ok());
        assert!(backoff.state(name).is_none());
    }
}
