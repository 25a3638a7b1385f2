//! Inbound transactions already answered, so a retried `/send` gets the
//! same answer and nothing is processed twice.

use ruma::ServerName;
use sled::Tree;

use crate::error::Result;

/// `transactions`: `origin 0xFF txn_id` → the response body we sent (JSON).
pub(super) const TRANSACTIONS: &str = "transactions";

#[derive(Clone)]
pub struct TransactionTree {
    tree: Tree,
}

fn key(origin: &ServerName, txn_id: &str) -> Vec<u8> {
    let mut key = origin.as_str().as_bytes().to_vec();
    key.push(0xFF);
    key.extend_from_slice(txn_id.as_bytes());
    key
}

impl TransactionTree {
    pub(super) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    pub fn response(&self, origin: &ServerName, txn_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.get(key(origin, txn_id))?.map(|v| v.to_vec()))
    }

    /// Records the answer; the caller flushes before replying.
    pub fn record(&self, origin: &ServerName, txn_id: &str, response: &[u8]) -> Result<()> {
        self.tree.insert(key(origin, txn_id), response)?;
        Ok(())
    }
}
