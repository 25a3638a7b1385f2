//! The outbound queue: what each destination, and each application
//! service, has yet to receive. Entries for an event are written in the
//! same transaction as the event
//! (see `rooms::RoomTrees::commit`), so "stored but never sent" cannot
//! happen; the sender removes them only after the destination answered 200.
//! A destination's entries are for events of ours; an application
//! service's are for every event it is interested in, ours or not.

use std::collections::HashSet;

use crate::store::tree::Tree;
use ruma::{OwnedEventId, OwnedServerName, OwnedUserId, ServerName};
use serde::{Deserialize, Serialize};

use super::{decode, encode};
use crate::store::error::{Result, StoreError};

/// `outbound`: `destination 0xFF seq (u64 BE)` → JSON [`Queued`]; `seq`
/// comes from the database's id generator, so a destination's entries sort
/// in the order they were queued.
/// Application services' queues are in the same tree (written in the same
/// transaction as the event), under a first part no server name has:
/// `0x00 0xFF appservice_id 0xFF seq (u64 BE)` → JSON [`Queued`], `seq`
/// being the event's stream position (an EDU's: a new id).
pub(super) const OUTBOUND: &str = "outbound";

/// The first part of every application service queue's keys.
const APPSERVICES: &[u8] = &[0x00];

/// One thing a destination must receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Queued {
    /// A PDU, read from the events tree when sent.
    Pdu { event_id: OwnedEventId },
    /// An EDU, stored whole (`edu_type` + `content`); dropped unsent
    /// after `expires_ms` (Unix ms) when set, as stale typing is useless.
    Edu {
        edu: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_ms: Option<u64>,
    },
    /// For an application service only (MSC4203): a to-device message
    /// to one of its users' devices, stored whole (`type`, `sender`,
    /// `content`, `to_user_id`, `to_device_id`).
    ToDevice { message: serde_json::Value },
    /// For an application service only (MSC3202): a user whose devices
    /// or keys changed.
    DeviceList { user_id: OwnedUserId },
    /// For an application service only (MSC3202): a device of one of its
    /// users whose one-time keys were claimed; its counts go out with
    /// the transaction.
    KeyCount {
        user_id: OwnedUserId,
        device_id: String,
    },
}

/// Most entries read for one batch, however many merge.
const MAX_SCANNED: usize = 10_000;
/// Most entries counted for an application service's queue depth.
pub const MAX_COUNTED: usize = 100_000;

/// A queued entry with its key, for removal once delivered.
pub struct Entry {
    pub key: Vec<u8>,
    pub item: Queued,
}

/// Where `destination`'s entries start.
fn prefix(destination: &ServerName) -> Vec<u8> {
    super::key::prefix(&[destination.as_bytes()])
}

pub fn key(destination: &ServerName, seq: u64) -> Vec<u8> {
    super::key::join(&[destination.as_bytes(), &seq.to_be_bytes()])
}

/// The sequence number a queue key ends with.
pub fn seq_of(key: &[u8]) -> u64 {
    key.last_chunk::<8>()
        .map_or(0, |seq| u64::from_be_bytes(*seq))
}

/// Where an application service's entries start.
fn appservice_prefix(appservice: &str) -> Vec<u8> {
    super::key::prefix(&[APPSERVICES, appservice.as_bytes()])
}

pub fn appservice_key(appservice: &str, seq: u64) -> Vec<u8> {
    super::key::join(&[APPSERVICES, appservice.as_bytes(), &seq.to_be_bytes()])
}

pub fn value(item: &Queued) -> Result<Vec<u8>> {
    encode(item)
}

#[derive(Clone)]
pub struct OutboundTree {
    tree: Tree,
}

impl OutboundTree {
    pub(super) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    pub(super) fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Every destination with something queued.
    pub fn destinations(&self) -> Result<Vec<OwnedServerName>> {
        let mut found = Vec::new();
        // Past the application services' queues.
        let mut from = vec![APPSERVICES[0] + 1];
        while let Some((key, _)) = self.tree.range(from.clone()..).next().transpose()? {
            let (name, _) = super::key::split(&key).unwrap_or((&key, &[]));
            // Skip past every entry of this destination.
            from = super::key::prefix(&[name]);
            from.extend_from_slice(&[super::key::SEP; 8]);
            let name = std::str::from_utf8(name)
                .ok()
                .and_then(|s| OwnedServerName::try_from(s).ok())
                .ok_or_else(|| StoreError::data("corrupt outbound key"))?;
            found.push(name);
        }
        Ok(found)
    }

    /// The oldest entries for `destination`, up to `pdus` PDUs and `edus`
    /// EDUs. An EDU for which `replaced_by` names the same key as an
    /// earlier one in the batch is taken without counting: the sender
    /// merges it into that one (the latest receipt of a user, say), so a
    /// long run of them goes in one transaction. At most [`MAX_SCANNED`]
    /// entries are read.
    pub fn batch(
        &self,
        destination: &ServerName,
        pdus: usize,
        edus: usize,
        replaced_by: impl Fn(&serde_json::Value) -> Option<String>,
    ) -> Result<Vec<Entry>> {
        self.batch_under(&prefix(destination), pdus, edus, replaced_by)
    }

