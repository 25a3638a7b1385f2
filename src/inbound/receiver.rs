//! Inbound transactions as a pipeline. A transaction's PDUs are checked
//! (format, signatures, hashes, server ACL) and the transaction is staged
//! durably, then answered; its PDUs and EDUs are taken in (auth, state,
//! gaps) behind the answer, in the order each origin sent them.
//!
//! Why: the spec lets an origin have one transaction in flight, so
//! answering only after everything is stored made one origin's ingest a
//! round trip per 50 PDUs, with our cores idle during it. Now its next
//! transaction is checked while this one is taken in. Synapse answers the
//! same way (its staging area): the answer reports what was refused
//! before staging; events the auth rules reject afterwards are logged.
//! A crash after the answer loses nothing: what is staged is taken in
//! again at start.
//! Spec: server-server-api.md "Transactions"; transactions.yaml.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use futures_util::future::{FutureExt, Shared};
use ruma::{CanonicalJsonObject, OwnedEventId, OwnedServerName, ServerName};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::stats::InboundStats;
use crate::{
    edus::EduService,
    error::{Error, Result},
    http_util::parse_json,
    rooms::{
        ingest::IngestService,
        pipeline::{RoomService, Verified},
    },
    store::transactions::{Staged, TransactionTree},
};

const MAX_PDUS: usize = 50;
const MAX_EDUS: usize = 100;
/// Transactions of one origin in progress at once (an origin following
/// the spec has at most three: two staged, one being checked); beyond,
/// it is told to slow down, so one server cannot take every core.
const MAX_IN_PROGRESS: usize = 4;

#[derive(Deserialize)]
struct Transaction {
    origin: String,
    #[serde(default)]
    pdus: Vec<CanonicalJsonObject>,
    #[serde(default)]
    edus: Vec<Value>,
}

/// Resolves when a transaction, and every earlier one of its origin, has
/// been taken in (or given up).
type Done = Shared<futures_util::future::BoxFuture<'static, ()>>;

/// An origin's transactions not yet taken in.
struct Lane {
    /// The number of the last transaction to enter.
    last_number: u64,
    last: Done,
    before_last: Option<Done>,
    /// Its transactions in progress (tickets alive).
    in_progress: Arc<AtomicUsize>,
}

