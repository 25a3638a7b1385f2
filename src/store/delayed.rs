//! `delayed_events`: delay ID → JSON [`Delayed`]: events a user asked to
//! be sent later (MSC4140), kept until sent or cancelled so that a
//! restart loses none (Element Call relies on its "left the call" event
//! going out after the client vanished).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{decode, encode, error::Result, tree::Tree};

pub(super) const DELAYED_EVENTS: &str = "delayed_events";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delayed {
    pub user: ruma::OwnedUserId,
    pub room: ruma::OwnedRoomId,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_key: Option<String>,
    pub content: Value,
    /// The delay asked for (ms), which a restart counts again from now.
    pub delay: u64,
    /// When it is sent (ms since the epoch).
    pub send_at: u64,
}

#[derive(Clone)]
pub struct DelayedTree {
    tree: Tree,
}

impl DelayedTree {
    pub(super) fn open(db: &super::tree::Database) -> sled::Result<Self> {
        Ok(Self {
            tree: db.open_tree(DELAYED_EVENTS)?,
        })
    }

    /// Keeps (or replaces) a delayed event, durably.
    pub fn put(&self, id: &str, delayed: &Delayed) -> Result<()> {
        self.tree.insert(id, encode(delayed)?)?;
        self.tree.flush()?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<Delayed>> {
        self.tree
            .get(id)?
            .map(|v| decode(DELAYED_EVENTS, &v))
            .transpose()
    }

    /// Removes one; whether it was there.
    pub fn remove(&self, id: &str) -> Result<bool> {
        let removed = self.tree.remove(id)?.is_some();
        self.tree.flush()?;
        Ok(removed)
    }

    /// Every delayed event, with its ID.
    pub fn all(&self) -> Result<Vec<(String, Delayed)>> {
        self.tree
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((
                    String::from_utf8_lossy(&key).into_owned(),
                    decode(DELAYED_EVENTS, &value)?,
                ))
            })
            .collect()
    }
}