    /// The oldest entries for an application service (see [`Self::batch`]).
    pub fn appservice_batch(
        &self,
        appservice: &str,
        pdus: usize,
        edus: usize,
    ) -> Result<Vec<Entry>> {
        self.batch_under(&appservice_prefix(appservice), pdus, edus, |_| None)
    }

    /// The entries under `keys` that are still queued, in order: a
    /// transaction sent again as it was.
    pub fn entries(&self, keys: &[Vec<u8>]) -> Result<Vec<Entry>> {
        let mut found = Vec::new();
        for key in keys {
            if let Some(value) = self.tree.get(key)? {
                found.push(Entry {
                    key: key.clone(),
                    item: decode(OUTBOUND, &value)?,
                });
            }
        }
        Ok(found)
    }

    /// How many entries wait for an application service, counted up to
    /// [`MAX_COUNTED`] (a status page must not read a backlog of millions).
    pub fn appservice_depth(&self, appservice: &str) -> usize {
        self.tree
            .scan_prefix(appservice_prefix(appservice))
            .take(MAX_COUNTED)
            .count()
    }

    /// The oldest entry queued for an application service.
    pub fn appservice_first(&self, appservice: &str) -> Result<Option<Queued>> {
        match self.tree.scan_prefix(appservice_prefix(appservice)).next() {
            Some(entry) => Ok(Some(decode(OUTBOUND, &entry?.1)?)),
            None => Ok(None),
        }
    }

    /// Queues an entry that is not an event (typing, a receipt, a
    /// to-device message, ...) for application services.
    pub fn push_appservices(&self, appservices: &[&str], seq: u64, item: &Queued) -> Result<()> {
        let mut batch = sled::Batch::default();
        let value = value(item)?;
        for appservice in appservices {
            batch.insert(appservice_key(appservice, seq), value.clone());
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    fn batch_under(
        &self,
        prefix: &[u8],
        pdus: usize,
        edus: usize,
        replaced_by: impl Fn(&serde_json::Value) -> Option<String>,
    ) -> Result<Vec<Entry>> {
        let (mut n_pdus, mut n_edus) = (0, 0);
        let mut merged = HashSet::new();
        let mut batch = Vec::new();
        for entry in self.tree.scan_prefix(prefix).take(MAX_SCANNED) {
            let (key, value) = entry?;
            let item: Queued = decode(OUTBOUND, &value)?;
            match &item {
                Queued::Pdu { .. } if n_pdus < pdus => n_pdus += 1,
                Queued::Edu { edu, .. } => match replaced_by(edu) {
                    Some(key) if merged.contains(&key) => {}
                    _ if n_edus == edus => break,
                    Some(key) => {
                        merged.insert(key);
                        n_edus += 1;
                    }
                    None => n_edus += 1,
                },
                // Keep order: stop at the first item that does not fit.
                Queued::Pdu { .. } => break,
                _ if n_edus == edus => break,
                _ => n_edus += 1,
            }
            batch.push(Entry {
                key: key.to_vec(),
                item,
            });
        }
        Ok(batch)
    }

    /// The oldest entry for `destination`.
    pub fn first(&self, destination: &ServerName) -> Result<Option<Queued>> {
        match self.tree.scan_prefix(prefix(destination)).next() {
            Some(entry) => Ok(Some(decode(OUTBOUND, &entry?.1)?)),
            None => Ok(None),
        }
    }

    /// The queued PDUs for `destination`, oldest first, with their keys.
    fn queued_pdus(
        &self,
        destination: &ServerName,
    ) -> impl Iterator<Item = Result<(Vec<u8>, OwnedEventId)>> {
        self.tree
            .scan_prefix(prefix(destination))
            .filter_map(|entry| match entry {
                Err(e) => Some(Err(e.into())),
                Ok((key, value)) => match decode(OUTBOUND, &value) {
                    Ok(Queued::Pdu { event_id }) => Some(Ok((key.to_vec(), event_id))),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                },
            })
    }

    /// The oldest queued PDU for `destination`.
    pub fn first_pdu(&self, destination: &ServerName) -> Result<Option<OwnedEventId>> {
        self.queued_pdus(destination)
            .next()
            .transpose()
            .map(|first| first.map(|(_, id)| id))
    }

    /// Every queued PDU for `destination`, oldest first, with its key.
    pub fn pdus(&self, destination: &ServerName) -> Result<Vec<(Vec<u8>, OwnedEventId)>> {
        self.queued_pdus(destination).collect()
    }

    /// How many entries wait for `destination`.
    pub fn depth(&self, destination: &ServerName) -> usize {
        let prefix = prefix(destination);
        self.tree.scan_prefix(&prefix).count()
    }

    /// Queues an EDU (typing, receipts, ...) for each destination, durably.
    pub fn push(&self, destinations: &[&ServerName], seq: u64, item: &Queued) -> Result<()> {
        let mut batch = sled::Batch::default();
        let value = value(item)?;
        for destination in destinations {
            batch.insert(key(destination, seq), value.clone());
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Drops delivered entries.
    pub fn remove(&self, keys: &[Vec<u8>]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for key in keys {
            batch.remove(key.as_slice());
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