/// Counts a ticket among its lane's transactions in progress.
struct InProgress(Arc<AtomicUsize>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A transaction's place in its origin's lane.
struct Ticket {
    origin: OwnedServerName,
    number: u64,
    /// The origin's previous transaction: taken in before this one.
    after: Option<Done>,
    /// The one before that: this one is staged only once that one is
    /// taken in, so an origin has at most two staged at a time.
    stage_after: Option<Done>,
    /// Dropped when this one is taken in (or abandoned).
    done: oneshot::Sender<()>,
    _in_progress: InProgress,
}

pub struct Receiver {
    ingest: Arc<IngestService>,
    edus: Arc<EduService>,
    rooms: Arc<RoomService>,
    store: TransactionTree,
    stats: Arc<InboundStats>,
    lanes: Lanes,
}

impl Receiver {
    pub fn new(
        ingest: Arc<IngestService>,
        edus: Arc<EduService>,
        rooms: Arc<RoomService>,
        store: TransactionTree,
        stats: Arc<InboundStats>,
    ) -> Self {
        Self {
            ingest,
            edus,
            rooms,
            store,
            stats,
            lanes: Lanes::default(),
        }
    }

    /// Checks, stages and answers a transaction; its PDUs and EDUs are
    /// taken in after the answer. A retry of an answered transaction gets
    /// the same answer, and nothing in it is processed again.
    pub async fn receive(
        self: &Arc<Self>,
        origin: &ServerName,
        txn_id: &str,
        body: &[u8],
    ) -> Result<Value> {
        let started = Instant::now();
        if let Some(stored) = self.store.response(origin, txn_id)? {
            return serde_json::from_slice(&stored)
                .map_err(|e| Error::internal(format!("stored transaction answer: {e}")));
        }
        let transaction = parse(origin, body)?;
        let ticket = self
            .lanes
            .enter(origin, Some(MAX_IN_PROGRESS))
            .inspect_err(|_| self.stats.limited())?;
        let pdus = transaction.pdus.len();
        let verified = self.ingest.verify_all(transaction.pdus).await;
        let answer = self.answer(origin, &verified);
        if let Some(earlier) = ticket.stage_after.clone() {
            earlier.await;
        }
        let seq = self.store.stage(origin, body)?;
        self.stats.staged();
        // Taken in whatever happens to the answer: once recorded, a retry
        // would not bring the PDUs again.
        let this = self.clone();
        tokio::spawn(async move {
            this.take_in(ticket, seq, verified, transaction.edus, pdus)
                .await
        });
        self.store
            .record(origin, txn_id, answer.to_string().as_bytes())?;
        // Acknowledge only what is on disk.
        self.store.flush().await?;
        self.stats.answered(started.elapsed());
        Ok(answer)
    }

    /// Takes in again, in order, what was staged but not taken in when
    /// the server stopped. Call before serving.
    pub fn resume(self: &Arc<Self>) -> Result<()> {
        let staged = self.store.staged()?;
        if !staged.is_empty() {
            tracing::info!(
                count = staged.len(),
                "taking in transactions answered before the last stop"
            );
        }
        for Staged { seq, origin, body } in staged {
            self.stats.staged();
            // At most two per origin are staged: no limit to apply.
            let ticket = self.lanes.enter(&origin, None)?;
            let this = self.clone();
            tokio::spawn(async move {
                match parse(&origin, &body) {
                    Ok(transaction) => {
                        let pdus = transaction.pdus.len();
                        let verified = this.ingest.verify_all(transaction.pdus).await;
                        this.take_in(ticket, seq, verified, transaction.edus, pdus)
                            .await;
                    }
                    // Staged only after it parsed: the record is damaged.
                    Err(e) => {
                        tracing::error!(seq, error = %e.message, "staged transaction unreadable");
                        this.finish(ticket, seq, 0).await;
                    }
                }
            });
        }
        Ok(())
    }

    /// Refusals found so far: bad signatures or hashes, a server ACL
    /// that denies the origin. Everything else is `{}`.
    fn answer(&self, origin: &ServerName, verified: &[Verified]) -> Value {
        let pdus: BTreeMap<&OwnedEventId, Value> = verified
            .iter()
            .map(|pdu| {
                let refused = match (&pdu.checked, self.rooms.acl_allows(&pdu.room, origin)) {
                    (Err(reason), _) => Some(reason.clone()),
                    (_, Ok(false)) => Some(format!("the room's server ACL denies {origin}")),
                    (_, Err(e)) => Some(e.message),
                    _ => None,
                };
                let result = refused.map_or_else(|| json!({}), |reason| json!({ "error": reason }));
                (&pdu.event_id, result)
            })
            .collect();
        json!({ "pdus": pdus })
    }

    /// After the origin's previous transaction: the PDUs (each room in
    /// order), then the EDUs, which may name what the PDUs brought.
    async fn take_in(
        &self,
        ticket: Ticket,
        seq: u64,
        verified: Vec<Verified>,
        edus: Vec<Value>,
        pdus: usize,
    ) {
        if let Some(after) = ticket.after.clone() {
            after.await;
        }
        let origin = &ticket.origin;
        for (event, outcome) in self.ingest.take_in(origin, verified).await {
            if let Err(reason) = outcome {
                tracing::debug!(%origin, %event, %reason, "PDU not taken in");
            }
        }
        self.edus.receive(origin, edus);
        self.finish(ticket, seq, pdus).await;
    }

    /// Unstages a transaction once what it brought is durable; on a write
    /// error it stays staged, to be taken in again at start.
    async fn finish(&self, ticket: Ticket, seq: u64, pdus: usize) {
        let unstaged = async {
            self.rooms.flush().await?;
            Ok::<_, Error>(self.store.unstage(seq)?)
        };
        if let Err(e) = unstaged.await {
            tracing::error!(seq, error = %e, "transaction left staged");
        }
        self.stats.taken_in(pdus);
        self.lanes.leave(ticket);
    }
}

/// Each origin's transactions not yet taken in, in the order they came.
#[derive(Default)]
struct Lanes(Mutex<(u64, HashMap<OwnedServerName, Lane>)>);

impl Lanes {
    /// A place behind the origin's transactions not yet taken in;
    /// refused (429) when `limit` of them are in progress already.
    fn enter(&self, origin: &ServerName, limit: Option<usize>) -> Result<Ticket> {
        let mut lanes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let lane = lanes.1.get(origin);
        let in_progress = lane.map_or_else(Arc::default, |lane| lane.in_progress.clone());
        if limit.is_some_and(|limit| in_progress.load(Ordering::Relaxed) >= limit) {
            return Err(Error::limit_exceeded(
                format!("too many transactions from {origin} in progress"),
                1000,
            ));
        }
        in_progress.fetch_add(1, Ordering::Relaxed);
        let after = lane.map(|lane| lane.last.clone());
        let stage_after = lane.and_then(|lane| lane.before_last.clone());
        lanes.0 += 1;
        let number = lanes.0;
        let (done, finished) = oneshot::channel::<()>();
        // Finished once this one is and every one before it is too, so a
        // transaction abandoned before staging (its request dropped) does
        // not let the next one overtake those still being taken in.
        let previous = after.clone();
        let finished: Done = async move {
            let _ = finished.await;
            if let Some(previous) = previous {
                previous.await;
            }
        }
        .boxed()
        .shared();
        let before_last = after.clone();
        lanes.1.insert(
            origin.to_owned(),
            Lane {
                last_number: number,
                last: finished,
                before_last,
                in_progress: in_progress.clone(),
            },
        );
        Ok(Ticket {
            origin: origin.to_owned(),
            number,
            after,
            stage_after,
            done,
            _in_progress: InProgress(in_progress),
        })
    }

    /// The ticket's transaction is taken in; its lane is forgotten if it
    /// was the last to enter.
    fn leave(&self, ticket: Ticket) {
        let Ticket {
            origin,
            number,
            done,
            ..
        } = ticket;
        let mut lanes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lanes
            .1
            .get(&origin)
            .is_some_and(|lane| lane.last_number == number)
        {
            lanes.1.remove(&origin);
        }
        drop(done);
    }
}

/// A transaction body, checked against its signer and the size limits.
fn parse(origin: &ServerName, body: &[u8]) -> Result<Transaction> {
    let transaction: Transaction = parse_json(body)?;
    if transaction.origin != origin.as_str() {
        return Err(Error::forbidden(format!(
            "the transaction's origin {} is not the server that signed it ({origin})",
            transaction.origin
        )));
    }
    if transaction.pdus.len() > MAX_PDUS || transaction.edus.len() > MAX_EDUS {
        return Err(Error::bad_json(format!(
            "a transaction holds at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs"
        )));
    }
    Ok(transaction)
}

#[cfg(test)]
mod tests;
