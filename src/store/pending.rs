//! Memberships of our users in rooms this server may not be in: invites
//! received from other servers and knocks sent to them. Clients list them
//! (with the room's stripped state) until the user joins, rejects or
//! retracts.

use ruma::{CanonicalJsonObject, OwnedRoomId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use sled::Tree;

use super::{decode, encode};
use crate::store::error::Result;

/// `pending_memberships`: `user_id 0xFF room_id` → JSON [`Pending`].
pub(super) const PENDING: &str = "pending_memberships";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub room_id: OwnedRoomId,
    pub membership: String,
    pub room_version: String,
    /// `invite`, `knock`, or `leave` once the user rejected the invite
    /// or retracted the knock (kept so that sync reports it once).
    /// The membership event as signed by every party.
    pub event: CanonicalJsonObject,
    /// The event's ID (set for leaves, whose IDs are not in the event
    /// from room version 3).
    #[serde(default)]
    pub event_id: Option<String>,
    /// What the resident server told us about the room, as sent.
    pub room_state: Vec<CanonicalJsonObject>,
    /// The stream position it was recorded at, for incremental sync.
    #[serde(default)]
    pub position: u64,
}

#[derive(Clone)]
pub struct PendingTree {
    tree: Tree,
}

fn key(user: &UserId, room: &RoomId) -> Vec<u8> {
    super::key::join(&[user.as_bytes(), room.as_bytes()])
}

impl PendingTree {
    pub(super) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    /// Durable once the store is flushed.
    pub fn put(&self, user: &UserId, pending: &Pending) -> Result<()> {
        self.tree
            .insert(key(user, &pending.room_id), encode(pending)?)?;
        Ok(())
    }

    pub fn get(&self, user: &UserId, room: &RoomId) -> Result<Option<Pending>> {
        self.tree
            .get(key(user, room))?
            .map(|v| decode(PENDING, &v))
            .transpose()
    }

    pub fn remove(&self, user: &UserId, room: &RoomId) -> Result<()> {
        self.tree.remove(key(user, room))?;
        Ok(())
    }

    /// Every pending membership of `user`.
    pub fn of_user(&self, user: &UserId) -> Result<Vec<Pending>> {
        let prefix = super::key::prefix(&[user.as_bytes()]);
        self.tree
            .scan_prefix(prefix)
            .map(|entry| decode(PENDING, &entry?.1))
            .collect()
    }
}
