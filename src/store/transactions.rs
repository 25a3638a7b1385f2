//! Inbound transactions: answered ones, so a retried `/send` gets the same
//! answer and nothing is processed twice, and acknowledged ones not yet
//! taken in, so a crash between the answer and the end of processing
//! loses nothing.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use crate::store::tree::Tree;
use ruma::{OwnedServerName, ServerName};

use super::u64_value;
use crate::store::error::{Result, StoreError};

/// `transactions`: `origin 0xFF txn_id` → 0x00, when it was answered (ms,
/// u64 BE), the response body we sent (JSON). Kept for a day (what a
/// retry needs), then pruned; records from before the time was kept are
/// the JSON alone and pruned first.
pub(super) const TRANSACTIONS: &str = "transactions";
/// `transactions_staged`: big-endian u64 sequence → `origin 0xFF body`,
/// the request body as received. Removed once its PDUs and EDUs are
/// durably taken in; what is left at start is taken in again.
pub(super) const STAGED: &str = "transactions_staged";

#[derive(Clone)]
pub struct TransactionTree {
    tree: Tree,
    staged: Tree,
    /// The next staged sequence number.
    next: Arc<AtomicU64>,
}

/// A transaction acknowledged but not yet taken in.
pub struct Staged {
    pub seq: u64,
    pub origin: OwnedServerName,
    pub body: Vec<u8>,
}

fn key(origin: &ServerName, txn_id: &str) -> Vec<u8> {
    super::key::join(&[origin.as_bytes(), txn_id.as_bytes()])
}

impl TransactionTree {
    pub(super) fn new(tree: Tree, staged: Tree) -> Result<Self> {
        let next = match staged.last()? {
            Some((key, _)) => u64_value(STAGED, &key)? + 1,
            None => 0,
        };
        Ok(Self {
            tree,
            staged,
            next: Arc::new(AtomicU64::new(next)),
        })
    }

    pub fn response(&self, origin: &ServerName, txn_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree
            .get(key(origin, txn_id))?
            .map(|v| answer_of(&v).1.to_vec()))
    }

    /// Records the answer; the caller flushes before replying.
    pub fn record(&self, origin: &ServerName, txn_id: &str, response: &[u8]) -> Result<()> {
        let mut value = Vec::with_capacity(9 + response.len());
        value.push(0);
        value.extend_from_slice(&crate::time::now_ms().to_be_bytes());
        value.extend_from_slice(response);
        self.tree.insert(key(origin, txn_id), value)?;
        Ok(())
    }

    /// Forgets answers given before `cutoff_ms`; how many.
    pub fn prune(&self, cutoff_ms: u64) -> Result<usize> {
        let mut pruned = 0;
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            if answer_of(&value).0 < cutoff_ms {
                self.tree.remove(key)?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    /// Keeps a transaction until [`Self::unstage`]; the caller flushes
    /// before replying. Each is numbered after every one still staged.
    pub fn stage(&self, origin: &ServerName, body: &[u8]) -> Result<u64> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let value = super::key::join(&[origin.as_bytes(), body]);
        self.staged.insert(seq.to_be_bytes(), value)?;
        Ok(seq)
    }

    pub fn unstage(&self, seq: u64) -> Result<()> {
        self.staged.remove(seq.to_be_bytes())?;
        Ok(())
    }

    /// Every staged transaction, oldest first.
    pub fn staged(&self) -> Result<Vec<Staged>> {
        self.staged
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let seq = u64_value(STAGED, &key)?;
                let corrupt = || StoreError::data(format!("corrupt record in tree {STAGED}"));
                let (origin, body) = super::key::split(&value).ok_or_else(corrupt)?;
                let origin = std::str::from_utf8(origin)
                    .ok()
                    .and_then(|o| OwnedServerName::try_from(o).ok())
                    .ok_or_else(corrupt)?;
                Ok(Staged {
                    seq,
                    origin,
                    body: body.to_vec(),
                })
            })
            .collect()
    }

    /// How many are staged, without reading them.
    pub fn staged_count(&self) -> usize {
        self.staged.len()
    }

    /// Makes what is recorded and staged durable.
    pub async fn flush(&self) -> Result<()> {
        self.staged.flush_async().await?;
        Ok(())
    }
}

/// (when it was answered, the answer) of a stored record; 0 for a
/// record from before the time was kept.
fn answer_of(value: &[u8]) -> (u64, &[u8]) {
    match value.split_first() {
        Some((0, rest)) if rest.len() >= 8 => {
            let (ts, answer) = rest.split_at(8);
            (
                u64::from_be_bytes(ts.try_into().unwrap_or_default()),
                answer,
            )
        }
        _ => (0, value),
    }
}

#[cfg(test)]
mod tests;
