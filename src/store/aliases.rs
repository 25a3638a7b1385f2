//! The room alias directory of this server's aliases.

use ruma::{OwnedRoomId, OwnedUserId, RoomAliasId};
use serde::{Deserialize, Serialize};
use sled::Tree;

use super::{decode, encode};
use crate::error::Result;

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

    pub fn remove(&self, alias: &RoomAliasId) -> Result<()> {
        self.tree.remove(alias.as_str())?;
        self.tree.flush()?;
        Ok(())
    }
}
