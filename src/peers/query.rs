//! Questions about a server's users and rooms: aliases, profiles, the
//! public room list and space hierarchies.
//! Spec: server-server-api.md "Querying for information", "Public Room
//! Directory", "Spaces".

use http::Method;
use ruma::{OwnedRoomId, OwnedServerName, RoomAliasId, RoomId, ServerName, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Peers;
use crate::error::{Error, Result};
use crate::http_util::percent_encode;

/// Where an alias points, and servers that can let us in: the answer of
/// `query/directory`, and what our own aliases resolve to.
#[derive(Debug, Serialize, Deserialize)]
pub struct Resolved {
    pub room_id: OwnedRoomId,
    pub servers: Vec<OwnedServerName>,
}

/// The answer of `/hierarchy`: the room's summary and its children's.
#[derive(Deserialize)]
pub struct Hierarchy {
    pub room: Value,
    #[serde(default)]
    pub children: Vec<Value>,
}

impl Peers {
    /// `GET /v1/query/directory`: the room an alias of that server names.
    pub async fn query_directory(&self, alias: &RoomAliasId) -> Result<Resolved> {
        let uri = format!(
            "/_matrix/federation/v1/query/directory?room_alias={}",
            percent_encode(alias.as_str())
        );
        self.call(alias.server_name(), Method::GET, &uri, None)
            .await
    }

    /// `GET /v1/query/profile`: a user's profile, from their server.
    pub async fn query_profile(&self, user: &UserId) -> Result<Value> {
        let uri = format!(
            "/_matrix/federation/v1/query/profile?user_id={}",
            percent_encode(user.as_str())
        );
        let profile: Value = self
            .call(user.server_name(), Method::GET, &uri, None)
            .await?;
        if !profile.is_object() {
            return Err(Error::remote(format!(
                "{} sent a profile that is not an object",
                user.server_name()
            )));
        }
        Ok(profile)
    }

    /// `POST /v1/publicRooms`: a server's public room list, filtered.
    pub async fn public_rooms(&self, server: &ServerName, body: &Value) -> Result<Value> {
        let uri = "/_matrix/federation/v1/publicRooms";
        self.call(server, Method::POST, uri, Some(body)).await
    }

    /// `GET /v1/hierarchy/{roomId}`: a space and its children, one level.
    pub async fn hierarchy(
        &self,
        server: &ServerName,
        room: &RoomId,
        suggested_only: bool,
    ) -> Result<Hierarchy> {
        let uri = format!(
            "/_matrix/federation/v1/hierarchy/{}?suggested_only={suggested_only}",
            percent_encode(room.as_str())
        );
        self.call(server, Method::GET, &uri, None).await
    }
}
