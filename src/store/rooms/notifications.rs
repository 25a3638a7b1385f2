//! What notified our users (client-server-api "Push Notifications",
//! "Receiving notifications"): for each event, which of our users its
//! push rules said `notify` for, with their actions; and how far each
//! user has read each room (per thread), which unread counts start after.
//! Written with the event, in the same transaction, so a notification is
//! never lost nor counted for an event that was not stored.
//!
//! One record per event, not per user and event: an event in a room with
//! 50 of our users was 100 keys scattered over the tree, and writing
//! them cost 4x the rest of the event (benches/push.rs); now it is two
//! keys, both appended at the end of their ranges.
//!
//! One tree, `notifications`, three key families:
//! - `e 0xFF room 0xFF stream (u64 BE)` → the event's record: `thread
//!   0xFF actions 0xFF (user 0xFF code 0xFF)*`, where thread is the
//!   thread root's event ID (empty: the main timeline), actions a JSON
//!   array of the distinct action lists, and code `h` (highlight) or `n`
//!   followed by the index of the user's actions in it.
//! - `s 0xFF stream (u64 BE)` → `room` then the time it was written (ms,
//!   u64 BE, the last 8 bytes): every record in order, which
//!   `GET /notifications` and pushers walk, and pruning drops after 30
//!   days.
//! - `r 0xFF user 0xFF room 0xFF thread` → stream (u64 BE): the user's
//!   read position; thread empty for an unthreaded receipt, `main` or a
//!   thread root for threaded ones.
//!
//! Unread counts are kept in memory per user and room (`UnreadCache`)
//! with the position they were counted to, so a sync counts only the
//! records after it; a receipt starts the count over.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};

use crate::store::{
    error::{Result, StoreError},
    key,
    tree::Tree,
};

use super::{relations::Overlay, RoomTrees};

pub(super) const NOTIFICATIONS: &str = "notifications";
const EVENT: &[u8] = b"e";
const STREAM: &[u8] = b"s";
const READ: &[u8] = b"r";
/// Records of one room counted at most for a user: past it a count stops
/// growing (a client shows "99+" long before).
pub const MAX_COUNTED: usize = 10_000;
/// Records one walk of `GET /notifications` or a pusher looks at: the
/// page ends there (with a token to go on from) rather than reading the
/// whole server's history for a user who is rarely notified.
const MAX_WALKED: usize = 10_000;
/// Cached counts past which the cache starts over.
const MAX_CACHED: usize = 100_000;

/// Who an event notified, as the append writes it.
#[derive(Debug, Clone)]
pub struct Notified {
    pub room: OwnedRoomId,
    /// Set by the commit, as the event's.
    pub stream: u64,
    /// When it was appended (ms): what pruning goes by.
    pub ts: u64,
    /// The thread root, for an event in a thread.
    pub thread: Option<OwnedEventId>,
    pub users: Vec<UserNotified>,
}

/// One user an event notified.
#[derive(Debug, Clone)]
pub struct UserNotified {
    pub user: OwnedUserId,
    pub highlight: bool,
    /// The actions of the rule that matched (JSON array).
    pub actions: Vec<u8>,
}

/// One entry of `GET /notifications`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub stream: u64,
    pub room: OwnedRoomId,
    pub highlight: bool,
    pub actions: Vec<u8>,
}

/// Unread counts of a room: the main timeline's and each thread's, as
/// (notifications, highlights).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unread {
    pub main: (u64, u64),
    pub threads: BTreeMap<OwnedEventId, (u64, u64)>,
}

/// Counts of (user, room), with what they were counted from and to.
#[derive(Default)]
pub struct UnreadCache(Mutex<HashMap<(String, String), CountedSoFar>>);

#[derive(Clone)]
struct CountedSoFar {
    positions: BTreeMap<String, u64>,
    floor: u64,
    /// Records up to this stream are counted.
    up_to: u64,
    visited: usize,
    unread: Unread,
}

fn corrupt() -> StoreError {
    StoreError::data(format!("corrupt record in tree {NOTIFICATIONS}"))
}

