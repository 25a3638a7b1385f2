//! Membership that needs another server: joining a room we are not in,
//! through a list of candidate resident servers.
//! Spec: server-server-api.md "Joining Rooms".

use std::sync::Arc;

use http::Method;
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, OwnedServerName, RoomId, RoomVersionId,
    UserId,
};
use serde::Deserialize;

use super::service::RoomService;
use crate::{
    error::{Error, Result},
    federation::requester::Requester,
    http_util::percent_encode,
};

/// Room versions we can join, offered to `make_join` as `ver`.
const SUPPORTED_VERSIONS: &[&str] = &[
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12",
];

pub struct MembershipService {
    rooms: Arc<RoomService>,
    requester: Arc<Requester>,
}

#[derive(Deserialize)]
struct MakeJoinAnswer {
    room_version: Option<String>,
    event: CanonicalJsonObject,
}

#[derive(Deserialize)]
struct SendJoinAnswer {
    state: Vec<CanonicalJsonObject>,
    auth_chain: Vec<CanonicalJsonObject>,
}

impl MembershipService {
    pub fn new(rooms: Arc<RoomService>, requester: Arc<Requester>) -> Self {
        Self { rooms, requester }
    }

    /// Joins `user` (ours) to `room` through the first of `servers` that
    /// lets us in; the last server's refusal is the error otherwise.
    pub async fn join(
        &self,
        room: &RoomId,
        user: &UserId,
        servers: &[OwnedServerName],
    ) -> Result<OwnedEventId> {
        let own = self.requester.server_name();
        if user.server_name() != own {
            return Err(Error::forbidden(format!(
                "{user} is not a user of this server"
            )));
        }
        let mut last = Error::not_found(format!("no server to join {room} through"));
        for server in servers.iter().filter(|s| *s != own) {
            match self.join_through(room, user, server).await {
                Ok(id) => return Ok(id),
                Err(e) => {
                    tracing::info!(%room, %server, error = %e, "join attempt failed");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn join_through(
        &self,
        room: &RoomId,
        user: &UserId,
        server: &OwnedServerName,
    ) -> Result<OwnedEventId> {
        let versions: String = SUPPORTED_VERSIONS
            .iter()
            .map(|v| format!("ver={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let uri = format!(
            "/_matrix/federation/v1/make_join/{}/{}?{versions}",
            percent_encode(room.as_str()),
            percent_encode(user.as_str())
        );
        let answer: MakeJoinAnswer = self.requester.call(server, Method::GET, &uri, None).await?;
        let version = RoomVersionId::try_from(answer.room_version.as_deref().unwrap_or("1"))
            .map_err(|e| Error::remote(format!("{server} named a bad room version: {e}")))?;
        check_template(&answer.event, room, user)
            .map_err(|e| Error::remote(format!("{server}'s join template: {e}")))?;
        let join = self.rooms.sign_join(answer.event, &version)?;
        let uri = format!(
            "/_matrix/federation/v2/send_join/{}/{}",
            percent_encode(room.as_str()),
            percent_encode(join.event_id.as_str())
        );
        let body = serde_json::Value::from(CanonicalJsonValue::Object(join.object.clone()));
        let answer: SendJoinAnswer = self
            .requester
            .call(server, Method::PUT, &uri, Some(&body))
            .await?;
        self.rooms
            .import_join(room, &version, join, answer.state, answer.auth_chain)
            .await
    }
}

/// The template must be a join of `user` for themselves in `room`.
fn check_template(
    template: &CanonicalJsonObject,
    room: &RoomId,
    user: &UserId,
) -> std::result::Result<(), String> {
    let text = |field: &str| match template.get(field) {
        Some(CanonicalJsonValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let membership = match template.get("content") {
        Some(CanonicalJsonValue::Object(content)) => match content.get("membership") {
            Some(CanonicalJsonValue::String(m)) => Some(m.as_str()),
            _ => None,
        },
        _ => None,
    };
    if text("type") != Some("m.room.member") || membership != Some("join") {
        return Err("not a join event".into());
    }
    if text("sender") != Some(user.as_str()) || text("state_key") != Some(user.as_str()) {
        return Err(format!("not a join for {user}"));
    }
    if text("room_id") != Some(room.as_str()) {
        return Err(format!("not for room {room}"));
    }
    Ok(())
}
