//! Memberships of our users in rooms this server may not be in: invites
//! received from other servers and knocks sent to them. Clients list them
//! (with the room's stripped state) until the user joins, rejects or
//! retracts.

use crate::store::tree::Tree;
use ruma::{CanonicalJsonObject, OwnedRoomId, RoomId, UserId};
use serde::{Deserialize, Serialize};

use super::{decode, encode};
use crate::store::error::Result;

/// `pending_memberships`: `user_id 0xFF room_id 0xFF server` → JSON
/// [`Pending`], `server` being the event sender's: two servers' invites
/// to one room are kept apart, so a second cannot replace the first.
/// (Records written before the server was in the key have none:
/// `user_id 0xFF room_id`.)
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

fn key(user: &UserId, pending: &Pending) -> Vec<u8> {
    let server = match pending.event.get("sender") {
        Some(ruma::CanonicalJsonValue::String(sender)) => {
            sender.split_once(':').map_or("", |(_, server)| server)
        }
        _ => "",
    };
    super::key::join(&[
        user.as_bytes(),
        pending.room_id.as_bytes(),
        server.as_bytes(),
    ])
}

/// The key records of `room` had before the server was part of it.
fn unsuffixed_key(user: &UserId, room: &RoomId) -> Vec<u8> {
    super::key::join(&[user.as_bytes(), room.as_bytes()])
}

impl PendingTree {
    pub(super) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    /// Durable once the store is flushed.
    pub fn put(&self, user: &UserId, pending: &Pending) -> Result<()> {
        self.tree.insert(key(user, pending), encode(pending)?)?;
        Ok(())
    }

    /// Every record of `user` in `room` (one per server that sent one).
    pub fn of_room(&self, user: &UserId, room: &RoomId) -> Result<Vec<Pending>> {
        self.keys_of_room(user, room)?
            .into_iter()
            .filter_map(|key| self.tree.get(key).transpose())
            .map(|value| decode(PENDING, &value?))
            .collect()
    }

    /// Forgets one record.
    pub fn remove_one(&self, user: &UserId, pending: &Pending) -> Result<()> {
        self.tree.remove(key(user, pending))?;
        self.tree.remove(unsuffixed_key(user, &pending.room_id))?;
        Ok(())
    }

    /// Forgets every record of `user` in `room`.
    pub fn remove(&self, user: &UserId, room: &RoomId) -> Result<()> {
        for key in self.keys_of_room(user, room)? {
            self.tree.remove(key)?;
        }
        Ok(())
    }

    fn keys_of_room(&self, user: &UserId, room: &RoomId) -> Result<Vec<sled::IVec>> {
        let prefix = super::key::prefix(&[user.as_bytes(), room.as_bytes()]);
        let mut keys = vec![sled::IVec::from(unsuffixed_key(user, room))];
        for entry in self.tree.scan_prefix(prefix) {
            keys.push(entry?.0);
        }
        Ok(keys)
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
