//! What notified our users (client-server-api "Push Notifications",
//! "Receiving notifications"): each event a user's push rules said
//! `notify` for, kept twice, once to count what is unread in its room and
//! once for `GET /notifications`; and how far each user has read each room
//! (per thread), which those counts start after. Entries are written with
//! the event, in the same transaction, so a notification is never lost
//! nor counted for an event that was not stored.
//!
//! One tree, `notifications`, three key families:
//! - `u 0xFF user 0xFF room 0xFF stream (u64 BE)` → flags byte (bit 0:
//!   highlight) and the thread root's event ID (empty: the main
//!   timeline). Read entries are removed when the user's receipt passes
//!   them, so a room's entries are what is unread.
//! - `n 0xFF user 0xFF stream (u64 BE)` → `room 0xFF flags byte 0xFF
//!   actions (JSON)`: every notification, newest last.
//! - `r 0xFF user 0xFF room 0xFF thread` → stream (u64 BE): the user's
//!   read position; thread empty for an unthreaded receipt, `main` or a
//!   thread root for threaded ones.

use std::collections::BTreeMap;

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};

use crate::store::{
    error::{Result, StoreError},
    key,
    tree::Tree,
};

use super::{relations::Overlay, RoomTrees};

pub(super) const NOTIFICATIONS: &str = "notifications";
const UNREAD: &[u8] = b"u";
const LISTED: &[u8] = b"n";
const READ: &[u8] = b"r";
const HIGHLIGHT: u8 = 1;
/// Unread entries of one room counted at most: past it a count stops
/// growing (a client shows "99+" long before).
pub const MAX_COUNTED: usize = 10_000;

/// An event that notified a user, as the append writes it.
#[derive(Debug, Clone)]
pub struct Notified {
    pub user: OwnedUserId,
    pub room: OwnedRoomId,
    /// Set by the commit, as the event's.
    pub stream: u64,
    pub highlight: bool,
    /// The thread root, for an event in a thread.
    pub thread: Option<OwnedEventId>,
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

fn corrupt() -> StoreError {
    StoreError::data(format!("corrupt record in tree {NOTIFICATIONS}"))
}

fn unread_prefix(user: &str, room: &str) -> Vec<u8> {
    key::prefix(&[UNREAD, user.as_bytes(), room.as_bytes()])
}

fn unread_key(user: &str, room: &str, stream: u64) -> Vec<u8> {
    key::join(&[
        UNREAD,
        user.as_bytes(),
        room.as_bytes(),
        &stream.to_be_bytes(),
    ])
}

fn listed_key(user: &str, stream: u64) -> Vec<u8> {
    key::join(&[LISTED, user.as_bytes(), &stream.to_be_bytes()])
}

fn read_key(user: &str, room: &str, thread: &str) -> Vec<u8> {
    key::join(&[READ, user.as_bytes(), room.as_bytes(), thread.as_bytes()])
}

/// The stream position at the end of a key.
fn stream_at_end(key: &[u8]) -> Result<u64> {
    let (_, stream) = key.split_last_chunk::<8>().ok_or_else(corrupt)?;
    Ok(u64::from_be_bytes(*stream))
}

impl Notified {
    /// The entries writing this notification adds.
    pub(super) fn entries(&self) -> [(Vec<u8>, Vec<u8>); 2] {
        let (user, room) = (self.user.as_str(), self.room.as_str());
        let flags = if self.highlight { HIGHLIGHT } else { 0 };
        let mut unread = vec![flags];
        unread.extend(self.thread.as_ref().map_or(&[][..], |t| t.as_bytes()));
        let listed = key::join(&[room.as_bytes(), &[flags], &self.actions]);
        [
            (unread_key(user, room, self.stream), unread),
            (listed_key(user, self.stream), listed),
        ]
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
    /// root, or `None` for an unthreaded receipt) forward to `stream`, and
    /// drops the unread entries it passes. A position never moves back.
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
        let prefix = unread_prefix(user, room);
        let end = unread_key(user, room, stream.saturating_add(1));
        let mut batch = sled::Batch::default();
        for entry in self.notifications.range(prefix..end) {
            let (key, value) = entry?;
            let entry_thread = value.get(1..).unwrap_or_default();
            let passed = match thread {
                None => true,
                Some("main") => entry_thread.is_empty(),
                Some(root) => entry_thread == root.as_bytes(),
            };
            if passed {
                batch.remove(key);
            }
        }
        self.notifications.apply_batch(batch)?;
        Ok(())
    }

