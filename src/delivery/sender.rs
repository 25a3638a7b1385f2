//! The outbound sender: drains each destination's durable queue in order,
//! up to 50 PDUs and 100 EDUs per transaction, removing entries only once
//! the destination answered 200. One task per destination with work; a
//! destination that is down waits out its backoff without holding up the
//! others, and is retried as soon as it contacts us. After a long outage
//! only the newest event of each room is sent (the destination pulls the
//! gap with get_missing_events), as Synapse's catch-up does.
//! Spec: server-server-api.md "Transactions"; transactions.yaml.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ruma::{CanonicalJsonValue, OwnedServerName, ServerName};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};

use super::status::{self, DestinationStatus};
use crate::{
    error::Error,
    http_util::{json_string, splice_array, splice_object},
    net::https::HttpsClient,
    peers::Peers,
    rooms::{event::origin_ts, RoomService},
    store::outbound::{Entry, OutboundTree, Queued},
    time::now_ms,
};

const MAX_PDUS: usize = 50;
const MAX_EDUS: usize = 100;
/// Transactions in flight at once, across destinations.
const MAX_IN_FLIGHT: usize = 32;
/// How often a backing-off destination checks whether it came back.
const BACKOFF_POLL: Duration = Duration::from_secs(2);
/// A rescan of the queue even when nothing woke us (entries queued by a
/// previous run, destinations whose backoff ended).
const RESCAN: Duration = Duration::from_secs(30);

pub struct Sender {
    queue: OutboundTree,
    rooms: Arc<RoomService>,
    peers: Arc<Peers>,
    client: Arc<HttpsClient>,
    ready: Arc<Notify>,
    active: Mutex<HashSet<OwnedServerName>>,
    slots: Semaphore,
    /// When each destination last took a transaction (Unix ms).
    last_success: Mutex<HashMap<OwnedServerName, u64>>,
    /// Undelivered events older than this are collapsed to the newest per room.
    catch_up_after: Duration,
}

