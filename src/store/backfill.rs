//! A room's history from before this server joined, fetched from other
//! servers with `/backfill`. It is kept apart from the timeline, whose
//! stream positions only grow, and clients read it after the timeline's
//! start when they page back.

use crate::store::tree::Tree;
use ruma::{EventId, OwnedEventId, RoomId};

use crate::store::error::{Result, StoreError};

/// `backfilled`: `room_id 0xFF seq (u64 BE)` → event ID, seq counting up
/// from 1 as history goes further back; and `event_id` → seq (u64 BE) for
/// the events indexed. Room IDs start with `!` and event IDs with `$`, so
/// the two key spaces never meet.
pub(super) const BACKFILLED: &str = "backfilled";

#[derive(Clone)]
pub struct BackfillTree {
    tree: Tree,
}

fn prefix(room: &RoomId) -> Vec<u8> {
    super::key::prefix(&[room.as_bytes()])
}

fn entry(key: &[u8], value: &[u8], prefix_len: usize) -> Result<(u64, OwnedEventId)> {
    let corrupt = || StoreError::data("corrupt backfill index");
    let seq = <[u8; 8]>::try_from(&key[prefix_len..]).map_err(|_| corrupt())?;
    let id = std::str::from_utf8(value).map_err(|_| corrupt())?;
    let id = OwnedEventId::try_from(id).map_err(|_| corrupt())?;
    Ok((u64::from_be_bytes(seq), id))
}

impl BackfillTree {
    pub(super) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    pub fn contains(&self, event: &EventId) -> Result<bool> {
        Ok(self.tree.contains_key(event.as_str().as_bytes())?)
    }

    /// The oldest event indexed for the room, with its seq.
    pub fn oldest(&self, room: &RoomId) -> Result<Option<(u64, OwnedEventId)>> {
        let prefix = prefix(room);
        self.tree
            .scan_prefix(&prefix)
            .next_back()
            .transpose()?
            .map(|(k, v)| entry(&k, &v, prefix.len()))
            .transpose()
    }

    /// Indexes `events`, newest first, as older than everything indexed
    /// so far; durable when this returns.
    pub async fn append(&self, room: &RoomId, events: &[OwnedEventId]) -> Result<()> {
        let mut seq = self.oldest(room)?.map_or(0, |(seq, _)| seq);
        let mut batch = sled::Batch::default();
        for event in events {
            seq += 1;
            let mut key = prefix(room);
            key.extend_from_slice(&seq.to_be_bytes());
            batch.insert(key, event.as_str().as_bytes());
            batch.insert(event.as_str().as_bytes(), &seq.to_be_bytes());
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush_async().await?;
        Ok(())
    }

    /// Up to `limit` entries older than `seq` (seq above it), newest first.
    pub fn older(&self, room: &RoomId, seq: u64, limit: usize) -> Result<Vec<(u64, OwnedEventId)>> {
        let prefix = prefix(room);
        let mut from = prefix.clone();
        from.extend_from_slice(&seq.saturating_add(1).to_be_bytes());
        let mut to = prefix.clone();
        to.extend_from_slice(&u64::MAX.to_be_bytes());
        self.tree
            .range(from..=to)
            .take(limit)
            .map(|row| {
                let (k, v) = row?;
                entry(&k, &v, prefix.len())
            })
            .collect()
    }

    /// Up to `limit` entries newer than `seq` (seq below it), oldest first.
    pub fn newer(&self, room: &RoomId, seq: u64, limit: usize) -> Result<Vec<(u64, OwnedEventId)>> {
        let prefix = prefix(room);
        let mut from = prefix.clone();
        from.extend_from_slice(&1u64.to_be_bytes());
        let mut to = prefix.clone();
        to.extend_from_slice(&seq.to_be_bytes());
        self.tree
            .range(from..to)
            .rev()
            .take(limit)
            .map(|row| {
                let (k, v) = row?;
                entry(&k, &v, prefix.len())
            })
            .collect()
    }
}
