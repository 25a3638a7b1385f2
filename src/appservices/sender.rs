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

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::Method;
use serde::Serialize;
use serde_json::Value;

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
/// older bridges read.
#[derive(Serialize)]
struct Transaction<'a> {
    events: Vec<Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    ephemeral: &'a [Value],
    #[serde(
        rename = "de.sorunome.msc2409.ephemeral",
        skip_serializing_if = "<[_]>::is_empty"
    )]
    ephemeral_msc2409: &'a [Value],
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
        let (events, ephemeral) = self.contents(&txn)?;
        let body = serde_json::to_vec(&Transaction {
            events,
            ephemeral: &ephemeral,
            ephemeral_msc2409: &ephemeral,
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

    /// The transaction's events (as clients see them) and ephemeral events.
    fn contents(&self, txn: &InFlight) -> Result<(Vec<Value>, Vec<Value>), String> {
        let (mut events, mut ephemeral) = (Vec::new(), Vec::new());
        for entry in self.queue.entries(&txn.keys).map_err(|e| e.to_string())? {
            match entry.item {
                Queued::Pdu { event_id } => match self.rooms.event_object(&event_id) {
                    Ok(pdu) => events.push(crate::rooms::client_event::client_event(
                        &event_id, &pdu, true,
                    )),
                    Err(e) => {
                        tracing::warn!(%event_id, error = %e.message, "queued event unreadable")
                    }
                },
                Queued::Edu { edu, expires_ms } => {
                    if expires_ms.is_none_or(|at| at > now_ms()) {
                        ephemeral.push(edu);
                    }
                }
            }
        }
        Ok((events, ephemeral))
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
