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
    convert::identity,
    sync::{Arc, Mutex, MutexGuard},
};

use ruma::{CanonicalJsonObject, OwnedEventId, OwnedRoomId, OwnedServerName};
use serde::{Deserialize, Serialize};
use sled::{
    transaction::{ConflictableTransactionError, TransactionalTree},
    Transactional, Tree,
};

use super::{decode, encode, recent::Recent, u64_value};
use crate::error::{Error, Result};

/// `events`: event ID (UTF-8) → the length of its metadata (u32 BE),
/// the JSON [`EventMeta`], then the PDU as accepted, canonical JSON
/// (redacted when its content hash did not match). One record per event:
/// event IDs are random, so every insert lands on a random leaf of the
/// tree, and one such insert per event instead of two (metadata apart)
/// makes writes ~1.7x faster.
pub(super) const EVENTS: &str = "events";
/// The former `event_meta` tree (event ID → JSON [`EventMeta`]), merged
/// into `events` when a data directory written before is opened.
const EVENT_META: &str = "event_meta";
/// Events merged per transaction by that migration.
const MERGE_BATCH: usize = 1000;
/// `event_short` / `short_event`: event ID ↔ u64 (big-endian), the compact
/// event references state groups use.
pub(super) const EVENT_SHORT: &str = "event_short";
pub(super) const SHORT_EVENT: &str = "short_event";
/// `statekey_short` / `short_statekey`: `type 0x00 state_key` ↔ u64,
/// shared by all rooms; a key's id is assigned once, under a lock
/// ([`RoomTrees::statekey_shorts_or_new`]).
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
    /// Other events written with this one: outliers (a join's state and
    /// auth chain), or a redaction's target rewritten redacted.
    pub also_stored: Vec<(OwnedEventId, Vec<u8>, EventMeta)>,
    /// (auth event, state event citing it) for each new state event: the
    /// `auth_children` index.
    pub cited: Vec<(OwnedEventId, OwnedEventId)>,
}

/// A staged entry and the number of the append that staged it: once
/// that append is written the entry is dropped, unless a later one
/// replaced it.
type Tagged<V> = (u64, V);

/// Appends not yet written, and what they change, for readers.
#[derive(Default)]
struct Staged {
    /// Appends the writer has not taken yet.
    appends: Vec<StagedAppend>,
    /// The number of the last append staged.
    last: u64,
    /// Whether a writer task is draining `appends`.
    writing: bool,
    /// Event ID → (JSON, metadata), outliers included.
    events: HashMap<String, Tagged<(Vec<u8>, EventMeta)>>,
    event_short: HashMap<String, Tagged<u64>>,
    short_event: HashMap<u64, Tagged<String>>,
    statekey_short: HashMap<Vec<u8>, Tagged<u64>>,
    short_statekey: HashMap<u64, Tagged<Vec<u8>>>,
    groups: HashMap<u64, Tagged<StateGroup>>,
    /// A room's whole extremity set once an append changed it.
    extremities: HashMap<String, Tagged<BTreeSet<String>>>,
    /// Timeline key → event ID.
    timeline: BTreeMap<Vec<u8>, Tagged<String>>,
    rooms: HashMap<String, Tagged<RoomRecord>>,
    /// `auth_children` keys.
    auth_children: BTreeMap<Vec<u8>, u64>,
    /// Written entries the receive path reads again and again.
    cached: Cached,
    /// How many times written entries moved from here to `cached`: a
    /// reader caches what it read from sled only if none moved since it
    /// looked, so a stale record never replaces a newer one.
    era: u64,
}

/// Written metadata and short ids, kept so that reading them does not
/// wait for the writer (see [`Recent`]).
struct Cached {
    metas: Recent<String, EventMeta>,
    event_short: Recent<String, u64>,
    short_event: Recent<u64, String>,
    /// `None` records that a state key has no short id yet.
    statekey_short: Recent<Vec<u8>, Option<u64>>,
    short_statekey: Recent<u64, Vec<u8>>,
}

