//! The records the room trees hold, and how an `events` record packs
//! an event's metadata with its JSON.

use std::collections::BTreeMap;

use ruma::{OwnedEventId, OwnedRoomId, OwnedServerName};
use serde::{Deserialize, Serialize};

use crate::store::error::{Result, StoreError};
use crate::store::{decode, encode, varint};

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Status {
    Accepted,
    /// Passed its own checks but not the room's current state: kept in the
    /// DAG, never shown or used as an extremity.
    SoftFailed(String),
    /// Failed authorization: kept with the reason, never part of any state.
    Rejected(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventMeta {
    pub room_id: OwnedRoomId,
    pub depth: u64,
    pub stream: u64,
    #[serde(flatten)]
    pub status: Status,
    /// State before and after the event (equal unless it is an accepted state event).
    pub state_before: u64,
    pub state_after: u64,
    /// Known only as another event's auth or state (e.g. from a join):
    /// checked against its own auth events, but not part of our DAG view,
    /// so `state_before`/`state_after` are 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outlier: bool,
    /// The event's `auth_events`: auth chains (state resolution, join
    /// answers) are walked through metadata rather than by parsing each
    /// event. `None` for events stored before this was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_events: Option<Vec<OwnedEventId>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomRecord {
    pub version: String,
    pub current_state: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StateGroup {
    pub parent: Option<u64>,
    pub chain: u32,
    /// (short state key, short event id); event id 0 removes the key.
    pub delta: Vec<(u64, u64)>,
}

/// The first byte of a binary `state_groups` record; records written
/// before it are JSON (and begin with `{`).
const GROUP_FORMAT: u8 = 1;

impl StateGroup {
    /// A `state_groups` value: [`GROUP_FORMAT`], then varints: the parent
    /// plus one (0: none), the chain length, the entry count, and each
    /// entry in key order as the gap from the previous key and the event.
    /// About 4 bytes an entry where JSON took 16: full snapshots of big
    /// rooms are most of what state costs.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut delta = self.delta.clone();
        delta.sort_unstable();
        let mut out = Vec::with_capacity(8 + delta.len() * 5);
        out.push(GROUP_FORMAT);
        varint::put(&mut out, self.parent.map_or(0, |p| p + 1));
        varint::put(&mut out, u64::from(self.chain));
        varint::put(&mut out, delta.len() as u64);
        let mut previous = 0;
        for (key, event) in delta {
            varint::put(&mut out, key - previous);
            varint::put(&mut out, event);
            previous = key;
        }
        out
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = || StoreError::data("corrupt record in tree state_groups");
        let Some((&GROUP_FORMAT, mut input)) = bytes.split_first() else {
            return decode("state_groups", bytes);
        };
        let mut next = || varint::take(&mut input).ok_or_else(corrupt);
        let parent = next()?.checked_sub(1);
        let chain = u32::try_from(next()?).map_err(|_| corrupt())?;
        let count = next()?;
        // Each entry takes at least two bytes: a corrupt count cannot
        // make us reserve more than the record could hold.
        let mut delta = Vec::with_capacity((count as usize).min(bytes.len() / 2));
        let mut key = 0u64;
        for _ in 0..count {
            key = key.checked_add(next()?).ok_or_else(corrupt)?;
            delta.push((key, next()?));
        }
        if !input.is_empty() {
            return Err(corrupt());
        }
        Ok(Self {
            parent,
            chain,
            delta,
        })
    }
}

/// A state map in short ids: short state key → short event id.
pub type ShortState = BTreeMap<u64, u64>;

/// Everything one append writes, prepared outside the transaction.
#[derive(Default)]
pub struct Append {
    pub event: Option<(OwnedEventId, Vec<u8>, EventMeta)>,
    pub new_event_shorts: Vec<(OwnedEventId, u64)>,
    pub new_statekey_shorts: Vec<(Vec<u8>, u64)>,
    pub groups: Vec<(u64, StateGroup)>,
    pub extremities_removed: Vec<OwnedEventId>,
    pub extremity_added: Option<OwnedEventId>,
    pub timeline: Option<u64>,
    pub room: Option<(OwnedRoomId, RoomRecord)>,
    /// Destinations that must receive the event: queued atomically with it.
    pub outbound: Vec<(OwnedServerName, u64)>,
    /// Application services interested in the event: queued atomically
    /// with it, at its stream position.
    pub appservices: Vec<std::sync::Arc<str>>,
    /// Other events written with this one: outliers (a join's state and
    /// auth chain), or a redaction's target rewritten redacted.
    pub also_stored: Vec<(OwnedEventId, Vec<u8>, EventMeta)>,
    /// (auth event, state event citing it) for each new state event: the
    /// `auth_children` index.
    pub cited: Vec<(OwnedEventId, OwnedEventId)>,
    /// Relations index entries of the event (and of outliers stored with
    /// it) that relate to another.
    pub related: Vec<super::relations::Related>,
    /// Entries a redaction removes: its target's.
    pub unrelated: Vec<super::relations::Related>,
    /// The event's words, for the search index.
    pub searchable: Option<super::search::Searchable>,
    /// The users the event notified.
    pub notified: Option<super::notifications::Notified>,
}

/// An `events` record: metadata length, metadata, JSON.
pub(super) fn event_record(meta: &EventMeta, json: &[u8]) -> Result<Vec<u8>> {
    Ok(join_record(&encode(meta)?, json))
}

pub(super) fn join_record(meta: &[u8], json: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(4 + meta.len() + json.len());
    record.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    record.extend_from_slice(meta);
    record.extend_from_slice(json);
    record
}

/// An `events` record's metadata and JSON.
pub(super) fn split_record(record: &[u8]) -> Result<(&[u8], &[u8])> {
    let corrupt = || StoreError::data("corrupt record in tree events");
    let (length, rest) = record.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let length = u32::from_be_bytes(*length) as usize;
    if length > rest.len() {
        return Err(corrupt());
    }
    Ok(rest.split_at(length))
}

#[cfg(test)]
mod tests;
