//! Trees for rooms: events, their metadata, delta-compressed state
//! snapshots ("state groups"), forward extremities, the timeline and each
//! room's current state. One append commits all of them in a single sled
//! transaction, so a crash never leaves an event half-recorded.

use std::collections::{BTreeMap, HashMap};

use ruma::{CanonicalJsonObject, OwnedEventId, OwnedRoomId, OwnedServerName};
use serde::{Deserialize, Serialize};
use sled::{
    transaction::{ConflictableTransactionError, TransactionalTree},
    Transactional, Tree,
};

use super::{decode, encode};
use crate::error::{Error, Result};

/// `events`: event ID (UTF-8) → the PDU as accepted, canonical JSON
/// (redacted when its content hash did not match).
pub(super) const EVENTS: &str = "events";
/// `event_meta`: event ID → JSON [`EventMeta`].
pub(super) const EVENT_META: &str = "event_meta";
/// `event_short` / `short_event`: event ID ↔ u64 (big-endian), the compact
/// event references state groups use.
pub(super) const EVENT_SHORT: &str = "event_short";
pub(super) const SHORT_EVENT: &str = "short_event";
/// `statekey_short` / `short_statekey`: `type 0x00 state_key` ↔ u64.
/// Concurrent rooms may allocate two ids for one key; both decode the same.
pub(super) const STATEKEY_SHORT: &str = "statekey_short";
pub(super) const SHORT_STATEKEY: &str = "short_statekey";
/// `state_groups`: group id (u64 BE) → JSON [`StateGroup`]: a parent group
/// plus the entries that differ from it, so a message stores no state and
/// a state event stores one entry. Chains are cut into full snapshots
/// every [`MAX_CHAIN`] links to bound reads.
pub(super) const STATE_GROUPS: &str = "state_groups";
/// `extremities`: `room_id 0xFF event_id` → empty: the room's forward extremities.
pub(super) const EXTREMITIES: &str = "extremities";
/// `timeline`: `room_id 0xFF stream (u64 BE)` → event ID, in arrival order.
pub(super) const TIMELINE: &str = "timeline";
/// `rooms`: room ID → JSON [`RoomRecord`].
pub(super) const ROOMS: &str = "rooms";

/// Longest parent chain before a group is written as a full snapshot.
pub const MAX_CHAIN: u32 = 32;

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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomRecord {
    pub version: String,
    pub current_state: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateGroup {
    pub parent: Option<u64>,
    pub chain: u32,
    /// (short state key, short event id); event id 0 removes the key.
    pub delta: Vec<(u64, u64)>,
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
    /// Outliers stored alongside (a join's state and auth chain).
    pub outliers: Vec<(OwnedEventId, Vec<u8>, EventMeta)>,
}

#[derive(Clone)]
pub struct RoomTrees {
    db: sled::Db,
    events: Tree,
    event_meta: Tree,
    event_short: Tree,
    short_event: Tree,
    statekey_short: Tree,
    short_statekey: Tree,
    state_groups: Tree,
    extremities: Tree,
    timeline: Tree,
    rooms: Tree,
    outbound: Tree,
}

fn room_prefix(room: &str) -> Vec<u8> {
    let mut key = room.as_bytes().to_vec();
    key.push(0xFF);
    key
}

fn room_key(room: &str, rest: &[u8]) -> Vec<u8> {
    let mut key = room_prefix(room);
    key.extend_from_slice(rest);
    key
}

fn u64_value(bytes: &[u8]) -> Result<u64> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| Error::internal("corrupt short id"))
}

type TxResult = std::result::Result<(), ConflictableTransactionError<Error>>;

impl RoomTrees {
    pub(super) fn open(
        db: &sled::Db,
        outbound: &super::outbound::OutboundTree,
    ) -> sled::Result<Self> {
        Ok(Self {
            events: db.open_tree(EVENTS)?,
            event_meta: db.open_tree(EVENT_META)?,
            event_short: db.open_tree(EVENT_SHORT)?,
            short_event: db.open_tree(SHORT_EVENT)?,
            statekey_short: db.open_tree(STATEKEY_SHORT)?,
            short_statekey: db.open_tree(SHORT_STATEKEY)?,
            state_groups: db.open_tree(STATE_GROUPS)?,
            extremities: db.open_tree(EXTREMITIES)?,
            timeline: db.open_tree(TIMELINE)?,
            rooms: db.open_tree(ROOMS)?,
            outbound: outbound.tree().clone(),
            db: db.clone(),
        })
    }