fn event_key(room: &str, stream: u64) -> Vec<u8> {
    key::join(&[EVENT, room.as_bytes(), &stream.to_be_bytes()])
}

fn stream_key(stream: u64) -> Vec<u8> {
    key::join(&[STREAM, &stream.to_be_bytes()])
}

fn read_key(user: &str, room: &str, thread: &str) -> Vec<u8> {
    key::join(&[READ, user.as_bytes(), room.as_bytes(), thread.as_bytes()])
}

/// The stream position at the end of a key.
fn stream_at_end(key: &[u8]) -> Result<u64> {
    let (_, stream) = key.split_last_chunk::<8>().ok_or_else(corrupt)?;
    Ok(u64::from_be_bytes(*stream))
}

fn room_id(bytes: &[u8]) -> Result<OwnedRoomId> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|r| OwnedRoomId::try_from(r).ok())
        .ok_or_else(corrupt)
}

impl Notified {
    /// The entries writing this record adds.
    pub(super) fn entries(&self) -> [(Vec<u8>, Vec<u8>); 2] {
        let mut tables: Vec<&[u8]> = Vec::new();
        let mut codes = Vec::with_capacity(self.users.len());
        for user in &self.users {
            let index = match tables.iter().position(|t| *t == user.actions.as_slice()) {
                Some(index) => index,
                None => {
                    tables.push(&user.actions);
                    tables.len() - 1
                }
            };
            let flag = if user.highlight { 'h' } else { 'n' };
            codes.push(format!("{flag}{index}"));
        }
        let actions = [b"[".as_slice(), &tables.join(&b","[..]), b"]"].concat();
        let thread = self.thread.as_ref().map_or("", |t| t.as_str());
        let mut parts: Vec<&[u8]> = vec![thread.as_bytes(), &actions];
        for (user, code) in self.users.iter().zip(&codes) {
            parts.push(user.user.as_str().as_bytes());
            parts.push(code.as_bytes());
        }
        let located = [self.room.as_str().as_bytes(), &self.ts.to_be_bytes()].concat();
        [
            (
                event_key(self.room.as_str(), self.stream),
                key::join(&parts),
            ),
            (stream_key(self.stream), located),
        ]
    }
}

/// A user's part of an event's record.
struct Found<'a> {
    thread: &'a [u8],
    highlight: bool,
    /// The user's action list, from the record's table.
    index: usize,
    table: &'a [u8],
}

/// The user's part of a record, if it notified them.
fn find<'a>(record: &'a [u8], user: &str) -> Result<Option<Found<'a>>> {
    let mut parts = record.split(|b| *b == key::SEP);
    let (Some(thread), Some(table)) = (parts.next(), parts.next()) else {
        return Err(corrupt());
    };
    while let (Some(who), Some(code)) = (parts.next(), parts.next()) {
        if who != user.as_bytes() {
            continue;
        }
        let (&flag, index) = code.split_first().ok_or_else(corrupt)?;
        let index = std::str::from_utf8(index)
            .ok()
            .and_then(|i| i.parse().ok())
            .ok_or_else(corrupt)?;
        return Ok(Some(Found {
            thread,
            highlight: flag == b'h',
            index,
            table,
        }));
    }
    Ok(None)
}

impl Found<'_> {
    /// The user's actions (a JSON array).
    fn actions(&self) -> Result<Vec<u8>> {
        let lists: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(self.table).map_err(|_| corrupt())?;
        let list = lists.get(self.index).ok_or_else(corrupt)?;
        Ok(list.get().as_bytes().to_vec())
    }
}

