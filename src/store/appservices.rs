//! `appservice_txns`: appservice ID → the transaction being sent to it:
//! its ID (u64 BE), then each queued entry's key in `outbound` (u16 BE
//! length, key). Written before the first attempt, removed with the
//! entries once the application service answered 200: a retry, even
//! after a restart, sends the same entries under the same ID, which the
//! application service uses to drop a transaction it already handled.

use super::{error::Result, tree::Tree};
use crate::store::error::StoreError;

pub(super) const APPSERVICE_TXNS: &str = "appservice_txns";

/// A transaction being sent: its ID and the queue entries it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlight {
    pub txn_id: u64,
    pub keys: Vec<Vec<u8>>,
}

impl InFlight {
    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.txn_id.to_be_bytes().to_vec();
        for key in &self.keys {
            // Queue keys are an ID and a number: far below 64 KiB.
            let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&key[..usize::from(len)]);
        }
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = || StoreError::data(format!("corrupt record in tree {APPSERVICE_TXNS}"));
        let (id, mut rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let mut keys = Vec::new();
        while let Some((len, after)) = rest.split_first_chunk::<2>() {
            let len = usize::from(u16::from_be_bytes(*len));
            if after.len() < len {
                return Err(corrupt());
            }
            keys.push(after[..len].to_vec());
            rest = &after[len..];
        }
        if !rest.is_empty() {
            return Err(corrupt());
        }
        Ok(Self {
            txn_id: u64::from_be_bytes(*id),
            keys,
        })
    }
}

#[derive(Clone)]
pub struct AppserviceTxnTree {
    tree: Tree,
}

impl AppserviceTxnTree {
    pub(super) fn open(db: &super::tree::Database) -> sled::Result<Self> {
        Ok(Self {
            tree: db.open_tree(APPSERVICE_TXNS)?,
        })
    }

    /// The transaction being sent to `appservice`, if any.
    pub fn get(&self, appservice: &str) -> Result<Option<InFlight>> {
        self.tree
            .get(appservice)?
            .map(|v| InFlight::from_bytes(&v))
            .transpose()
    }

    /// Records the transaction before it is first sent, durably.
    pub async fn put(&self, appservice: &str, txn: &InFlight) -> Result<()> {
        self.tree.insert(appservice, txn.to_bytes())?;
        self.tree.flush_async().await?;
        Ok(())
    }

    /// The transaction was taken: forgets it and drops its entries from
    /// `outbound`, in one transaction.
    pub fn done(&self, appservice: &str, outbound: &super::outbound::OutboundTree) -> Result<()> {
        use sled::Transactional;
        let Some(txn) = self.get(appservice)? else {
            return Ok(());
        };
        let _pass = self.tree.pass()?;
        (self.tree.sled(), outbound.tree().sled())
            .transaction(|(txns, queue)| {
                txns.remove(appservice.as_bytes())?;
                for key in &txn.keys {
                    queue.remove(key.as_slice())?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Abort(e) => e,
                sled::transaction::TransactionError::Storage(e) => e.into(),
            })?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "appservices_tests.rs"]
mod tests;
