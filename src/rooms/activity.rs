//! The per-user room index both sync APIs read instead of visiting every
//! room on the server: which rooms each of our users has a membership in
//! (and the position of their member event), and each room's latest
//! activity (the position of its last event, and of its last "bump", the
//! kind of event a room list sorts by). Kept in memory: built for a user
//! on first use (one pass over the rooms, as a `/sync` made before), for a
//! room on first use (its newest events), and kept current as events are
//! appended. Each is built under its lock, and appends update it under the
//! same lock after their commit, so no append falls between the two.
//! Spec: MSC4186 (`bump_stamp`).

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use ruma::{
    events::{room::member::MembershipState, TimelineEventType},
    OwnedRoomId, OwnedUserId, RoomId, UserId,
};

use super::{event::Pdu, RoomService};
use crate::error::Result;

/// The event types that move a room up a room list (MSC4186's list, with
/// the unstable poll start Element sends).
const BUMPS: [&str; 8] = [
    "m.room.create",
    "m.room.message",
    "m.room.encrypted",
    "m.sticker",
    "m.call.invite",
    "m.poll.start",
    "org.matrix.msc3381.poll.start",
    "m.beacon_info",
];

/// Most events read back to find a room's last bump when first asked.
const MAX_BUMP_SCAN: usize = 100;

/// A room's latest activity, as stream positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// Its last event's.
    pub last: u64,
    /// Its last bump's: a message-like event (see [`BUMPS`]); the oldest
    /// event read when none of the latest [`MAX_BUMP_SCAN`] is one.
    pub bump: u64,
}

/// One room of a user's: their membership, and their member event's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRoom {
    pub room: OwnedRoomId,
    pub membership: MembershipState,
    pub since: u64,
}

/// What the index holds of a room: its activity once read from the store
/// (`complete`), or only what appends since told.
#[derive(Default)]
struct RoomEntry {
    activity: Activity,
    complete: bool,
}

/// What the index holds of a user: their rooms once read from the store
/// (`complete`), or only the member events appended since.
#[derive(Default)]
struct UserEntry {
    rooms: HashMap<OwnedRoomId, (MembershipState, u64)>,
    complete: bool,
}

impl UserEntry {
    /// Keeps the newer of two memberships of a room.
    fn merge(&mut self, room: OwnedRoomId, membership: MembershipState, since: u64) {
        match self.rooms.get(&room) {
            Some((_, held)) if *held > since => {}
            _ => {
                self.rooms.insert(room, (membership, since));
            }
        }
    }
}

/// Entries are read from the store without the lock held, then merged in
/// (positions only grow): appends update them under the staging lock,
/// before their position is published, and must never wait on a read.
#[derive(Default)]
pub struct RoomIndex {
    users: Mutex<HashMap<OwnedUserId, UserEntry>>,
    rooms: Mutex<HashMap<OwnedRoomId, RoomEntry>>,
}

/// What the index needs of an appended event, taken before it is stored.
pub(in crate::rooms) struct Indexed {
    bump: bool,
    /// For a member event of one of our users: who, and their membership.
    member: Option<(OwnedUserId, MembershipState)>,
}

