//! The sender: each application service gets its queue in order, as
//! transactions of at most 100 events and 100 ephemeral events. A
//! transaction is recorded (its ID and entries) before it is first sent,
//! and its entries leave the queue only once the application service
//! answered 200, so a retry, even after `kill -9`, sends the same entries
//! under the same ID. A failing application service is retried after 1 s,
//! doubling to 30 s at most (bridges run beside the server, and a
//! restarted bridge should not wait long); a request from it (a bridge
//! pings or checks its bot on start) shows it is back: it is served
//! within a second.
//! Spec: application-service-api.md "Pushing events".

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use bytes::Bytes;
use http::Method;
use ruma::OwnedUserId;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{AppserviceService, Health};
use crate::{
    config::appservices::Appservice,
    store::{
        appservices::InFlight,
        outbound::{seq_of, Queued},
    },
    time::now_ms,
};

const MAX_EVENTS: usize = 100;
const MAX_EPHEMERAL: usize = 100;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// `PUT /_matrix/app/v1/transactions/{txnId}`'s body. Ephemeral events go
/// under both names: the stable one (spec v1.13) and MSC2409's, which
/// older bridges read. What encrypted bridges need goes under the unstable
/// names Synapse sends and bridges read: to-device messages (MSC4203, under
/// MSC2409's prefix), device lists and key counts (MSC3202; the counts
/// under both of Synapse's spellings).
#[derive(Serialize)]
struct Transaction<'a> {
    events: &'a [Value],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    ephemeral: &'a [Value],
    #[serde(
        rename = "de.sorunome.msc2409.ephemeral",
        skip_serializing_if = "<[_]>::is_empty"
    )]
    ephemeral_msc2409: &'a [Value],
    #[serde(
        rename = "de.sorunome.msc2409.to_device",
        skip_serializing_if = "<[_]>::is_empty"
    )]
    to_device: &'a [Value],
    #[serde(
        rename = "org.matrix.msc3202.device_lists",
        skip_serializing_if = "Option::is_none"
    )]
    device_lists: Option<DeviceLists<'a>>,
    #[serde(
        rename = "org.matrix.msc3202.device_one_time_keys_count",
        skip_serializing_if = "Map::is_empty"
    )]
    key_counts: &'a Map<String, Value>,
    #[serde(
        rename = "org.matrix.msc3202.device_one_time_key_counts",
        skip_serializing_if = "Map::is_empty"
    )]
    key_counts_synapse: &'a Map<String, Value>,
    #[serde(
        rename = "org.matrix.msc3202.device_unused_fallback_key_types",
        skip_serializing_if = "Map::is_empty"
    )]
    fallback_key_types: &'a Map<String, Value>,
}

/// Users whose devices changed. Who stopped sharing a room with the
/// bridge's users (`left`) is not tracked: the list stays empty.
#[derive(Serialize)]
struct DeviceLists<'a> {
    changed: &'a BTreeSet<OwnedUserId>,
    left: [(); 0],
}

/// `{user: {device: value}}`.
type PerDevice = Map<String, Value>;

/// What one transaction carries, read from its queue entries.
#[derive(Default)]
struct Contents {
    events: Vec<Value>,
    ephemeral: Vec<Value>,
    to_device: Vec<Value>,
    changed: BTreeSet<OwnedUserId>,
    /// Devices whose one-time key counts go with it.
    devices: BTreeSet<(OwnedUserId, String)>,
}

impl AppserviceService {
    /// Delivers every application service's queue until the server stops.
    pub async fn run(self: Arc<Self>) {
        let senders = self.registered.all().iter().filter(|a| a.url.is_some());
        futures_util::future::join_all(senders.map(|a| self.serve(a.clone()))).await;
        // Without any (senders never return), this task still must not end
        // the server.
        std::future::pending::<()>().await;
    }

