//! Which member events each device was sent while lazy-loading members,
//! so that later syncs need not repeat them unless the filter asks for
//! `include_redundant_members`. In memory only: after a restart every
//! member counts as unsent, which costs bytes, never correctness; an
//! initial sync starts the device's record afresh.
//! Spec: client-server-api "Lazy-loading room members".

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};

/// Devices remembered; past this the record starts over (redundant
/// members get sent again).
const MAX_DEVICES: usize = 1_000;
/// Member events remembered per device.
const MAX_PER_DEVICE: usize = 20_000;

type Device = (OwnedUserId, String);
type Sent = HashMap<(OwnedRoomId, OwnedUserId), OwnedEventId>;

#[derive(Default)]
pub struct LazyMembers {
    sent: Mutex<HashMap<Device, Sent>>,
}

impl LazyMembers {
    fn lock(&self) -> MutexGuard<'_, HashMap<Device, Sent>> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets what the device was sent (an initial or full-state sync).
    pub fn reset(&self, user: &UserId, device: &str) {
        self.lock().remove(&(user.to_owned(), device.to_owned()));
    }

    /// Whether the device was already sent this member event.
    pub fn was_sent(
        &self,
        user: &UserId,
        device: &str,
        room: &RoomId,
        member: &UserId,
        event: &EventId,
    ) -> bool {
        self.lock()
            .get(&(user.to_owned(), device.to_owned()))
            .and_then(|sent| sent.get(&(room.to_owned(), member.to_owned())))
            .is_some_and(|id| id == event)
    }

    pub fn mark_sent(
        &self,
        user: &UserId,
        device: &str,
        room: &RoomId,
        member: &UserId,
        event: &EventId,
    ) {
        let mut devices = self.lock();
        let key = (user.to_owned(), device.to_owned());
        if !devices.contains_key(&key) && devices.len() >= MAX_DEVICES {
            devices.clear();
        }
        let sent = devices.entry(key).or_default();
        if sent.len() >= MAX_PER_DEVICE {
            sent.clear();
        }
        sent.insert((room.to_owned(), member.to_owned()), event.to_owned());
    }
}
