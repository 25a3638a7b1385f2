//! How many of one server's requests are handled at once. Authenticated
//! federation requests are admitted here per origin: `running` of them are
//! handled at a time, `waiting` more wait their turn, and the rest get 429
//! `M_LIMIT_EXCEEDED`. A busy or hostile server then gets a bounded share
//! of the cores and memory, and other servers are not held up behind it.
//! Synapse's `rc_federation` does the same (3 concurrent, 50 queued).
//!
//! `/send` is not admitted here: the receiver bounds an origin's
//! transactions itself, more tightly, and a transaction waiting for its
//! predecessor must not take the slot the origin's other requests need.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use ruma::{OwnedServerName, ServerName};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::stats::InboundStats;
use crate::error::{Error, Result};

/// What a refused request is told to wait before trying again.
const RETRY_AFTER_MS: u64 = 500;

pub struct Admission {
    running: usize,
    waiting: usize,
    origins: Mutex<HashMap<OwnedServerName, Origin>>,
    stats: Arc<InboundStats>,
}

/// One origin's requests in progress; gone when it has none.
struct Origin {
    slots: Arc<Semaphore>,
    waiting: usize,
}

/// A request's slot among its origin's running ones, given back on drop.
pub struct Admitted {
    permit: Option<OwnedSemaphorePermit>,
    place: Place,
}

/// Counts a request as its origin's while it waits or runs, and forgets
/// an origin left with none.
struct Place {
    admission: Arc<Admission>,
    origin: OwnedServerName,
    waiting: bool,
}

impl Admission {
    pub fn new(running: usize, waiting: usize, stats: Arc<InboundStats>) -> Arc<Self> {
        Arc::new(Self {
            running,
            waiting,
            origins: Mutex::new(HashMap::new()),
            stats,
        })
    }

    /// Waits for one of `origin`'s slots, or refuses when too many of its
    /// requests wait already.
    pub async fn admit(self: &Arc<Self>, origin: &ServerName) -> Result<Admitted> {
        let (slots, mut place) = {
            let mut origins = self.origins();
            let entry = origins.entry(origin.to_owned()).or_insert_with(|| Origin {
                slots: Arc::new(Semaphore::new(self.running)),
                waiting: 0,
            });
            if let Ok(permit) = entry.slots.clone().try_acquire_owned() {
                drop(origins);
                return Ok(Admitted::new(permit, self.place(origin)));
            }
            if entry.waiting >= self.waiting {
                drop(origins);
                self.stats.limited();
                tracing::debug!(%origin, "refused: too many requests from this server");
                return Err(limit_exceeded(origin));
            }
            entry.waiting += 1;
            self.stats.waiting(true);
            let mut place = self.place(origin);
            place.waiting = true;
            (entry.slots.clone(), place)
        };
        let permit = slots
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("request slots closed"))?;
        place.stop_waiting();
        Ok(Admitted::new(permit, place))
    }

    fn place(self: &Arc<Self>, origin: &ServerName) -> Place {
        Place {
            admission: self.clone(),
            origin: origin.to_owned(),
            waiting: false,
        }
    }

    /// Origins with requests waiting or running.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.origins().len()
    }

    fn origins(&self) -> MutexGuard<'_, HashMap<OwnedServerName, Origin>> {
        self.origins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Admitted {
    fn new(permit: OwnedSemaphorePermit, place: Place) -> Self {
        place.admission.stats.running(true);
        Self {
            permit: Some(permit),
            place,
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.place.admission.stats.running(false);
        // The slot first, so that `Place` sees it free.
        self.permit.take();
    }
}

impl Place {
    fn stop_waiting(&mut self) {
        if let Some(entry) = self.admission.origins().get_mut(&self.origin) {
            entry.waiting -= 1;
        }
        self.admission.stats.waiting(false);
        self.waiting = false;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.waiting {
            self.stop_waiting();
        }
        let mut origins = self.admission.origins();
        let idle = origins.get(&self.origin).is_some_and(|entry| {
            entry.waiting == 0 && entry.slots.available_permits() == self.admission.running
        });
        if idle {
            origins.remove(&self.origin);
        }
    }
}

fn limit_exceeded(origin: &ServerName) -> Error {
    Error::limit_exceeded(
        format!("too many requests from {origin} at once"),
        RETRY_AFTER_MS,
    )
}

#[cfg(test)]
mod tests;
