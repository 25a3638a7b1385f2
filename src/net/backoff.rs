//! Per-destination backoff: after connection failures, ordinary requests to
//! a destination fail fast until its retry time, so a dead server costs us
//! nothing per event. The outbound sender waits on the same record. Once
//! the server attaches its store, failing destinations are persisted, so a
//! restart keeps their schedule.

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use rand::Rng;
use ruma::{OwnedServerName, ServerName};

use crate::{
    store::destinations::{DestinationTree, Failing},
    time::now_ms,
};

const FIRST_DELAY: Duration = Duration::from_secs(5);
/// A destination that comes back contacts us, which clears its backoff,
/// so the longest wait can be long.
const MAX_DELAY: Duration = Duration::from_secs(24 * 3600);
/// Destinations remembered at once; healthy ones are not stored at all.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone)]
pub struct DestinationState {
    pub consecutive_failures: u32,
    pub last_error: String,
    pub last_failure_ms: u64,
    pub retry_at: Instant,
}

impl DestinationState {
    /// As stored, with the retry time in Unix milliseconds.
    fn to_failing(&self) -> Failing {
        let left = self.retry_at.saturating_duration_since(Instant::now());
        Failing {
            consecutive_failures: self.consecutive_failures,
            last_error: self.last_error.clone(),
            last_failure_ms: self.last_failure_ms,
            retry_at_ms: now_ms()
                .saturating_add(u64::try_from(left.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

#[derive(Default)]
pub struct Backoff {
    entries: Mutex<HashMap<OwnedServerName, DestinationState>>,
    persisted: OnceLock<DestinationTree>,
    /// Woken when a failing destination comes back, so its queue drains
    /// at once rather than at the next poll.
    cleared: tokio::sync::Notify,
}

/// The delay after `failures` consecutive failures: doubling from 5 s to a
/// day, with ±20% jitter so that many destinations do not retry in step.
pub fn delay_after(failures: u32) -> Duration {
    let base = FIRST_DELAY
        .saturating_mul(1 << failures.saturating_sub(1).min(20))
        .min(MAX_DELAY);
    base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

impl Backoff {
    /// Loads the persisted schedule and keeps it up to date from now on.
    pub fn attach(&self, tree: DestinationTree) -> crate::error::Result<()> {
        let now = now_ms();
        let mut entries = self.lock();
        for (name, failing) in tree.all()? {
            let left = Duration::from_millis(failing.retry_at_ms.saturating_sub(now));
            entries.insert(
                name,
                DestinationState {
                    consecutive_failures: failing.consecutive_failures,
                    last_error: failing.last_error,
                    last_failure_ms: failing.last_failure_ms,
                    retry_at: Instant::now() + left,
                },
            );
        }
        let _ = self.persisted.set(tree);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OwnedServerName, DestinationState>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err` with the state when requests to `destination` should wait.
    pub fn check(&self, destination: &ServerName) -> Result<(), DestinationState> {
        match self.lock().get(destination) {
            Some(state) if state.retry_at > Instant::now() => Err(state.clone()),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, destination: &ServerName, error: &str) {
        let mut entries = self.lock();
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
            last_failure_ms: now_ms(),
            retry_at: Instant::now() + delay_after(failures),
        };
        if let Some(tree) = self.persisted.get() {
            if let Err(e) = tree.put(destination, &state.to_failing()) {
                tracing::warn!(%destination, error = %e, "cannot persist backoff");
            }
        }
        entries.insert(destination.to_owned(), state);
    }

    /// The destination answered (or reached us): forget its failures.
    pub fn record_success(&self, destination: &ServerName) {
        self.forget(destination);
    }

    /// Drops the destination's failures, so it is tried at once; whether
    /// it had any. For a success, and for an operator who knows it is back.
    pub fn forget(&self, destination: &ServerName) -> bool {
        if self.lock().remove(destination).is_none() {
            return false;
        }
        self.cleared.notify_waiters();
        if let Some(tree) = self.persisted.get() {
            if let Err(e) = tree.remove(destination) {
                tracing::warn!(%destination, error = %e, "cannot persist backoff");
            }
        }
        true
    }

    /// Signalled whenever a failing destination is forgotten.
    pub fn cleared(&self) -> &tokio::sync::Notify {
        &self.cleared
    }

    pub fn state(&self, destination: &ServerName) -> Option<DestinationState> {
        self.lock().get(destination).cloned()
    }

    /// Every destination with failures on record.
    pub fn failing(&self) -> Vec<(OwnedServerName, Failing)> {
        self.lock()
            .iter()
            .map(|(name, state)| (name.clone(), state.to_failing()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
