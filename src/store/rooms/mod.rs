//! Trees for rooms: events, their metadata, delta-compressed state
//! snapshots ("state groups"), forward extremities, the timeline and each
//! room's current state.
//!
//! Appends are staged in memory (readable at once) and written by a
//! writer task in batches, each in one sled transaction, while the next
//! events are checked: a crash never leaves an event half-recorded, a
//! transaction of 50 PDUs costs a few commits rather than 50 (sled's
//! multi-tree commit costs as much as the writes), and writing overlaps
//! checking. [`RoomTrees::flush`] waits for what is staged and syncs it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use ruma::{CanonicalJsonObject, OwnedEventId, OwnedRoomId};
use sled::transaction::ConflictableTransactionError;

use crate::store::tree::Tree;

use super::{decode, u64_value};
use crate::store::error::{Result, StoreError};

mod auth_children;
mod cache;
mod migrations;
pub mod notifications;
mod records;
pub mod relations;
pub mod search;
mod writer;

use cache::{Cached, Staged, Written};
use migrations::merge_event_meta;
#[cfg(test)]
use migrations::{EVENT_META, MERGE_BATCH};
use records::{event_record, join_record, split_record};
pub use records::{Append, EventMeta, RoomRecord, ShortState, StateGroup, Status};

/// `events`: event ID (UTF-8) → the length of its metadata (u32 BE),
/// the JSON [`EventMeta`], then the PDU as accepted, canonical JSON
/// (redacted when its content hash did not match). One record per event:
/// event IDs are random, so every insert lands on a random leaf of the
/// tree, and one such insert per event instead of two (metadata apart)
/// makes writes ~1.7x faster.
pub(super) const EVENTS: &str = "events";
/// `event_short` / `short_event`: event ID ↔ u64 (big-endian), the compact
/// event references state groups use.
pub(super) const EVENT_SHORT: &str = "event_short";
pub(super) const SHORT_EVENT: &str = "short_event";
/// `statekey_short` / `short_statekey`: `type 0x00 state_key` ↔ u64,
/// shared by all rooms; a key's id is assigned once, under a lock
/// ([`RoomTrees::statekey_shorts_or_new`]).
pub(super) const STATEKEY_SHORT: &str = "statekey_short";
pub(super) const SHORT_STATEKEY: &str = "short_statekey";
/// `state_groups`: group id (u64 BE) → [`StateGroup::to_bytes`]: a parent
/// group plus the entries that differ from it, so a message stores no
/// state and a state event stores one entry; layers are kept thin (see
/// `rooms::shorts`), and no chain is longer than [`MAX_CHAIN`] links.
pub(super) const STATE_GROUPS: &str = "state_groups";
/// `extremities`: `room_id 0xFF event_id` → empty: the room's forward extremities.
pub(super) const EXTREMITIES: &str = "extremities";
/// `timeline`: `room_id 0xFF stream (u64 BE)` → event ID, in arrival order.
pub(super) const TIMELINE: &str = "timeline";
/// `rooms`: room ID → JSON [`RoomRecord`].
pub(super) const ROOMS: &str = "rooms";

/// Longest parent chain before a group is written as a full snapshot.
pub const MAX_CHAIN: u32 = 32;

#[derive(Clone)]
pub struct RoomTrees {
    db: crate::store::tree::Database,
    ids: crate::store::counter::Counter,
    staged: Arc<Mutex<Staged>>,
    /// Held while a state key's id is looked up and assigned if missing.
    assigning: Arc<Mutex<()>>,
    written: Arc<tokio::sync::watch::Sender<Written>>,
    /// The highest timeline position handed out. Positions are handed out
    /// under the staging lock, so every event at or below it is readable:
    /// a client syncing from here never skips an event committed late.
    /// Watched by long-polling `/sync` requests.
    position: Arc<tokio::sync::watch::Sender<u64>>,
    events: Tree,
    event_short: Tree,
    short_event: Tree,
    statekey_short: Tree,
    short_statekey: Tree,
    state_groups: Tree,
    extremities: Tree,
    timeline: Tree,
    rooms: Tree,
    outbound: Tree,
    auth_children: Tree,
    relations: Tree,
    threads: Tree,
    notifications: Tree,
    unread_cache: Arc<notifications::UnreadCache>,
    search: Arc<search::SearchIndex>,
}

