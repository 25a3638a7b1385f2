//! The room directory: this server's room aliases, and the rooms
//! published in its public room list.

use crate::store::tree::Tree;
use ruma::{OwnedRoomId, OwnedUserId, RoomAliasId};
use serde::{Deserialize, Serialize};

use super::{decode, encode};
use crate::store::error::Result;

/// `aliases`: room alias (`#name:ourserver`) → JSON [`AliasRecord`].
pub(super) const ALIASES: &str = "aliases";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasRecord {
    pub room_id: OwnedRoomId,
    /// Who made it: they may remove it.
    pub creator: OwnedUserId,
}

#[derive(Clone)]
pub struct AliasTree {
    tree: Tree,
}

impl AliasTree {
    pub(super) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    pub fn get(&self, alias: &RoomAliasId) -> Result<Option<AliasRecord>> {
        self.tree
            .get(alias.as_str())?
            .map(|v| decode(ALIASES, &v))
            .transpose()
    }

    /// Stores a new alias; false when it is taken.
    pub fn create(&self, alias: &RoomAliasId, record: &AliasRecord) -> Result<bool> {
        let created = self
            .tree
            .compare_and_swap(alias.as_str(), None as Option<&[u8]>, Some(encode(record)?))?
            .is_ok();
        self.tree.flush()?;
        Ok(created)
    }

    /// Our aliases pointing at `room` (a scan: a home server has few).
    pub fn of_room(&self, room: &ruma::RoomId) -> Result<Vec<String>> {
        let mut found = Vec::new();
        for entry in self.tree.iter() {
            let (alias, value) = entry?;
            let record: AliasRecord = decode(ALIASES, &value)?;
            if record.room_id == room {
                found.push(String::from_utf8_lossy(&alias).into_owned());
            }
        }
        Ok(found)
    }

    pub fn remove(&self, alias: &RoomAliasId) -> Result<()> {
        self.tree.remove(alias.as_str())?;
        self.tree.flush()?;
        Ok(())
    }
}

/// `public_rooms`: room ID → empty: rooms published in our room directory.
pub(super) const PUBLIC_ROOMS: &str = "public_rooms";

#[derive(Clone)]
pub struct PublicRoomTree {
    tree: Tree,
}

impl PublicRoomTree {
    pub(super) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    pub fn set(&self, room: &ruma::RoomId, public: bool) -> Result<()> {
        if public {
            self.tree.insert(room.as_str(), &[])?;
        } else {
            self.tree.remove(room.as_str())?;
        }
        self.tree.flush()?;
        Ok(())
    }

    pub fn contains(&self, room: &ruma::RoomId) -> Result<bool> {
        Ok(self.tree.contains_key(room.as_str())?)
    }

    pub fn all(&self) -> Result<Vec<OwnedRoomId>> {
        self.tree
            .iter()
            .keys()
            .filter_map(|k| match k {
                Ok(k) => OwnedRoomId::try_from(String::from_utf8_lossy(&k).into_owned())
                    .ok()
                    .map(Ok),
                Err(e) => Some(Err(e.into())),
            })
            .collect()
    }
}