    /// One application service's sender, woken when something is queued
    /// for it.
    async fn serve(&self, appservice: Arc<Appservice>) {
        let Some(wake) = self.rooms.appservice_ready(&appservice.id) else {
            return;
        };
        let seen = self
            .accounts
            .appservice_seen(&appservice.id)
            .unwrap_or_default();
        loop {
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let retry_at = loop {
                match self.send_next(&appservice).await {
                    Ok(true) => continue,
                    Ok(false) => break None,
                    Err(error) => break Some(self.failed(&appservice, error)),
                }
            };
            match retry_at {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = woken => {}
                        // At most one early retry a second, however
                        // often a failing bridge calls.
                        _ = async {
                            seen.notified().await;
                            tokio::time::sleep(FIRST_RETRY).await;
                        } => {}
                    }
                }
                None => woken.await,
            }
        }
    }

    /// Sends the transaction under way, or the next one: whether one was
    /// sent (there may be more).
    async fn send_next(&self, appservice: &Appservice) -> Result<bool, String> {
        let id = &appservice.id;
        let txn = match self.txns.get(id).map_err(|e| e.to_string())? {
            Some(txn) => txn,
            None => {
                // Queue entries are written behind their events' append,
                // and only what is durable goes out (as to other servers).
                self.rooms.flush().await.map_err(|e| e.message)?;
                let batch = self
                    .queue
                    .appservice_batch(id, MAX_EVENTS, MAX_EPHEMERAL)
                    .map_err(|e| e.to_string())?;
                let Some(first) = batch.first() else {
                    return Ok(false);
                };
                // A queue entry is in one transaction only, so the first
                // one's sequence number is an ID never used before.
                let txn = InFlight {
                    txn_id: seq_of(&first.key),
                    keys: batch.into_iter().map(|e| e.key).collect(),
                };
                self.txns.put(id, &txn).await.map_err(|e| e.to_string())?;
                txn
            }
        };
        let contents = self.contents(&txn)?;
        let (key_counts, fallback_key_types) = self.key_counts(&contents.devices)?;
        let body = serde_json::to_vec(&Transaction {
            events: &contents.events,
            ephemeral: &contents.ephemeral,
            ephemeral_msc2409: &contents.ephemeral,
            to_device: &contents.to_device,
            device_lists: (!contents.changed.is_empty()).then_some(DeviceLists {
                changed: &contents.changed,
                left: [],
            }),
            key_counts: &key_counts,
            key_counts_synapse: &key_counts,
            fallback_key_types: &fallback_key_types,
        })
        .map_err(|e| e.to_string())?;
        let count = txn.keys.len() as u64;
        let path = format!("/_matrix/app/v1/transactions/{}", txn.txn_id);
        let (status, answer) = self
            .call(appservice, Method::PUT, &path, Some(Bytes::from(body)))
            .await?;
        if !status.is_success() {
            return Err(format!(
                "answered {status}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            ));
        }
        self.txns.done(id, &self.queue).map_err(|e| e.to_string())?;
        self.succeeded(id, count);
        Ok(true)
    }

    /// The transaction's events (as clients see them), ephemeral events,
    /// to-device messages, device list changes and devices to count keys of.
    fn contents(&self, txn: &InFlight) -> Result<Contents, String> {
        let mut found = Contents::default();
        for entry in self.queue.entries(&txn.keys).map_err(|e| e.to_string())? {
            match entry.item {
                Queued::Pdu { event_id } => match self.rooms.event_object(&event_id) {
                    Ok(pdu) => found.events.push(crate::rooms::client_event::client_event(
                        &event_id, &pdu, true,
                    )),
                    Err(e) => {
                        tracing::warn!(%event_id, error = %e.message, "queued event unreadable")
                    }
                },
                Queued::Edu { edu, expires_ms } => {
                    if expires_ms.is_none_or(|at| at > now_ms()) {
                        found.ephemeral.push(edu);
                    }
                }
                Queued::ToDevice { message } => {
                    // The recipient's key counts go with it, as with /sync.
                    let to = (&message["to_user_id"], &message["to_device_id"]);
                    if let (Some(user), Some(device)) = (to.0.as_str(), to.1.as_str()) {
                        if let Ok(user) = OwnedUserId::try_from(user) {
                            found.devices.insert((user, device.to_owned()));
                        }
                    }
                    found.to_device.push(message);
                }
                Queued::DeviceList { user_id } => {
                    found.changed.insert(user_id);
                }
                Queued::KeyCount { user_id, device_id } => {
                    found.devices.insert((user_id, device_id));
                }
            }
        }
        Ok(found)
    }

    /// `{user: {device: {algorithm: count}}}` and `{user: {device:
    /// [algorithm]}}` (unused fallback keys) for `devices`. A count of
    /// signed_curve25519 is always given, 0 included, so a bridge whose
    /// keys ran out knows to upload more.
    fn key_counts(
        &self,
        devices: &BTreeSet<(OwnedUserId, String)>,
    ) -> Result<(PerDevice, PerDevice), String> {
        let (mut counts, mut fallback) = (Map::new(), Map::new());
        for (user, device) in devices {
            let mut count = self
                .keys
                .one_time_key_counts(user, device)
                .map_err(|e| e.to_string())?;
            count
                .entry("signed_curve25519")
                .or_insert(Value::from(0u64));
            let unused = self
                .keys
                .fallback_algorithms(user, device)
                .map_err(|e| e.to_string())?;
            insert_device(&mut counts, user, device, Value::Object(count));
            insert_device(&mut fallback, user, device, serde_json::json!(unused));
        }
        Ok((counts, fallback))
    }

    fn succeeded(&self, id: &str, count: u64) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let h = health.entry(id.into()).or_default();
        *h = Health {
            last_success_ms: Some(now_ms()),
            transactions_sent: h.transactions_sent + 1,
            events_sent: h.events_sent + count,
            ..Health::default()
        };
    }

    /// Notes a failure; when to try again.
    fn failed(&self, appservice: &Appservice, error: String) -> std::time::Instant {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let h = health.entry(appservice.id.clone()).or_default();
        h.failures += 1;
        h.failing_since_ms.get_or_insert_with(now_ms);
        let wait = FIRST_RETRY
            .saturating_mul(1 << h.failures.saturating_sub(1).min(16))
            .min(MAX_RETRY);
        if h.failures == 1 || h.last_error.as_deref() != Some(error.as_str()) {
            tracing::warn!(appservice = %appservice.id, %error, retry_in = ?wait, "application service transaction failed");
        }
        h.last_error = Some(error);
        std::time::Instant::now() + wait
    }
}

/// Sets `map[user][device]`.
fn insert_device(map: &mut Map<String, Value>, user: &OwnedUserId, device: &str, value: Value) {
    let per_user = map
        .entry(user.as_str())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(devices) = per_user {
        devices.insert(device.to_owned(), value);
    }
}
