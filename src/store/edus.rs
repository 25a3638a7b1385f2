//! What other servers' EDUs leave for our clients: read receipts, the
//! to-device inbox (durable: never lost), and the latest device list and
//! cross-signing key updates of remote users. Typing and presence are
//! ephemeral and live in memory (`edus::EduService`).

use crate::store::tree::Tree;
use ruma::{RoomId, ServerName, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{decode, encode, key::join as key};
use crate::store::error::Result;

/// `receipts`: `room_id 0xFF receipt_type 0xFF user_id [0xFF thread_id]`
/// → JSON receipt (`event_ids`, `data`): the latest per user, room, type
/// and thread (`main` or a thread root; none for an unthreaded receipt).
pub(super) const RECEIPTS: &str = "receipts";
/// `to_device`: `user_id 0xFF device_id 0xFF seq (u64 BE)` → JSON
/// [`ToDevice`]; device `*` means every device of the user.
pub(super) const TO_DEVICE: &str = "to_device";
/// `to_device_ids`: `origin 0xFF message_id` → when it was taken (ms, u64
/// BE; empty in records from before that was kept): messages already
/// taken, kept for a day (what a retried transaction needs), then pruned.
pub(super) const TO_DEVICE_IDS: &str = "to_device_ids";
/// `device_updates`: `user_id 0xFF kind` → JSON content of the latest
/// `m.device_list_update` (kind = device ID) or `m.signing_key_update`
/// (kind = `signing_keys`) for a remote user.
pub(super) const DEVICE_UPDATES: &str = "device_updates";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToDevice {
    pub sender: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: Value,
}

#[derive(Clone)]
pub struct EduTrees {
    receipts: Tree,
    to_device: Tree,
    to_device_ids: Tree,
    device_updates: Tree,
    db: crate::store::tree::Database,
    ids: crate::store::counter::Counter,
}

/// The text before and after the first separator.
fn split_at_ff(bytes: &[u8]) -> (String, String) {
    let (before, after) = super::key::split(bytes).unwrap_or((bytes, &[]));
    (
        String::from_utf8_lossy(before).into_owned(),
        String::from_utf8_lossy(after).into_owned(),
    )
}

impl EduTrees {
    pub(super) fn open(
        db: &crate::store::tree::Database,
        ids: &crate::store::counter::Counter,
    ) -> sled::Result<Self> {
        Ok(Self {
            receipts: db.open_tree(RECEIPTS)?,
            to_device: db.open_tree(TO_DEVICE)?,
            to_device_ids: db.open_tree(TO_DEVICE_IDS)?,
            device_updates: db.open_tree(DEVICE_UPDATES)?,
            db: db.clone(),
            ids: ids.clone(),
        })
    }

    /// Keeps a receipt, under its `data.thread_id` if it has one.
    pub fn put_receipt(
        &self,
        room: &RoomId,
        kind: &str,
        user: &UserId,
        receipt: &Value,
    ) -> Result<()> {
        let mut parts = vec![
            room.as_str().as_bytes(),
            kind.as_bytes(),
            user.as_str().as_bytes(),
        ];
        parts.extend(receipt["data"]["thread_id"].as_str().map(str::as_bytes));
        let key = key(&parts);
        self.receipts.insert(key, encode(receipt)?)?;
        Ok(())
    }

    /// (receipt type, user, receipt) for every receipt in `room`.
    pub fn receipts(&self, room: &RoomId) -> Result<Vec<(String, String, Value)>> {
        let prefix = super::key::prefix(&[room.as_bytes()]);
        self.receipts
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let rest = &key[prefix.len()..];
                let (kind, user_thread) = super::key::split(rest).unwrap_or((rest, &[]));
                // The thread, if any, is in the receipt's data too.
                let user = super::key::split(user_thread).map_or(user_thread, |(user, _)| user);
                let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
                Ok((text(kind), text(user), decode(RECEIPTS, &value)?))
            })
            .collect()
    }

    /// Whether a to-device message of `origin` was already taken.
    pub fn to_device_taken(&self, origin: &ServerName, message_id: &str) -> Result<bool> {
        let id_key = key(&[origin.as_str().as_bytes(), message_id.as_bytes()]);
        Ok(self.to_device_ids.contains_key(&id_key)?)
    }

    /// Stores a to-device message once per (origin, message_id); false
    /// when it was already taken.
    pub fn push_to_device(
        &self,
        origin: &ServerName,
        message_id: &str,
        deliveries: &[(&UserId, &str, ToDevice)],
    ) -> Result<bool> {
        let id_key = key(&[origin.as_str().as_bytes(), message_id.as_bytes()]);
        if self.to_device_ids.contains_key(&id_key)? {
            return Ok(false);
        }
        for (user, device, message) in deliveries {
            let seq = self.ids.next()?.to_be_bytes();
            let key = key(&[user.as_str().as_bytes(), device.as_bytes(), &seq]);
            self.to_device.insert(key, encode(message)?)?;
        }
        self.to_device_ids
            .insert(id_key, &crate::time::now_ms().to_be_bytes())?;
        Ok(true)
    }

    /// Messages waiting for one device, counted up to `at_most`.
    pub fn inbox_len(&self, user: &UserId, device: &str, at_most: usize) -> Result<usize> {
        let prefix = super::key::prefix(&[user.as_bytes(), device.as_bytes()]);
        Ok(self
            .to_device
            .scan_prefix(prefix)
            .keys()
            .take(at_most)
            .count())
    }

    /// (device, message) for every message waiting for `user`, oldest first per device.
    pub fn to_device_of(&self, user: &UserId) -> Result<Vec<(String, ToDevice)>> {
        let prefix = super::key::prefix(&[user.as_bytes()]);
        self.to_device
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let (device, _) = split_at_ff(&key[prefix.len()..]);
                Ok((device, decode(TO_DEVICE, &value)?))
            })
            .collect()
    }

    /// A device's inbox after dropping what the client acknowledged
    /// (sequence numbers up to `acked`): up to `limit` (seq, message).
    pub fn take_to_device(
        &self,
        user: &UserId,
        device: &str,
        acked: u64,
        limit: usize,
    ) -> Result<Vec<(u64, ToDevice)>> {
        let prefix = key(&[user.as_str().as_bytes(), device.as_bytes(), &[]]);
        let mut messages = Vec::new();
        for entry in self.to_device.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let seq = <[u8; 8]>::try_from(&k[prefix.len()..])
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if seq <= acked {
                // Acknowledged; on a full disk it stays until the next
                // sync (it is not sent again), and the sync goes on.
                if self.to_device.writable() {
                    self.to_device.remove(&k)?;
                }
                continue;
            }
            if messages.len() == limit {
                break;
            }
            messages.push((seq, decode(TO_DEVICE, &v)?));
        }
        Ok(messages)
    }

    /// Drops every message waiting for a device (it is gone).
    pub fn drop_inbox(&self, user: &UserId, device: &str) -> Result<()> {
        let prefix = key(&[user.as_str().as_bytes(), device.as_bytes(), &[]]);
        for k in self.to_device.scan_prefix(&prefix).keys() {
            self.to_device.remove(k?)?;
        }
        Ok(())
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<()> {
        self.db.sled().flush()?;
        Ok(())
    }

    /// Forgets to-device message IDs taken before `cutoff_ms`; how many.
    pub fn prune_message_ids(&self, cutoff_ms: u64) -> Result<usize> {
        let mut pruned = 0;
        for entry in self.to_device_ids.iter() {
            let (key, value) = entry?;
            let taken = <[u8; 8]>::try_from(value.as_ref()).map_or(0, u64::from_be_bytes);
            if taken < cutoff_ms {
                self.to_device_ids.remove(key)?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    pub fn put_device_update(&self, user: &UserId, kind: &str, content: &Value) -> Result<()> {
        let key = key(&[user.as_str().as_bytes(), kind.as_bytes()]);
        self.device_updates.insert(key, encode(content)?)?;
        Ok(())
    }

    /// (kind, content) of every update stored for `user`.
    pub fn device_updates(&self, user: &UserId) -> Result<Vec<(String, Value)>> {
        let prefix = super::key::prefix(&[user.as_bytes()]);
        self.device_updates
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let kind = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                Ok((kind, decode(DEVICE_UPDATES, &value)?))
            })
            .collect()
    }
}
