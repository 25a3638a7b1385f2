//! What users reported to the admin: events, rooms and users they found
//! inappropriate, kept until the admin dismisses them.

use serde::{Deserialize, Serialize};

use super::{counter::Counter, decode, encode, tree::Tree, u64_value};
use crate::store::error::Result;

/// `reports`: report ID (u64 BE, from the store's counter) → JSON [`Report`].
pub(super) const REPORTS: &str = "reports";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub reporter: String,
    /// What was reported: a room, an event in it, or a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub reason: String,
    pub received_ms: u64,
}

#[derive(Clone)]
pub struct ReportTree {
    tree: Tree,
    ids: Counter,
}

impl ReportTree {
    pub(super) fn open(db: &super::tree::Database, ids: &Counter) -> Result<Self> {
        Ok(Self {
            tree: db.open_tree(REPORTS)?,
            ids: ids.clone(),
        })
    }

    /// Stores a report durably; its ID.
    pub async fn add(&self, report: &Report) -> Result<u64> {
        let id = self.ids.next()?;
        self.tree.insert(id.to_be_bytes(), encode(report)?)?;
        self.tree.flush_async().await?;
        Ok(id)
    }

    /// Reports held.
    pub fn count(&self) -> usize {
        self.tree.len()
    }

    /// Every report, oldest first.
    pub fn all(&self) -> Result<Vec<(u64, Report)>> {
        self.tree
            .iter()
            .map(|entry| {
                let (id, value) = entry?;
                Ok((u64_value(REPORTS, &id)?, decode(REPORTS, &value)?))
            })
            .collect()
    }

    /// Dismisses a report; false when there was none.
    pub fn remove(&self, id: u64) -> Result<bool> {
        let removed = self.tree.remove(id.to_be_bytes())?.is_some();
        self.tree.flush()?;
        Ok(removed)
    }
}
