//! The retry schedule of destinations that are failing, so a restart
//! neither forgets a dead server's backoff nor hammers it.

use crate::store::tree::Tree;
use ruma::{OwnedServerName, ServerName};
use serde::{Deserialize, Serialize};

use super::{decode, encode};
use crate::store::error::{Result, StoreError};

/// `destinations`: server name → JSON [`Failing`]; healthy servers have no entry.
pub(super) const DESTINATIONS: &str = "destinations";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failing {
    pub consecutive_failures: u32,
    pub last_error: String,
    /// Unix milliseconds.
    pub last_failure_ms: u64,
    pub retry_at_ms: u64,
}

#[derive(Clone)]
pub struct DestinationTree {
    tree: Tree,
}

impl DestinationTree {
    pub(super) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    pub fn put(&self, destination: &ServerName, failing: &Failing) -> Result<()> {
        self.tree
            .insert(destination.as_str().as_bytes(), encode(failing)?)?;
        Ok(())
    }

    pub fn remove(&self, destination: &ServerName) -> Result<()> {
        self.tree.remove(destination.as_str().as_bytes())?;
        Ok(())
    }

    pub fn all(&self) -> Result<Vec<(OwnedServerName, Failing)>> {
        self.tree
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let name = std::str::from_utf8(&key)
                    .ok()
                    .and_then(|s| OwnedServerName::try_from(s).ok())
                    .ok_or_else(|| StoreError::data("corrupt destination key"))?;
                Ok((name, decode(DESTINATIONS, &value)?))
            })
            .collect()
    }
}