/// Entries per generation: a few rooms' auth events and recent events,
/// and their state keys; a few MB at most.
const CACHED_EVENTS: usize = 2048;
const CACHED_SHORTS: usize = 4096;

impl Default for Cached {
    fn default() -> Self {
        Self {
            metas: Recent::new(CACHED_EVENTS),
            event_short: Recent::new(CACHED_SHORTS),
            short_event: Recent::new(CACHED_SHORTS),
            statekey_short: Recent::new(CACHED_SHORTS),
            short_statekey: Recent::new(CACHED_SHORTS),
        }
    }
}

/// Moves the entries of `map` staged by appends up to `last` into `cache`.
fn settle<K: Eq + std::hash::Hash, V, C: Clone>(
    map: &mut HashMap<K, Tagged<V>>,
    last: u64,
    cache: &mut Recent<K, C>,
    keep: impl Fn(V) -> C,
) {
    for (key, (n, value)) in std::mem::take(map) {
        if n > last {
            map.insert(key, (n, value));
        } else {
            cache.put(key, keep(value));
        }
    }
}

impl Staged {
    /// Drops what appends up to `last` staged, now that they are written,
    /// keeping metadata and short ids cached.
    fn forget(&mut self, last: u64) {
        let cached = &mut self.cached;
        settle(&mut self.events, last, &mut cached.metas, |(_, meta)| meta);
        settle(
            &mut self.event_short,
            last,
            &mut cached.event_short,
            identity,
        );
        settle(
            &mut self.short_event,
            last,
            &mut cached.short_event,
            identity,
        );
        settle(
            &mut self.statekey_short,
            last,
            &mut cached.statekey_short,
            Some,
        );
        settle(
            &mut self.short_statekey,
            last,
            &mut cached.short_statekey,
            identity,
        );
        self.era += 1;
        self.groups.retain(|_, (n, _)| *n > last);
        self.extremities.retain(|_, (n, _)| *n > last);
        self.timeline.retain(|_, (n, _)| *n > last);
        self.rooms.retain(|_, (n, _)| *n > last);
        self.auth_children.retain(|_, n| *n > last);
    }
}

/// An append waiting for the writer, with the extremity set it leaves
/// its room with (what the `extremities` tree must hold once written).
struct StagedAppend {
    append: Append,
    extremities: Option<(String, BTreeSet<String>)>,
}

/// How far the writer got: the last append written, or why it stopped.
#[derive(Default)]
struct Written {
    last: u64,
    error: Option<String>,
}

#[derive(Clone)]
pub struct RoomTrees {
    db: sled::Db,
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

type TxResult = std::result::Result<(), ConflictableTransactionError<Error>>;

impl RoomTrees {
    pub(super) fn open(
        db: &sled::Db,
        outbound: &super::outbound::OutboundTree,
    ) -> sled::Result<Self> {
        let events = merge_event_meta(db)?;
        Ok(Self {
            auth_children: super::auth_children::open(db, &events)?,
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
            position: Arc::new(tokio::sync::watch::Sender::new(db.generate_id()?)),
            db: db.clone(),
            staged: Arc::default(),
            assigning: Arc::default(),
            written: Arc::new(tokio::sync::watch::Sender::new(Written::default())),
        })
    }