impl Sender {
    pub fn new(
        queue: OutboundTree,
        rooms: Arc<RoomService>,
        peers: Arc<Peers>,
        client: Arc<HttpsClient>,
        ready: Arc<Notify>,
        catch_up_after: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            queue,
            rooms,
            peers,
            client,
            ready,
            active: Mutex::new(HashSet::new()),
            slots: Semaphore::new(MAX_IN_FLIGHT),
            last_success: Mutex::new(HashMap::new()),
            catch_up_after,
        })
    }

    /// Each destination's queue, last success and failures.
    pub fn status(&self) -> crate::error::Result<Vec<DestinationStatus>> {
        let last_success = self
            .last_success
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        status::collect(
            &self.queue,
            self.client.backoff().failing(),
            &last_success,
            |id| {
                self.rooms
                    .event(None, id)
                    .ok()
                    .and_then(|(_, json)| origin_ts(&json))
            },
        )
    }

    /// Runs forever: starts a drain for every destination with queued
    /// entries, whenever something is queued and every [`RESCAN`].
    pub async fn run(self: Arc<Self>) {
        loop {
            match self.queue.destinations() {
                Ok(destinations) => {
                    for destination in destinations {
                        self.clone().start(destination);
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read the outbound queue"),
            }
            let _ = tokio::time::timeout(RESCAN, self.ready.notified()).await;
        }
    }

    fn start(self: Arc<Self>, destination: OwnedServerName) {
        if !self
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(destination.clone())
        {
            return;
        }
        tokio::spawn(async move {
            self.drain(&destination).await;
            self.active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&destination);
            // Entries queued while we were finishing are picked up again.
            if self.queue.depth(&destination) > 0 {
                self.ready.notify_one();
            }
        });
    }

    /// Sends transactions to `destination` until its queue is empty.
    async fn drain(&self, destination: &ServerName) {
        loop {
            self.wait_out_backoff(destination).await;
            if let Err(e) = self.catch_up(destination) {
                tracing::error!(%destination, error = %e, "cannot collapse the outbound queue");
            }
            let batch = match self.queue.batch(
                destination,
                MAX_PDUS,
                MAX_EDUS,
                super::coalesce::replaced_by,
            ) {
                Ok(batch) if batch.is_empty() => return,
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(%destination, error = %e, "cannot read the outbound queue");
                    return;
                }
            };
            let outcome = {
                let _slot = self.slots.acquire().await;
                self.send(destination, &batch).await
            };
            match outcome {
                Ok(()) | Err(Outcome::Refused(_)) => {
                    if outcome.is_ok() {
                        self.last_success
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(destination.to_owned(), now_ms());
                    }
                    if let Err(Outcome::Refused(e)) = &outcome {
                        tracing::warn!(%destination, error = %e, "transaction refused; dropped");
                    }
                    let keys: Vec<Vec<u8>> = batch.into_iter().map(|e| e.key).collect();
                    if let Err(e) = self.queue.remove(&keys) {
                        tracing::error!(%destination, error = %e, "cannot dequeue");
                        return;
                    }
                }
                Err(Outcome::Retry(e)) => {
                    tracing::info!(%destination, error = %e, "transaction failed; will retry");
                    if self.client.backoff().check(destination).is_ok() {
                        // Not a connection failure (e.g. a 5xx): still back off.
                        self.client
                            .backoff()
                            .record_failure(destination, &e.message);
                    }
                }
            }
        }
    }

    /// When the oldest queued PDU is older than `catch_up_after`, drops
    /// every queued PDU but the newest of each room; EDUs stay.
    fn catch_up(&self, destination: &ServerName) -> crate::error::Result<()> {
        let Some(oldest) = self.queue.first_pdu(destination)? else {
            return Ok(());
        };
        let (_, ts) = self.rooms.room_and_ts_of(&oldest)?;
        let cutoff = now_ms().saturating_sub(self.catch_up_after.as_millis() as u64);
        if ts >= cutoff {
            return Ok(());
        }
        let pdus = self.queue.pdus(destination)?;
        let mut newest: HashMap<ruma::OwnedRoomId, usize> = HashMap::new();
        let mut keep = HashSet::new();
        for (i, (_, id)) in pdus.iter().enumerate() {
            match self.rooms.room_and_ts_of(id) {
                Ok((room, _)) => {
                    newest.insert(room, i);
                }
                // Left to `send`, which reports it.
                Err(_) => {
                    keep.insert(i);
                }
            }
        }
        keep.extend(newest.into_values());
        let stale: Vec<Vec<u8>> = pdus
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !keep.contains(i))
            .map(|(_, (key, _))| key)
            .collect();
        tracing::info!(%destination, dropped = stale.len(), rooms = keep.len(),
            "catching up after an outage: sending the newest event of each room");
        Ok(self.queue.remove(&stale)?)
    }

    /// Sleeps until the destination's retry time, waking early when it
    /// contacts us (which clears its backoff).
    async fn wait_out_backoff(&self, destination: &ServerName) {
        let backoff = self.client.backoff();
        loop {
            // Registered before the check, so a clearing in between wakes us.
            let cleared = backoff.cleared().notified();
            tokio::pin!(cleared);
            cleared.as_mut().enable();
            let Err(state) = backoff.check(destination) else {
                return;
            };
            let left = state.retry_at.saturating_duration_since(Instant::now());
            tokio::select! {
                _ = tokio::time::sleep(left.min(BACKOFF_POLL)) => {}
                _ = cleared => {}
            }
        }
    }

    async fn send(&self, destination: &ServerName, batch: &[Entry]) -> Result<(), Outcome> {
        let mut pdus = Vec::new();
        let mut edus: Vec<Value> = Vec::new();
        for entry in batch {
            match &entry.item {
                Queued::Pdu { event_id } => match self.rooms.event_canonical(event_id) {
                    Ok(json) => pdus.push(json),
                    Err(e) => tracing::error!(%event_id, error = %e, "queued event unreadable"),
                },
                Queued::Edu { edu, expires_ms } if expires_ms.is_none_or(|at| at > now_ms()) => {
                    edus.push(edu.clone());
                }
                // Stale EDUs are dropped; only application services'
                // queues hold the other kinds.
                _ => {}
            }
        }
        let edus = super::coalesce::coalesce(edus);
        if pdus.is_empty() && edus.is_empty() {
            // Only stale EDUs: done without a transaction.
            return Ok(());
        }
        // Named after the entries it carries: a retry of the same batch is
        // recognised by the destination as the same transaction.
        let first = batch.first().map(|e| seq_of(&e.key)).unwrap_or_default();
        let last = batch.last().map(|e| seq_of(&e.key)).unwrap_or_default();
        let txn_id = format!("{first}-{last}");
        let body = transaction_body(self.peers.server_name(), now_ms(), &pdus, edus);
        match self
            .peers
            .send_transaction(destination, &txn_id, body)
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.status.is_client_error()
                    && e.status != http::StatusCode::TOO_MANY_REQUESTS =>
            {
                Err(Outcome::Refused(e))
            }
            Err(e) => Err(Outcome::Retry(e)),
        }
    }
}

enum Outcome {
    /// The destination will never take this transaction (4xx).
    Refused(Error),
    /// Unreachable, timed out or failing: try again later.
    Retry(Error),
}

/// A transaction's canonical JSON, spliced together: its keys in
/// canonical order, the PDUs as stored (canonical JSON already), the EDUs
/// made canonical. An EDU that cannot be (a float in a to-device
/// message, say) is left out rather than holding up the queue.
fn transaction_body(origin: &ServerName, ts: u64, pdus: &[Vec<u8>], edus: Vec<Value>) -> Vec<u8> {
    let edus: Vec<CanonicalJsonValue> = edus
        .into_iter()
        .filter_map(|edu| match CanonicalJsonValue::try_from(edu) {
            Ok(edu) => Some(edu),
            Err(e) => {
                tracing::warn!(error = %e, "an EDU that is not canonical JSON is dropped");
                None
            }
        })
        .collect();
    let edus = CanonicalJsonValue::Array(edus).to_string();
    let origin = json_string(origin.as_str());
    let ts = ts.to_string();
    let pdus = splice_array(pdus);
    splice_object([
        ("edus", edus.as_bytes()),
        ("origin", origin.as_slice()),
        ("origin_server_ts", ts.as_bytes()),
        ("pdus", pdus.as_slice()),
    ])
}

fn seq_of(key: &[u8]) -> u64 {
    key.len()
        .checked_sub(8)
        .and_then(|start| <[u8; 8]>::try_from(&key[start..]).ok())
        .map_or(0, u64::from_be_bytes)
}

#[cfg(test)]
mod tests;