fn room_prefix(room: &str) -> Vec<u8> {
    crate::store::key::prefix(&[room.as_bytes()])
}

fn room_key(room: &str, rest: &[u8]) -> Vec<u8> {
    crate::store::key::join(&[room.as_bytes(), rest])
}

type TxResult = std::result::Result<(), ConflictableTransactionError<StoreError>>;

impl RoomTrees {
    pub(super) fn open(
        db: &crate::store::tree::Database,
        ids: &crate::store::counter::Counter,
        outbound: &super::outbound::OutboundTree,
    ) -> sled::Result<Self> {
        let events = merge_event_meta(db)?;
        let (relations, threads) = relations::open(db, &events)?;
        let trees = Self {
            search: Arc::new(search::open(db)?),
            relations,
            threads,
            notifications: notifications::open(db)?,
            unread_cache: Arc::default(),
            auth_children: auth_children::open(db, &events)?,
            events,
            event_short: db.open_tree(EVENT_SHORT)?,
            short_event: db.open_tree(SHORT_EVENT)?,
            statekey_short: db.open_tree(STATEKEY_SHORT)?,
            short_statekey: db.open_tree(SHORT_STATEKEY)?,
            state_groups: db.open_tree(STATE_GROUPS)?,
            extremities: db.open_tree(EXTREMITIES)?,
            timeline: db.open_tree(TIMELINE)?,
            rooms: db.open_tree(ROOMS)?,
            outbound: outbound.tree().clone(),
            // Ids only grow, so a fresh one is above every stored position.
            position: Arc::new(tokio::sync::watch::Sender::new(
                ids.next()
                    .map_err(|e| sled::Error::Unsupported(e.to_string()))?,
            )),
            ids: ids.clone(),
            db: db.clone(),
            staged: Arc::default(),
            assigning: Arc::default(),
            written: Arc::new(tokio::sync::watch::Sender::new(Written::default())),
        };
        trees
            .catch_up_search()
            .map_err(|e| sled::Error::Unsupported(e.to_string()))?;
        Ok(trees)
    }

    fn staged(&self) -> MutexGuard<'_, Staged> {
        self.staged.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh id for short ids, groups and stream positions; never 0.
    pub fn new_id(&self) -> Result<u64> {
        self.ids.next()
    }

    /// Writes something outside the timeline (an invite from another
    /// server, account data) at a new position, published once written,
    /// under the staging lock like every position.
    pub fn advance_with<T, E: From<StoreError>>(
        &self,
        write: impl FnOnce(u64) -> Result<T, E>,
    ) -> Result<T, E> {
        let _staged = self.staged();
        let position = self.new_id()?;
        let written = write(position)?;
        self.position.send_modify(|p| *p = (*p).max(position));
        Ok(written)
    }

    /// The highest timeline position whose event is readable.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Changes whenever a new position becomes readable.
    pub fn watch_position(&self) -> tokio::sync::watch::Receiver<u64> {
        self.position.subscribe()
    }