    /// A fresh id for short ids, groups and stream positions; never 0.
    pub fn new_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()? + 1)
    }

    pub fn room(&self, room: &str) -> Result<Option<RoomRecord>> {
        self.rooms.get(room)?.map(|v| decode(ROOMS, &v)).transpose()
    }

    pub fn event_json(&self, id: &str) -> Result<Option<CanonicalJsonObject>> {
        self.events.get(id)?.map(|v| decode(EVENTS, &v)).transpose()
    }

    pub fn event_meta(&self, id: &str) -> Result<Option<EventMeta>> {
        self.event_meta
            .get(id)?
            .map(|v| decode(EVENT_META, &v))
            .transpose()
    }

    pub fn event_short(&self, id: &str) -> Result<Option<u64>> {
        self.event_short.get(id)?.map(|v| u64_value(&v)).transpose()
    }

    pub fn short_event(&self, short: u64) -> Result<OwnedEventId> {
        let bytes = self
            .short_event
            .get(short.to_be_bytes())?
            .ok_or_else(|| Error::internal("unknown short event id"))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::internal("corrupt event id"))?;
        OwnedEventId::try_from(text).map_err(|_| Error::internal("corrupt event id"))
    }

    pub fn statekey_short(&self, key: &[u8]) -> Result<Option<u64>> {
        self.statekey_short
            .get(key)?
            .map(|v| u64_value(&v))
            .transpose()
    }

    pub fn short_statekey(&self, short: u64) -> Result<Vec<u8>> {
        Ok(self
            .short_statekey
            .get(short.to_be_bytes())?
            .ok_or_else(|| Error::internal("unknown short state key"))?
            .to_vec())
    }

    pub fn group(&self, id: u64) -> Result<StateGroup> {
        let bytes = self
            .state_groups
            .get(id.to_be_bytes())?
            .ok_or_else(|| Error::internal(format!("missing state group {id}")))?;
        decode(STATE_GROUPS, &bytes)
    }

    /// The full state of a group, resolving its parent chain.
    pub fn load_state(&self, id: u64, pending: &HashMap<u64, StateGroup>) -> Result<ShortState> {
        let mut chain = Vec::new();
        let mut next = Some(id);
        while let Some(group_id) = next {
            let group = match pending.get(&group_id) {
                Some(g) => g.clone(),
                None => self.group(group_id)?,
            };
            next = group.parent;
            chain.push(group);
        }
        let mut state = ShortState::new();
        for group in chain.into_iter().rev() {
            for (key, event) in group.delta {
                if event == 0 {
                    state.remove(&key);
                } else {
                    state.insert(key, event);
                }
            }
        }
        Ok(state)
    }

    pub fn extremities(&self, room: &str) -> Result<Vec<OwnedEventId>> {
        let prefix = room_prefix(room);
        self.extremities
            .scan_prefix(&prefix)
            .keys()
            .map(|key| {
                let key = key?;
                let id = std::str::from_utf8(&key[prefix.len()..])
                    .map_err(|_| Error::internal("corrupt extremity"))?;
                OwnedEventId::try_from(id).map_err(|_| Error::internal("corrupt extremity"))
            })
            .collect()
    }

    /// The room's timeline (accepted events), oldest first.
    pub fn timeline(&self, room: &str) -> Result<Vec<OwnedEventId>> {
        self.timeline
            .scan_prefix(room_prefix(room))
            .values()
            .map(|value| {
                let value = value?;
                let id =
                    std::str::from_utf8(&value).map_err(|_| Error::internal("corrupt timeline"))?;
                OwnedEventId::try_from(id).map_err(|_| Error::internal("corrupt timeline"))
            })
            .collect()
    }

    /// Writes one append atomically. Nothing is durable until [`Self::flush`]:
    /// callers flush once per request, before acknowledging it.
    pub fn commit(&self, append: Append) -> Result<()> {
        let trees = (
            &self.events,
            &self.event_meta,
            &self.event_short,
            &self.short_event,
            &self.statekey_short,
            &self.short_statekey,
            &self.state_groups,
            &self.extremities,
            &self.timeline,
            &self.rooms,
            &self.outbound,
        );
        let encoded_event = append
            .event
            .as_ref()
            .map(|(id, json, meta)| Ok::<_, Error>((id, json, encode(meta)?)))
            .transpose()?;
        let timeline_key = match (&append.event, append.timeline) {
            (Some((_, _, meta)), Some(stream)) => {
                Some(room_key(meta.room_id.as_str(), &stream.to_be_bytes()))
            }
            _ => None,
        };
        let encoded_groups = append
            .groups
            .iter()
            .map(|(id, g)| Ok((id.to_be_bytes(), encode(g)?)))
            .collect::<Result<Vec<_>>>()?;
        let queued = match &append.event {
            Some((id, ..)) if !append.outbound.is_empty() => {
                super::outbound::value(&super::outbound::Queued::Pdu {
                    event_id: id.clone(),
                })?
            }
            _ => Vec::new(),
        };
        let encoded_outliers = append
            .outliers
            .iter()
            .map(|(id, json, meta)| Ok::<_, Error>((id, json, encode(meta)?)))
            .collect::<Result<Vec<_>>>()?;
        let encoded_room = append
            .room
            .as_ref()
            .map(|(id, r)| Ok::<_, Error>((id, encode(r)?)))
            .transpose()?;
        trees.transaction(
            |(
                events,
                meta,
                ev_short,
                short_ev,
                sk_short,
                short_sk,
                groups,
                extremities,
                timeline,
                rooms,
                outbound,
            )| {
                for (id, short) in &append.new_event_shorts {
                    ev_short.insert(id.as_str().as_bytes(), &short.to_be_bytes())?;
                    short_ev.insert(&short.to_be_bytes(), id.as_str().as_bytes())?;
                }
                for (key, short) in &append.new_statekey_shorts {
                    sk_short.insert(key.as_slice(), &short.to_be_bytes())?;
                    short_sk.insert(&short.to_be_bytes(), key.as_slice())?;
                }
                for (id, group) in &encoded_groups {
                    groups.insert(id, group.as_slice())?;
                }
                for outlier in &encoded_outliers {
                    write_event(events, meta, timeline, Some(outlier), None)?;
                }
                write_event(
                    events,
                    meta,
                    timeline,
                    encoded_event.as_ref(),
                    timeline_key.as_deref(),
                )?;
                for (destination, seq) in &append.outbound {
                    outbound.insert(super::outbound::key(destination, *seq), queued.as_slice())?;
                }
                if let Some((room, record)) = &encoded_room {
                    for removed in &append.extremities_removed {
                        extremities.remove(room_key(room.as_str(), removed.as_str().as_bytes()))?;
                    }
                    if let Some(added) = &append.extremity_added {
                        extremities
                            .insert(room_key(room.as_str(), added.as_str().as_bytes()), &[])?;
                    }
                    rooms.insert(room.as_str().as_bytes(), record.as_slice())?;
                }
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Makes everything committed so far durable.
    pub async fn flush(&self) -> Result<()> {
        self.db.flush_async().await?;
        Ok(())
    }
}

fn write_event(
    events: &TransactionalTree,
    meta: &TransactionalTree,
    timeline: &TransactionalTree,
    event: Option<&(&OwnedEventId, &Vec<u8>, Vec<u8>)>,
    timeline_key: Option<&[u8]>,
) -> TxResult {
    if let Some((id, json, encoded_meta)) = event {
        events.insert(id.as_str().as_bytes(), json.as_slice())?;
        meta.insert(id.as_str().as_bytes(), encoded_meta.as_slice())?;
        if let Some(key) = timeline_key {
            timeline.insert(key, id.as_str().as_bytes())?;
        }
    }
    Ok(())
}