impl Indexed {
    pub(in crate::rooms) fn of(pdu: &Pdu, own: &ruma::ServerName) -> Self {
        let member = (pdu.kind == TimelineEventType::RoomMember)
            .then(|| {
                let user = pdu
                    .state_key
                    .as_deref()
                    .and_then(|key| OwnedUserId::try_from(key).ok())
                    .filter(|user| user.server_name() == own)?;
                #[derive(serde::Deserialize)]
                struct Member {
                    membership: MembershipState,
                }
                let content: Member = serde_json::from_str(pdu.content.get()).ok()?;
                Some((user, content.membership))
            })
            .flatten();
        Self {
            bump: is_bump(&pdu.kind.to_string()),
            member,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_bump(kind: &str) -> bool {
    BUMPS.contains(&kind)
}

impl RoomService {
    /// Every room `user` (one of ours) has a membership in, from the index.
    pub fn rooms_of(&self, user: &UserId) -> Result<Vec<UserRoom>> {
        let complete = lock(&self.index.users)
            .get(user)
            .is_some_and(|entry| entry.complete);
        if !complete {
            let mut found = Vec::new();
            for room in self.room_ids()? {
                if let Some(membership) = self.membership_of(&room, user)? {
                    found.push((room.clone(), membership, self.member_position(&room, user)?));
                }
            }
            let mut users = lock(&self.index.users);
            let entry = users.entry(user.to_owned()).or_default();
            for (room, membership, since) in found {
                entry.merge(room, membership, since);
            }
            entry.complete = true;
        }
        let users = lock(&self.index.users);
        let rooms = users.get(user).into_iter().flat_map(|e| &e.rooms);
        Ok(rooms
            .map(|(room, (membership, since))| UserRoom {
                room: room.clone(),
                membership: membership.clone(),
                since: *since,
            })
            .collect())
    }

    /// The latest activity of `room`.
    pub fn activity(&self, room: &RoomId) -> Result<Activity> {
        if let Some(entry) = lock(&self.index.rooms).get(room) {
            if entry.complete {
                return Ok(entry.activity);
            }
        }
        let read = self.read_activity(room)?;
        let mut rooms = lock(&self.index.rooms);
        let entry = rooms.entry(room.to_owned()).or_default();
        entry.activity.last = entry.activity.last.max(read.last);
        entry.activity.bump = entry.activity.bump.max(read.bump);
        entry.complete = true;
        Ok(entry.activity)
    }

    /// The latest activity of each of `rooms`, in their order: one lock
    /// for those the index holds whole, rather than one each.
    pub fn activities(&self, rooms: &[&RoomId]) -> Result<Vec<Activity>> {
        let mut found = Vec::with_capacity(rooms.len());
        let mut unread = Vec::new();
        {
            let held = lock(&self.index.rooms);
            for (i, room) in rooms.iter().enumerate() {
                match held.get(*room).filter(|entry| entry.complete) {
                    Some(entry) => found.push(entry.activity),
                    None => {
                        found.push(Activity::default());
                        unread.push(i);
                    }
                }
            }
        }
        for i in unread {
            found[i] = self.activity(rooms[i])?;
        }
        Ok(found)
    }

    fn read_activity(&self, room: &RoomId) -> Result<Activity> {
        let newest = self.timeline_between(room, 0, u64::MAX, MAX_BUMP_SCAN, true)?;
        let last = newest.first().map_or(0, |(position, _)| *position);
        let mut bump = newest.last().map_or(0, |(position, _)| *position);
        for (position, id) in &newest {
            let event = self.event_object(id)?;
            if event
                .get("type")
                .and_then(|t| t.as_str())
                .is_some_and(is_bump)
            {
                bump = *position;
                break;
            }
        }
        Ok(Activity { last, bump })
    }

    /// An event was staged at `position` (its position not yet published):
    /// the room's activity, and for a member event of one of our users,
    /// their rooms.
    pub(in crate::rooms) fn index_appended(&self, room: &RoomId, position: u64, event: &Indexed) {
        {
            let mut rooms = lock(&self.index.rooms);
            let entry = rooms.entry(room.to_owned()).or_default();
            entry.activity.last = entry.activity.last.max(position);
            if event.bump {
                entry.activity.bump = entry.activity.bump.max(position);
            }
        }
        if let Some((user, membership)) = &event.member {
            lock(&self.index.users)
                .entry(user.clone())
                .or_default()
                .merge(room.to_owned(), membership.clone(), position);
        }
    }

    /// Something of `room` changed at `position` outside its timeline (its
    /// partial state completed): syncs look at it again.
    pub(in crate::rooms) fn index_touched(&self, room: &RoomId, position: u64) {
        let mut rooms = lock(&self.index.rooms);
        let entry = rooms.entry(room.to_owned()).or_default();
        entry.activity.last = entry.activity.last.max(position);
    }
}

#[cfg(test)]
#[path = "activity_tests.rs"]
mod tests;
