//! Rooms joined with partial state (`omit_members`): the resident server
//! left out most member events, which are fetched after the join returns.
//! A room stays listed here until its full state is stored, so a restart
//! resumes the fetch; then the position where its full state arrived is
//! kept, so `/sync` gives clients the whole state again.

use crate::store::tree::Tree;
use ruma::{OwnedEventId, OwnedRoomId, OwnedServerName, RoomId};
use serde::{Deserialize, Serialize};

use super::{decode, encode};
use crate::store::error::Result;

/// `partial_state`: room ID → JSON [`PartialJoin`].
pub(super) const PARTIAL_STATE: &str = "partial_state";
/// `state_completed`: room ID → stream position (u64 big-endian) at which
/// the room's full state replaced its partial state.
pub(super) const STATE_COMPLETED: &str = "state_completed";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartialJoin {
    /// Our join: the full state is asked for as the state before it.
    pub join: OwnedEventId,
    /// Servers in the room as the join answer listed them, the server we
    /// joined through first.
    pub servers: Vec<OwnedServerName>,
}

#[derive(Clone)]
pub struct PartialTree {
    tree: Tree,
    completed: Tree,
}

impl PartialTree {
    pub(super) fn new(tree: Tree, completed: Tree) -> Self {
        Self { tree, completed }
    }

    /// Durable once the store is flushed.
    pub fn put(&self, room: &RoomId, partial: &PartialJoin) -> Result<()> {
        self.tree.insert(room.as_str(), encode(partial)?)?;
        Ok(())
    }

    pub fn get(&self, room: &RoomId) -> Result<Option<PartialJoin>> {
        match self.tree.get(room.as_str())? {
            Some(bytes) => Ok(Some(decode(PARTIAL_STATE, &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn contains(&self, room: &RoomId) -> Result<bool> {
        Ok(self.tree.contains_key(room.as_str())?)
    }

    pub fn remove(&self, room: &RoomId) -> Result<()> {
        self.tree.remove(room.as_str())?;
        Ok(())
    }

    /// Unmarks `room`, its full state stored at `position`. The position
    /// goes first: a crash in between leaves the room to fetch again.
    pub fn complete(&self, room: &RoomId, position: u64) -> Result<()> {
        self.completed
            .insert(room.as_str(), &position.to_be_bytes())?;
        self.remove(room)
    }

    /// Where `room`'s full state last replaced a partial one (0: never).
    pub fn completed_at(&self, room: &RoomId) -> Result<u64> {
        match self.completed.get(room.as_str())? {
            Some(bytes) => super::u64_value(STATE_COMPLETED, &bytes),
            None => Ok(0),
        }
    }

    /// Every room still waiting for its full state.
    pub fn rooms(&self) -> Result<Vec<OwnedRoomId>> {
        let mut rooms = Vec::new();
        for entry in self.tree.iter() {
            let (key, _) = entry?;
            if let Ok(room) = OwnedRoomId::try_from(String::from_utf8_lossy(&key).as_ref()) {
                rooms.push(room);
            }
        }
        Ok(rooms)
    }
}

#[cfg(test)]
mod tests;