impl RoomTrees {
    /// The user's read positions in `room`: thread (empty: unthreaded) →
    /// stream.
    fn read_positions(&self, user: &str, room: &str) -> Result<BTreeMap<String, u64>> {
        let prefix = key::prefix(&[READ, user.as_bytes(), room.as_bytes()]);
        let mut positions = BTreeMap::new();
        for entry in self.notifications.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let thread = std::str::from_utf8(&key[prefix.len()..]).map_err(|_| corrupt())?;
            let stream = value.as_ref().try_into().map_err(|_| corrupt())?;
            positions.insert(thread.to_owned(), u64::from_be_bytes(stream));
        }
        Ok(positions)
    }

    /// Moves the user's read position in `room` (for `thread`: `main`, a
    /// root, or `None` for an unthreaded receipt) forward to `stream`. A
    /// position never moves back.
    pub fn mark_read(
        &self,
        user: &str,
        room: &str,
        thread: Option<&str>,
        stream: u64,
    ) -> Result<()> {
        let key = read_key(user, room, thread.unwrap_or(""));
        let newer = |old: Option<&[u8]>| {
            let old = old.and_then(|v| v.try_into().ok()).map(u64::from_be_bytes);
            Some(old.unwrap_or(0).max(stream).to_be_bytes().to_vec())
        };
        self.notifications.fetch_and_update(key, newer)?;
        Ok(())
    }

    /// What is unread for `user` in `room`: notifying events after
    /// `floor` and after the read position of their thread (the later of
    /// the unthreaded receipt and the thread's own). Counts from where
    /// the last count of the same positions ended.
    pub fn unread(&self, user: &str, room: &str, floor: u64) -> Result<Unread> {
        let positions = self.read_positions(user, room)?;
        // Every record at or below it is staged or written by now.
        let end = *self.position.borrow();
        let slot = (user.to_owned(), room.to_owned());
        let cached = self.unread_cache.get(&slot);
        let mut counted = match cached {
            Some(c) if c.positions == positions && c.floor == floor => c,
            _ => CountedSoFar {
                up_to: positions.get("").copied().unwrap_or(0).max(floor),
                positions,
                floor,
                visited: 0,
                unread: Unread::default(),
            },
        };
        if counted.up_to < end && counted.visited < MAX_COUNTED {
            self.count(user, room, end, &mut counted)?;
        }
        counted.up_to = counted.up_to.max(end);
        let unread = counted.unread.clone();
        self.unread_cache.put(slot, counted);
        Ok(unread)
    }

    /// Adds the records after `counted.up_to`, to `end`, to its counts.
    fn count(&self, user: &str, room: &str, end: u64, counted: &mut CountedSoFar) -> Result<()> {
        use std::ops::Bound::Included;
        let range = (
            Included(event_key(room, counted.up_to.saturating_add(1))),
            Included(event_key(room, end)),
        );
        let staged = self.staged_notifications(&range);
        let read_at = |positions: &BTreeMap<String, u64>, thread: &str| {
            positions.get(thread).copied().unwrap_or(0)
        };
        super::relations::walk(&self.notifications, staged, range, false, |key, record| {
            counted.visited += 1;
            if let Some(found) = find(record, user)? {
                let stream = stream_at_end(key)?;
                let (position, slot) = if found.thread.is_empty() {
                    (
                        read_at(&counted.positions, "main"),
                        &mut counted.unread.main,
                    )
                } else {
                    let root = std::str::from_utf8(found.thread)
                        .ok()
                        .and_then(|r| OwnedEventId::try_from(r).ok())
                        .ok_or_else(corrupt)?;
                    (
                        read_at(&counted.positions, root.as_str()),
                        counted.unread.threads.entry(root).or_default(),
                    )
                };
                if stream > position {
                    slot.0 += 1;
                    slot.1 += u64::from(found.highlight);
                }
            }
            Ok::<_, StoreError>(counted.visited < MAX_COUNTED)
        })?;
        counted.unread.threads.retain(|_, (n, _)| *n > 0);
        Ok(())
    }

    /// The user's notifications from stream `from` (exclusive; from the
    /// first or, `back`, the newest when `None`), oldest first or, `back`,
    /// newest first, while `visit` says go on. Looks at [`MAX_WALKED`]
    /// records at most: when it stops there, the last one it looked at
    /// (a walk from it goes on after it).
    pub fn walk_notifications(
        &self,
        user: &str,
        from: Option<u64>,
        back: bool,
        mut visit: impl FnMut(Listed) -> Result<bool>,
    ) -> Result<Option<u64>> {
        let prefix = key::prefix(&[STREAM]);
        let start = from.map(stream_key);
        let range = super::relations::bounds(&prefix, start, back);
        let staged = self.staged_notifications(&range);
        let (mut walked, mut stopped) = (0, None);
        super::relations::walk::<StoreError>(
            &self.notifications,
            staged,
            range,
            back,
            |key, value| {
                let stream = stream_at_end(key)?;
                walked += 1;
                if walked == MAX_WALKED {
                    stopped = Some(stream);
                }
                let (room, _) = value.split_last_chunk::<8>().ok_or_else(corrupt)?;
                let room = room_id(room)?;
                let go_on = walked < MAX_WALKED;
                let Some(record) = self.record(room.as_str(), stream)? else {
                    return Ok(go_on);
                };
                let Some(found) = find(&record, user)? else {
                    return Ok(go_on);
                };
                let visited = visit(Listed {
                    stream,
                    highlight: found.highlight,
                    actions: found.actions()?,
                    room,
                })?;
                Ok(visited && go_on)
            },
        )?;
        Ok(stopped)
    }

    /// An event's record, staged or written.
    fn record(&self, room: &str, stream: u64) -> Result<Option<Vec<u8>>> {
        let key = event_key(room, stream);
        if let Some((_, value)) = self.staged().notifications.get(&key) {
            return Ok(value.clone());
        }
        Ok(self.notifications.get(&key)?.map(|v| v.to_vec()))
    }

    /// A copy of the staged entries in `range`, taken under the staging
    /// lock, which the walk over them does not hold.
    fn staged_notifications(
        &self,
        range: &super::relations::Range,
    ) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.staged()
            .notifications
            .range(range.clone())
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }

    /// The user's read position in `room` for the main timeline: how far
    /// `GET /notifications` counts as read.
    pub fn read_position(&self, user: &str, room: &str) -> Result<u64> {
        let positions = self.read_positions(user, room)?;
        Ok(positions
            .get("")
            .copied()
            .unwrap_or(0)
            .max(positions.get("main").copied().unwrap_or(0)))
    }

    /// Drops the records written before `cutoff_ms` (oldest first, as
    /// they were written); how many.
    pub fn prune_notifications(&self, cutoff_ms: u64) -> Result<usize> {
        let prefix = key::prefix(&[STREAM]);
        let mut pruned = 0;
        loop {
            let mut batch = sled::Batch::default();
            let mut taken = 0;
            for entry in self.notifications.scan_prefix(&prefix).take(1000) {
                let (key, value) = entry?;
                let (room, ts) = value.split_last_chunk::<8>().ok_or_else(corrupt)?;
                if u64::from_be_bytes(*ts) >= cutoff_ms {
                    break;
                }
                let room = std::str::from_utf8(room).map_err(|_| corrupt())?;
                batch.remove(event_key(room, stream_at_end(&key)?));
                batch.remove(key.to_vec());
                taken += 1;
            }
            if taken == 0 {
                return Ok(pruned);
            }
            self.notifications.apply_batch(batch)?;
            pruned += taken;
        }
    }
}

impl UnreadCache {
    fn get(&self, slot: &(String, String)) -> Option<CountedSoFar> {
        let cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        cached.get(slot).cloned()
    }

    fn put(&self, slot: (String, String), counted: CountedSoFar) {
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if cached.len() >= MAX_CACHED {
            cached.clear();
        }
        cached.insert(slot, counted);
    }
}

pub(super) fn open(db: &crate::store::tree::Database) -> sled::Result<Tree> {
    let tree = db.open_tree(NOTIFICATIONS)?;
    super::migrations::drop_per_user_notifications(&tree)?;
    Ok(tree)
}

/// The staged entries of an append's record.
pub(super) fn stage(overlay: &mut Overlay, notified: Option<&Notified>, n: u64) {
    for (key, value) in notified.into_iter().flat_map(Notified::entries) {
        overlay.insert(key, (n, Some(value)));
    }
}

#[cfg(test)]
#[path = "notifications_tests.rs"]
mod tests;