    /// Up to `limit` timeline entries of a room with positions in
    /// `(after, before)`, oldest first; the newest ones when `newest`.
    pub fn timeline_between(
        &self,
        room: &str,
        after: u64,
        before: u64,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<(u64, OwnedEventId)>> {
        let prefix = room_prefix(room);
        let from = room_key(room, &after.saturating_add(1).to_be_bytes());
        let to = room_key(room, &before.to_be_bytes());
        if from >= to {
            return Ok(Vec::new());
        }
        let mut entries: BTreeMap<Vec<u8>, String> = self
            .staged()
            .timeline
            .range(from.clone()..to.clone())
            .map(|(key, (_, id))| (key.clone(), id.clone()))
            .collect();
        let stored = self.timeline.range(from..to);
        let stored: Box<dyn Iterator<Item = _>> = if newest {
            Box::new(stored.rev())
        } else {
            Box::new(stored)
        };
        for entry in stored.take(limit) {
            let (key, value) = entry?;
            let id = String::from_utf8(value.to_vec())
                .map_err(|_| StoreError::data("corrupt timeline"))?;
            entries.insert(key.to_vec(), id);
        }
        let mut picked: Vec<(u64, OwnedEventId)> = entries
            .into_iter()
            .map(|(key, id)| {
                let stream = u64_value(TIMELINE, &key[prefix.len()..])?;
                let id = OwnedEventId::try_from(id.as_str())
                    .map_err(|_| StoreError::data("corrupt timeline"))?;
                Ok((stream, id))
            })
            .collect::<Result<_>>()?;
        if newest {
            let skip = picked.len().saturating_sub(limit);
            picked.drain(..skip);
        } else {
            picked.truncate(limit);
        }
        Ok(picked)
    }

    pub fn room_ids(&self) -> Result<Vec<OwnedRoomId>> {
        let mut ids: BTreeSet<String> = self.staged().rooms.keys().cloned().collect();
        for key in self.rooms.iter().keys() {
            ids.insert(String::from_utf8_lossy(&key?).into_owned());
        }
        ids.into_iter()
            .map(|id| OwnedRoomId::try_from(id).map_err(|_| StoreError::data("corrupt room id")))
            .collect()
    }

    pub fn room(&self, room: &str) -> Result<Option<RoomRecord>> {
        if let Some((_, record)) = self.staged().rooms.get(room) {
            return Ok(Some(record.clone()));
        }
        self.rooms.get(room)?.map(|v| decode(ROOMS, &v)).transpose()
    }

    pub fn event_json(&self, id: &str) -> Result<Option<CanonicalJsonObject>> {
        self.event_bytes(id)?
            .map(|json| decode(EVENTS, &json))
            .transpose()
    }

    /// An event as stored: its canonical JSON.
    pub fn event_bytes(&self, id: &str) -> Result<Option<Vec<u8>>> {
        if let Some((_, (json, _))) = self.staged().events.get(id) {
            return Ok(Some(json.clone()));
        }
        match self.events.get(id)? {
            Some(record) => Ok(Some(split_record(&record)?.1.to_vec())),
            None => Ok(None),
        }
    }

    pub fn event_meta(&self, id: &str) -> Result<Option<EventMeta>> {
        self.read_through(
            |staged| match staged.events.get(id) {
                Some((_, (_, meta))) => Some(Some(meta.clone())),
                None => staged.cached.metas.get(id).map(Some),
            },
            || match self.events.get(id)? {
                Some(record) => Ok(Some(decode(EVENTS, split_record(&record)?.0)?)),
                None => Ok(None),
            },
            |cached, meta| {
                if let Some(meta) = meta {
                    cached.metas.put(id.to_owned(), meta.clone());
                }
            },
        )
    }

    pub fn event_short(&self, id: &str) -> Result<Option<u64>> {
        self.read_through(
            |staged| match staged.event_short.get(id) {
                Some((_, short)) => Some(Some(*short)),
                None => staged.cached.event_short.get(id).map(Some),
            },
            || {
                self.event_short
                    .get(id)?
                    .map(|v| u64_value(EVENT_SHORT, &v))
                    .transpose()
            },
            |cached, short| {
                if let Some(short) = short {
                    cached.event_short.put(id.to_owned(), *short);
                }
            },
        )
    }

    pub fn short_event(&self, short: u64) -> Result<OwnedEventId> {
        let id = self.read_through(
            |staged| match staged.short_event.get(&short) {
                Some((_, id)) => Some(id.clone()),
                None => staged.cached.short_event.get(&short),
            },
            || {
                let bytes = self
                    .short_event
                    .get(short.to_be_bytes())?
                    .ok_or_else(|| StoreError::data("unknown short event id"))?;
                std::str::from_utf8(&bytes)
                    .map(str::to_owned)
                    .map_err(|_| StoreError::data("corrupt event id"))
            },
            |cached, id| cached.short_event.put(short, id.clone()),
        )?;
        OwnedEventId::try_from(id).map_err(|_| StoreError::data("corrupt event id"))
    }

    pub fn statekey_short(&self, key: &[u8]) -> Result<Option<u64>> {
        self.read_through(
            |staged| match staged.statekey_short.get(key) {
                Some((_, short)) => Some(Some(*short)),
                None => staged.cached.statekey_short.get(key),
            },
            || {
                self.statekey_short
                    .get(key)?
                    .map(|v| u64_value(STATEKEY_SHORT, &v))
                    .transpose()
            },
            |cached, short| cached.statekey_short.put(key.to_vec(), *short),
        )
    }

    /// The short ids of state keys, those without one assigned and staged
    /// for writing together. Rooms take events in concurrently, and two
    /// that met a new key at once must not give it two ids: a state map
    /// would then miss entries recorded under the id a lookup does not find.
    pub fn statekey_shorts_or_new(&self, keys: &[Vec<u8>]) -> Result<Vec<u64>> {
        let _one_at_a_time = self.assigning.lock().unwrap_or_else(|e| e.into_inner());
        let mut new: HashMap<&[u8], u64> = HashMap::new();
        let mut shorts = Vec::with_capacity(keys.len());
        for key in keys {
            let short = match self.statekey_short(key)? {
                Some(short) => short,
                None => match new.get(key.as_slice()) {
                    Some(short) => *short,
                    None => {
                        let short = self.new_id()?;
                        new.insert(key, short);
                        short
                    }
                },
            };
            shorts.push(short);
        }
        if !new.is_empty() {
            self.commit(Append {
                new_statekey_shorts: new.into_iter().map(|(k, s)| (k.to_vec(), s)).collect(),
                ..Append::default()
            })?;
        }
        Ok(shorts)
    }

    pub fn short_statekey(&self, short: u64) -> Result<Vec<u8>> {
        self.read_through(
            |staged| match staged.short_statekey.get(&short) {
                Some((_, key)) => Some(key.clone()),
                None => staged.cached.short_statekey.get(&short),
            },
            || {
                Ok(self
                    .short_statekey
                    .get(short.to_be_bytes())?
                    .ok_or_else(|| StoreError::data("unknown short state key"))?
                    .to_vec())
            },
            |cached, key| cached.short_statekey.put(short, key.clone()),
        )
    }

    /// Reads what is staged or cached, else the trees; what the trees
    /// return is cached unless written entries were settled since the
    /// lookup (one of them may be newer than what was read).
    fn read_through<T>(
        &self,
        held: impl FnOnce(&mut Staged) -> Option<T>,
        stored: impl FnOnce() -> Result<T>,
        remember: impl FnOnce(&mut Cached, &T),
    ) -> Result<T> {
        let era = {
            let mut staged = self.staged();
            if let Some(found) = held(&mut staged) {
                return Ok(found);
            }
            staged.era
        };
        let found = stored()?;
        let mut staged = self.staged();
        if staged.era == era {
            remember(&mut staged.cached, &found);
        }
        Ok(found)
    }

    pub fn group(&self, id: u64) -> Result<StateGroup> {
        if let Some((_, group)) = self.staged().groups.get(&id) {
            return Ok(group.clone());
        }
        let bytes = self
            .state_groups
            .get(id.to_be_bytes())?
            .ok_or_else(|| StoreError::data(format!("missing state group {id}")))?;
        StateGroup::from_bytes(&bytes)
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
        self.extremity_set(room)?
            .iter()
            .map(|id| {
                OwnedEventId::try_from(id.as_str())
                    .map_err(|_| StoreError::data("corrupt extremity"))
            })
            .collect()
    }

    fn extremity_set(&self, room: &str) -> Result<BTreeSet<String>> {
        self.extremity_set_locked(&self.staged(), room)
    }

    /// Calls `visit` with each state event citing `id` among its auth
    /// events, until it returns true; whether it did. Lazily: the room's
    /// create event is cited by every member, and the first may do. An
    /// event being written meanwhile may be visited twice.
    pub fn find_citing(&self, id: &str, mut visit: impl FnMut(&str) -> bool) -> Result<bool> {
        let prefix = auth_children::prefix(id);
        let staged: Vec<String> = self
            .staged()
            .auth_children
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| auth_children::child_of(&prefix, key))
            .collect::<Result<_>>()?;
        if staged.iter().any(|child| visit(child)) {
            return Ok(true);
        }
        for key in self.auth_children.scan_prefix(&prefix).keys() {
            if visit(&auth_children::child_of(&prefix, &key?)?) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The room's timeline (accepted events), oldest first.
    pub fn timeline(&self, room: &str) -> Result<Vec<OwnedEventId>> {
        let prefix = room_prefix(room);
        let mut entries: BTreeMap<Vec<u8>, String> = self
            .staged()
            .timeline
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, (_, id))| (key.clone(), id.clone()))
            .collect();
        for entry in self.timeline.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let id = String::from_utf8(value.to_vec())
                .map_err(|_| StoreError::data("corrupt timeline"))?;
            entries.insert(key.to_vec(), id);
        }
        entries
            .into_values()
            .map(|id| {
                OwnedEventId::try_from(id.as_str())
                    .map_err(|_| StoreError::data("corrupt timeline"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