    /// What is unread for `user` in `room`: notifying events after
    /// `floor` and after the read position of their thread (the later of
    /// the unthreaded receipt and the thread's own).
    pub fn unread(&self, user: &str, room: &str, floor: u64) -> Result<Unread> {
        let positions = self.read_positions(user, room)?;
        let unthreaded = positions.get("").copied().unwrap_or(0).max(floor);
        let prefix = unread_prefix(user, room);
        let start = unread_key(user, room, unthreaded.saturating_add(1));
        let end = key::prefix(&[UNREAD, user.as_bytes(), room.as_bytes(), &[key::SEP]]);
        let range = (
            std::ops::Bound::Included(start.max(prefix)),
            std::ops::Bound::Excluded(end),
        );
        let staged = self.staged_notifications(&range);
        let read_at = |thread: &str| positions.get(thread).copied().unwrap_or(0);
        let mut unread = Unread::default();
        let mut counted = 0;
        super::relations::walk(&self.notifications, staged, range, false, |key, value| {
            let stream = stream_at_end(key)?;
            let (&flags, root) = value.split_first().ok_or_else(corrupt)?;
            let (position, slot) = if root.is_empty() {
                (read_at("main"), &mut unread.main)
            } else {
                let root = std::str::from_utf8(root)
                    .ok()
                    .and_then(|r| OwnedEventId::try_from(r).ok())
                    .ok_or_else(corrupt)?;
                (
                    read_at(root.as_str()),
                    unread.threads.entry(root).or_default(),
                )
            };
            if stream > position {
                slot.0 += 1;
                slot.1 += u64::from(flags & HIGHLIGHT);
            }
            counted += 1;
            Ok::<_, StoreError>(counted < MAX_COUNTED)
        })?;
        unread.threads.retain(|_, (n, _)| *n > 0);
        Ok(unread)
    }

    /// The user's notifications from stream `from` (exclusive; from the
    /// first or, `back`, the newest when `None`), oldest first or, `back`,
    /// newest first, while `visit` says go on.
    pub fn walk_notifications(
        &self,
        user: &str,
        from: Option<u64>,
        back: bool,
        mut visit: impl FnMut(Listed) -> Result<bool>,
    ) -> Result<()> {
        let prefix = key::prefix(&[LISTED, user.as_bytes()]);
        let start = from.map(|stream| listed_key(user, stream));
        let range = super::relations::bounds(&prefix, start, back);
        let staged = self.staged_notifications(&range);
        super::relations::walk(&self.notifications, staged, range, back, |key, value| {
            let stream = stream_at_end(key)?;
            let (room, rest) = key::split(value).ok_or_else(corrupt)?;
            let (flags, actions) = key::split(rest).ok_or_else(corrupt)?;
            let room = std::str::from_utf8(room)
                .ok()
                .and_then(|r| OwnedRoomId::try_from(r).ok())
                .ok_or_else(corrupt)?;
            visit(Listed {
                stream,
                room,
                highlight: flags.first().is_some_and(|f| f & HIGHLIGHT != 0),
                actions: actions.to_vec(),
            })
        })
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

    /// The rooms where the user has unread entries (some may be read by
    /// a thread's receipt: [`Self::unread`] tells).
    pub fn rooms_with_entries(&self, user: &str) -> Result<Vec<OwnedRoomId>> {
        let prefix = key::prefix(&[UNREAD, user.as_bytes()]);
        let mut rooms: Vec<OwnedRoomId> = Vec::new();
        let mut from = prefix.clone();
        loop {
            let Some(entry) = self.notifications.range(from..).next() else {
                break;
            };
            let (key, _) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            let (room, _) = key::split(&key[prefix.len()..]).ok_or_else(corrupt)?;
            let room_id = std::str::from_utf8(room)
                .ok()
                .and_then(|r| OwnedRoomId::try_from(r).ok())
                .ok_or_else(corrupt)?;
            // On to the next room: past every key under this one.
            from = key::prefix(&[UNREAD, user.as_bytes(), room]);
            from.push(key::SEP);
            rooms.push(room_id);
        }
        Ok(rooms)
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
}

pub(super) fn open(db: &crate::store::tree::Database) -> sled::Result<Tree> {
    db.open_tree(NOTIFICATIONS)
}

/// The staged entries of appends' notifications.
pub(super) fn stage(overlay: &mut Overlay, notified: &[Notified], n: u64) {
    for entry in notified {
        for (key, value) in entry.entries() {
            overlay.insert(key, (n, Some(value)));
        }
    }
}