    fn staged(&self) -> MutexGuard<'_, Staged> {
        self.staged.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh id for short ids, groups and stream positions; never 0.
    pub fn new_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()? + 1)
    }

    /// Writes something outside the timeline (an invite from another
    /// server, account data) at a new position, published once written,
    /// under the staging lock like every position.
    pub fn advance_with<T>(&self, write: impl FnOnce(u64) -> Result<T>) -> Result<T> {
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
                .map_err(|_| Error::internal("corrupt timeline"))?;
            entries.insert(key.to_vec(), id);
        }
        let mut picked: Vec<(u64, OwnedEventId)> = entries
            .into_iter()
            .map(|(key, id)| {
                let stream = u64_value(TIMELINE, &key[prefix.len()..])?;
                let id = OwnedEventId::try_from(id.as_str())
                    .map_err(|_| Error::internal("corrupt timeline"))?;
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
            .map(|id| OwnedRoomId::try_from(id).map_err(|_| Error::internal("corrupt room id")))
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
                    .ok_or_else(|| Error::internal("unknown short event id"))?;
                std::str::from_utf8(&bytes)
                    .map(str::to_owned)
                    .map_err(|_| Error::internal("corrupt event id"))
            },
            |cached, id| cached.short_event.put(short, id.clone()),
        )?;
        OwnedEventId::try_from(id).map_err(|_| Error::internal("corrupt event id"))
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
                    .ok_or_else(|| Error::internal("unknown short state key"))?
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
        self.extremity_set(room)?
            .iter()
            .map(|id| {
                OwnedEventId::try_from(id.as_str())
                    .map_err(|_| Error::internal("corrupt extremity"))
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
        let prefix = super::auth_children::prefix(id);
        let staged: Vec<String> = self
            .staged()
            .auth_children
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| super::auth_children::child_of(&prefix, key))
            .collect::<Result<_>>()?;
        if staged.iter().any(|child| visit(child)) {
            return Ok(true);
        }
        for key in self.auth_children.scan_prefix(&prefix).keys() {
            if visit(&super::auth_children::child_of(&prefix, &key?)?) {
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
                .map_err(|_| Error::internal("corrupt timeline"))?;
            entries.insert(key.to_vec(), id);
        }
        entries
            .into_values()
            .map(|id| {
                OwnedEventId::try_from(id.as_str()).map_err(|_| Error::internal("corrupt timeline"))
            })
            .collect()
    }

    /// Stages one append: readable at once, and handed to the writer,
    /// which writes it atomically (with whatever else is staged by then);
    /// durable once a later [`Self::flush`] returns.
    /// An append with `timeline` set gets its position (and its outbound
    /// queue entries their sequence number) here.
    pub fn commit(&self, mut append: Append) -> Result<()> {
        let mut staged = self.staged();
        if append.timeline.is_some() {
            let stream = self.new_id()?;
            append.timeline = Some(stream);
            if let Some((_, _, meta)) = &mut append.event {
                meta.stream = stream;
            }
            for (_, seq) in &mut append.outbound {
                *seq = stream;
            }
            self.position.send_modify(|p| *p = (*p).max(stream));
        }
        let extremities = match &append.room {
            Some((room, _)) => Some((
                room.to_string(),
                self.extremity_set_locked(&staged, room.as_str())?,
            )),
            None => None,
        };
        staged.last += 1;
        let number = staged.last;
        let extremities = stage(&mut staged, &append, number, extremities);
        staged.appends.push(StagedAppend {
            append,
            extremities,
        });
        let start = self.claim_writer(&mut staged);
        drop(staged);
        if start {
            self.start_writer();
        }
        Ok(())
    }

    /// Whether the caller must start a writer: there is something to
    /// write and no writer runs. Clears the last writer's error.
    fn claim_writer(&self, staged: &mut Staged) -> bool {
        if staged.writing || staged.appends.is_empty() {
            return false;
        }
        staged.writing = true;
        self.written.send_modify(|w| w.error = None);
        true
    }

    /// Runs the writer on the blocking pool (inline outside a runtime).
    fn start_writer(&self) {
        let this = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || this.drain())),
            Err(_) => this.drain(),
        }
    }

    /// Writes what is staged, a batch per transaction, until nothing is
    /// left; appends staged meanwhile form the next batch. A batch that
    /// fails goes back to the queue, and the error to whoever flushes.
    fn drain(&self) {
        loop {
            let (batch, last) = {
                let mut staged = self.staged();
                if staged.appends.is_empty() {
                    staged.writing = false;
                    return;
                }
                (std::mem::take(&mut staged.appends), staged.last)
            };
            let written = self
                .room_changes(&batch)
                .and_then(|changes| self.write(&batch, &changes));
            let mut staged = self.staged();
            match written {
                Ok(()) => {
                    staged.forget(last);
                    self.written.send_modify(|w| w.last = last);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot write staged events");
                    let later = std::mem::replace(&mut staged.appends, batch);
                    staged.appends.extend(later);
                    staged.writing = false;
                    self.written.send_modify(|w| w.error = Some(e.message));
                    return;
                }
            }
        }
    }

    /// [`Self::extremity_set`] while holding the staging lock.
    fn extremity_set_locked(&self, staged: &Staged, room: &str) -> Result<BTreeSet<String>> {
        if let Some((_, set)) = staged.extremities.get(room) {
            return Ok(set.clone());
        }
        let prefix = room_prefix(room);
        self.extremities
            .scan_prefix(&prefix)
            .keys()
            .map(|key| {
                let key = key?;
                std::str::from_utf8(&key[prefix.len()..])
                    .map(str::to_owned)
                    .map_err(|_| Error::internal("corrupt extremity"))
            })
            .collect()
    }

    /// What a batch leaves of each room it touched: its last record, and
    /// the extremities to remove and add against what is written. A
    /// linear run of events in a room thus costs one removal and one
    /// insertion, not one of each per event.
    fn room_changes(&self, batch: &[StagedAppend]) -> Result<RoomChanges> {
        let mut records = HashMap::new();
        let mut sets = HashMap::new();
        for staged in batch {
            if let Some((room, record)) = &staged.append.room {
                records.insert(room.as_str(), record);
            }
            if let Some((room, set)) = &staged.extremities {
                sets.insert(room.as_str(), set);
            }
        }
        let mut changes = RoomChanges::default();
        for (room, record) in records {
            changes
                .records
                .push((room.as_bytes().to_vec(), encode(record)?));
        }
        for (room, set) in sets {
            let prefix = room_prefix(room);
            let mut written = BTreeSet::new();
            for key in self.extremities.scan_prefix(&prefix).keys() {
                written.insert(key?.to_vec());
            }
            let now: BTreeSet<Vec<u8>> =
                set.iter().map(|id| room_key(room, id.as_bytes())).collect();
            changes
                .extremities_removed
                .extend(written.difference(&now).cloned());
            changes
                .extremities_added
                .extend(now.difference(&written).cloned());
        }
        Ok(changes)
    }

    /// Writes appends atomically, in order, with their rooms' changes.
    fn write(&self, batch: &[StagedAppend], changes: &RoomChanges) -> Result<()> {
        let trees = (
            &self.events,
            &self.event_short,
            &self.short_event,
            &self.statekey_short,
            &self.short_statekey,
            &self.state_groups,
            &self.extremities,
            &self.timeline,
            &self.rooms,
            &self.outbound,
            &self.auth_children,
        );
        let encoded = batch
            .iter()
            .map(|staged| Encoded::new(&staged.append))
            .collect::<Result<Vec<_>>>()?;
        trees.transaction(
            |(
                events,
                ev_short,
                short_ev,
                sk_short,
                short_sk,
                groups,
                extremities,
                timeline,
                rooms,
                outbound,
                auth_children,
            )| {
                for (append, encoded) in batch.iter().map(|s| &s.append).zip(&encoded) {
                    for (id, short) in &append.new_event_shorts {
                        ev_short.insert(id.as_str().as_bytes(), &short.to_be_bytes())?;
                        short_ev.insert(&short.to_be_bytes(), id.as_str().as_bytes())?;
                    }
                    for (key, short) in &append.new_statekey_shorts {
                        sk_short.insert(key.as_slice(), &short.to_be_bytes())?;
                        short_sk.insert(&short.to_be_bytes(), key.as_slice())?;
                    }
                    for (id, group) in &encoded.groups {
                        groups.insert(id, group.as_slice())?;
                    }
                    for outlier in &encoded.also_stored {
                        write_event(events, timeline, Some(outlier), None)?;
                    }
                    write_event(
                        events,
                        timeline,
                        encoded.event.as_ref(),
                        encoded.timeline_key.as_deref(),
                    )?;
                    for (auth, child) in &append.cited {
                        let key = super::auth_children::key(auth.as_str(), child.as_str());
                        auth_children.insert(key, &[])?;
                    }
                    for (destination, seq) in &append.outbound {
                        outbound.insert(
                            super::outbound::key(destination, *seq),
                            encoded.queued.as_slice(),
                        )?;
                    }
                }
                for key in &changes.extremities_removed {
                    extremities.remove(key.as_slice())?;
                }
                for key in &changes.extremities_added {
                    extremities.insert(key.as_slice(), &[])?;
                }
                for (room, record) in &changes.records {
                    rooms.insert(room.as_slice(), record.as_slice())?;
                }
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Waits until everything staged so far is written, then makes it
    /// durable.
    pub async fn flush(&self) -> Result<()> {
        let (target, start) = {
            let mut staged = self.staged();
            (staged.last, self.claim_writer(&mut staged))
        };
        if start {
            self.start_writer();
        }
        let mut written = self.written.subscribe();
        loop {
            {
                let now = written.borrow_and_update();
                if now.last >= target {
                    break;
                }
                if let Some(e) = &now.error {
                    return Err(Error::internal(format!("cannot write events: {e}")));
                }
            }
            written
                .changed()
                .await
                .map_err(|_| Error::internal("the event writer is gone"))?;
        }
        self.db.flush_async().await?;
        Ok(())
    }
}

/// An append's records, serialised before its transaction runs.
struct Encoded<'a> {
    /// Event ID and record (metadata and JSON).
    event: Option<(&'a OwnedEventId, Vec<u8>)>,
    timeline_key: Option<Vec<u8>>,
    groups: Vec<([u8; 8], Vec<u8>)>,
    queued: Vec<u8>,
    also_stored: Vec<(&'a OwnedEventId, Vec<u8>)>,
}

/// Rooms' records and extremities as a write leaves them (keys and
/// values encoded for the `rooms` and `extremities` trees).
#[derive(Default)]
struct RoomChanges {
    records: Vec<(Vec<u8>, Vec<u8>)>,
    extremities_removed: Vec<Vec<u8>>,
    extremities_added: Vec<Vec<u8>>,
}

impl<'a> Encoded<'a> {
    fn new(append: &'a Append) -> Result<Self> {
        let queued = match &append.event {
            Some((id, ..)) if !append.outbound.is_empty() => {
                super::outbound::value(&super::outbound::Queued::Pdu {
                    event_id: id.clone(),
                })?
            }
            _ => Vec::new(),
        };
        Ok(Self {
            event: append
                .event
                .as_ref()
                .map(|(id, json, meta)| Ok::<_, Error>((id, event_record(meta, json)?)))
                .transpose()?,
            timeline_key: match (&append.event, append.timeline) {
                (Some((_, _, meta)), Some(stream)) => {
                    Some(room_key(meta.room_id.as_str(), &stream.to_be_bytes()))
                }
                _ => None,
            },
            groups: append
                .groups
                .iter()
                .map(|(id, g)| Ok((id.to_be_bytes(), encode(g)?)))
                .collect::<Result<Vec<_>>>()?,
            queued,
            also_stored: append
                .also_stored
                .iter()
                .map(|(id, json, meta)| Ok::<_, Error>((id, event_record(meta, json)?)))
                .collect::<Result<Vec<_>>>()?,
        })
    }
}

/// Makes append number `n` visible to readers before it is written.
/// `extremities` is the room's extremity set before the append; the set
/// after it is returned.
fn stage(
    staged: &mut Staged,
    append: &Append,
    n: u64,
    extremities: Option<(String, BTreeSet<String>)>,
) -> Option<(String, BTreeSet<String>)> {
    for (id, short) in &append.new_event_shorts {
        staged.event_short.insert(id.to_string(), (n, *short));
        staged.short_event.insert(*short, (n, id.to_string()));
    }
    for (key, short) in &append.new_statekey_shorts {
        staged.statekey_short.insert(key.clone(), (n, *short));
        staged.short_statekey.insert(*short, (n, key.clone()));
    }
    for (id, group) in &append.groups {
        staged.groups.insert(*id, (n, group.clone()));
    }
    for (auth, child) in &append.cited {
        let key = super::auth_children::key(auth.as_str(), child.as_str());
        staged.auth_children.insert(key, n);
    }
    for (id, json, meta) in append.also_stored.iter().chain(&append.event) {
        staged
            .events
            .insert(id.to_string(), (n, (json.clone(), meta.clone())));
    }
    if let (Some((id, _, meta)), Some(stream)) = (&append.event, append.timeline) {
        let key = room_key(meta.room_id.as_str(), &stream.to_be_bytes());
        staged.timeline.insert(key, (n, id.to_string()));
    }
    let (Some((room, record)), Some((_, mut set))) = (&append.room, extremities) else {
        return None;
    };
    for removed in &append.extremities_removed {
        set.remove(removed.as_str());
    }
    if let Some(added) = &append.extremity_added {
        set.insert(added.to_string());
    }
    staged
        .extremities
        .insert(room.to_string(), (n, set.clone()));
    staged.rooms.insert(room.to_string(), (n, record.clone()));
    Some((room.to_string(), set))
}

fn write_event(
    events: &TransactionalTree,
    timeline: &TransactionalTree,
    event: Option<&(&OwnedEventId, Vec<u8>)>,
    timeline_key: Option<&[u8]>,
) -> TxResult {
    if let Some((id, record)) = event {
        events.insert(id.as_str().as_bytes(), record.as_slice())?;
        if let Some(key) = timeline_key {
            timeline.insert(key, id.as_str().as_bytes())?;
        }
    }
    Ok(())
}

/// An `events` record: metadata length, metadata, JSON.
fn event_record(meta: &EventMeta, json: &[u8]) -> Result<Vec<u8>> {
    Ok(join_record(&encode(meta)?, json))
}

fn join_record(meta: &[u8], json: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(4 + meta.len() + json.len());
    record.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    record.extend_from_slice(meta);
    record.extend_from_slice(json);
    record
}

/// An `events` record's metadata and JSON.
pub(super) fn split_record(record: &[u8]) -> Result<(&[u8], &[u8])> {
    let corrupt = || Error::internal("corrupt record in tree events");
    let (length, rest) = record.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let length = u32::from_be_bytes(*length) as usize;
    if length > rest.len() {
        return Err(corrupt());
    }
    Ok(rest.split_at(length))
}

/// Opens `events`, first merging the former `event_meta` tree into it, a
/// batch per transaction: an interrupted merge resumes where it stopped
/// (an event still in `event_meta` still has its bare JSON in `events`).
fn merge_event_meta(db: &sled::Db) -> sled::Result<Tree> {
    let events = db.open_tree(EVENTS)?;
    if !db
        .tree_names()
        .iter()
        .any(|name| name == EVENT_META.as_bytes())
    {
        return Ok(events);
    }
    let old = db.open_tree(EVENT_META)?;
    loop {
        let batch = old
            .iter()
            .take(MERGE_BATCH)
            .collect::<sled::Result<Vec<_>>>()?;
        if batch.is_empty() {
            break;
        }
        (&events, &old)
            .transaction(|(events, old)| {
                for (id, meta) in &batch {
                    // Metadata without its event has nothing to describe.
                    if let Some(json) = events.get(id)? {
                        events.insert(id, join_record(meta, &json))?;
                    }
                    old.remove(id)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => e,
                sled::transaction::TransactionError::Abort(()) => {
                    sled::Error::Unsupported("event metadata merge aborted".into())
                }
            })?;
    }
    db.drop_tree(EVENT_META)?;
    db.flush()?;
    Ok(events)
}

#[cfg(test)]
mod tests;
