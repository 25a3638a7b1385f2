//! Room aliases: ours in the `aliases` tree, other servers' through
//! `GET /query/directory`. Spec: client-server-api "Room aliases",
//! server-server-api.md "Querying for information".

use std::sync::Arc;

use http::Method;
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedServerName, RoomAliasId, RoomId, UserId};
use serde::Deserialize;

use super::service::RoomService;
use crate::{
    error::{Error, Result},
    federation::requester::Requester,
    http_util::percent_encode,
    store::aliases::{AliasRecord, AliasTree},
};

pub struct DirectoryService {
    rooms: Arc<RoomService>,
    requester: Arc<Requester>,
    aliases: AliasTree,
}

/// Where an alias points, and servers that can let us in.
#[derive(Debug, serde::Serialize, Deserialize)]
pub struct Resolved {
    pub room_id: OwnedRoomId,
    pub servers: Vec<OwnedServerName>,
}

fn in_use(alias: &RoomAliasId) -> Error {
    Error::new(
        http::StatusCode::BAD_REQUEST,
        "M_ROOM_IN_USE",
        format!("{alias} is already taken"),
    )
}

impl DirectoryService {
    pub fn new(rooms: Arc<RoomService>, requester: Arc<Requester>, aliases: AliasTree) -> Self {
        Self {
            rooms,
            requester,
            aliases,
        }
    }

    /// The alias `#localpart:us`, if it is valid and free.
    pub fn check_new_alias(&self, localpart: &str) -> Result<OwnedRoomAliasId> {
        let alias =
            OwnedRoomAliasId::try_from(format!("#{localpart}:{}", self.rooms.server_name()))
                .map_err(|e| Error::invalid_param(format!("#{localpart}: {e}")))?;
        if self.aliases.get(&alias)?.is_some() {
            return Err(in_use(&alias));
        }
        Ok(alias)
    }

    /// Points one of our aliases at a room.
    pub fn put_alias(&self, alias: &RoomAliasId, room: &RoomId, creator: &UserId) -> Result<()> {
        if alias.server_name() != self.rooms.server_name() {
            return Err(Error::invalid_param(format!(
                "{alias} is not an alias of this server"
            )));
        }
        let record = AliasRecord {
            room_id: room.to_owned(),
            creator: creator.to_owned(),
        };
        if !self.aliases.create(alias, &record)? {
            return Err(in_use(alias));
        }
        Ok(())
    }

    /// Removes one of our aliases; only its creator may.
    pub fn remove_alias(&self, alias: &RoomAliasId, user: &UserId) -> Result<()> {
        let record = self
            .aliases
            .get(alias)?
            .ok_or_else(|| Error::not_found(format!("no alias {alias}")))?;
        if record.creator != user {
            return Err(Error::forbidden(format!(
                "only {} may remove {alias}",
                record.creator
            )));
        }
        self.aliases.remove(alias)
    }

    /// One of our aliases, as we answer other servers.
    pub fn resolve_local(&self, alias: &RoomAliasId) -> Result<Resolved> {
        let record = self
            .aliases
            .get(alias)?
            .ok_or_else(|| Error::not_found(format!("no alias {alias}")))?;
        let own = self.rooms.server_name().to_owned();
        let mut servers: Vec<OwnedServerName> = self
            .rooms
            .joined_servers(&record.room_id)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| *s != own)
            .collect();
        servers.insert(0, own);
        Ok(Resolved {
            room_id: record.room_id,
            servers,
        })
    }

    /// Any alias: ours from the tree, others' from their server.
    pub async fn resolve(&self, alias: &RoomAliasId) -> Result<Resolved> {
        if alias.server_name() == self.rooms.server_name() {
            return self.resolve_local(alias);
        }
        let uri = format!(
            "/_matrix/federation/v1/query/directory?room_alias={}",
            percent_encode(alias.as_str())
        );
        self.requester
            .call(alias.server_name(), Method::GET, &uri, None)
            .await
    }
}
