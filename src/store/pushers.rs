//! Our users' pushers (client-server-api "Pushers"): where each of their
//! apps wants to be woken, and how far delivery to it has got.
//!
//! `pushers`: `user 0xFF app_id 0xFF pushkey` → JSON [`PusherRecord`].
//! What is still to deliver is the user's notifications (see
//! `rooms/notifications.rs`) after `delivered`, so the queue is durable
//! with the events themselves and costs no record of its own.

use serde::{Deserialize, Serialize};

use super::{decode, encode, key, tree::Tree};
use crate::store::error::{Result, StoreError};

pub(super) const PUSHERS: &str = "pushers";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PusherRecord {
    /// The pusher as the client set it and `GET /pushers` shows it.
    pub pusher: serde_json::Value,
    /// The device whose access token set it: deleted with the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// When it was set (ms), sent to the gateway as `pushkey_ts`.
    pub pushkey_ts: u64,
    /// The stream position of the last notification delivered (or
    /// skipped): delivery goes on after it.
    pub delivered: u64,
}

#[derive(Clone)]
pub struct PusherTree {
    tree: Tree,
}

fn record_key(user: &str, app_id: &str, pushkey: &str) -> Vec<u8> {
    key::join(&[user.as_bytes(), app_id.as_bytes(), pushkey.as_bytes()])
}

/// A pusher's identity: (user, app_id, pushkey).
pub type PusherId = (String, String, String);

impl PusherTree {
    pub(super) fn open(db: &super::tree::Database) -> Result<Self> {
        Ok(Self {
            tree: db.open_tree(PUSHERS)?,
        })
    }

    /// Stores (or replaces) a pusher durably.
    pub async fn put(&self, id: &PusherId, record: &PusherRecord) -> Result<()> {
        self.tree
            .insert(record_key(&id.0, &id.1, &id.2), encode(record)?)?;
        self.tree.flush_async().await?;
        Ok(())
    }

    /// Moves a pusher's delivery on, unless it was deleted meanwhile.
    pub fn delivered(&self, id: &PusherId, stream: u64) -> Result<()> {
        let key = record_key(&id.0, &id.1, &id.2);
        let Some(value) = self.tree.get(&key)? else {
            return Ok(());
        };
        let mut record: PusherRecord = decode(PUSHERS, &value)?;
        record.delivered = record.delivered.max(stream);
        let updated = encode(&record)?;
        // A concurrent replacement or deletion wins.
        let _ = self
            .tree
            .compare_and_swap(&key, Some(value), Some(updated))?;
        Ok(())
    }

    pub fn remove(&self, id: &PusherId) -> Result<bool> {
        let removed = self.tree.remove(record_key(&id.0, &id.1, &id.2))?.is_some();
        self.tree.flush()?;
        Ok(removed)
    }

    /// The user's pushers.
    pub fn of_user(&self, user: &str) -> Result<Vec<(PusherId, PusherRecord)>> {
        self.scan(&key::prefix(&[user.as_bytes()]))
    }

    /// Every pusher.
    pub fn all(&self) -> Result<Vec<(PusherId, PusherRecord)>> {
        self.scan(&[])
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<(PusherId, PusherRecord)>> {
        self.tree
            .scan_prefix(prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let corrupt = || StoreError::data(format!("corrupt key in tree {PUSHERS}"));
                let (user, rest) = key::split(&key).ok_or_else(corrupt)?;
                let (app_id, pushkey) = key::split(rest).ok_or_else(corrupt)?;
                let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| corrupt());
                let id = (text(user)?, text(app_id)?, text(pushkey)?);
                Ok((id, decode(PUSHERS, &value)?))
            })
            .collect()
    }
}
