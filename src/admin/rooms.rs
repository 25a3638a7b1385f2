//! Admin endpoints that drive rooms before the client API exists:
//! create a room, send an event as a local user, join a room on another
//! server, read a room's state.

use std::sync::Arc;

use bytes::Bytes;
use ruma::{OwnedRoomId, OwnedServerName, OwnedUserId, RoomVersionId};
use serde::Deserialize;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    error::{Error, Result},
    http_util::{body_limited, ok_json, parse_json, percent_decode, reply},
    rooms::{membership::MembershipService, service::RoomService},
};

#[derive(Deserialize)]
struct CreateRoom {
    creator: OwnedUserId,
    room_version: Option<RoomVersionId>,
}

#[derive(Deserialize)]
struct JoinRoom {
    user: OwnedUserId,
    /// Resident servers to try, in order.
    servers: Vec<OwnedServerName>,
}

#[derive(Deserialize)]
struct SendEvent {
    sender: OwnedUserId,
    #[serde(rename = "type")]
    kind: String,
    state_key: Option<String>,
    content: serde_json::Value,
}

fn room_id(segment: &str) -> Result<OwnedRoomId> {
    let decoded = percent_decode(segment);
    OwnedRoomId::try_from(decoded.as_str())
        .map_err(|e| Error::invalid_param(format!("{decoded:?} is not a room ID: {e}")))
}

/// `POST rooms`, `POST rooms/{roomId}/send`, `GET rooms/{roomId}`, under
/// the authenticated admin prefix.
pub fn routes(
    rooms: Arc<RoomService>,
    membership: Arc<MembershipService>,
) -> BoxedFilter<(Response,)> {
    let service = rooms.clone();
    let create = warp::path!("rooms")
        .and(warp::post())
        .and(body_limited())
        .then(move |body: Bytes| {
            let rooms = service.clone();
            async move {
                reply(
                    async {
                        let request: CreateRoom = parse_json(&body)?;
                        let room_id = rooms
                            .create_room(&request.creator, request.room_version)
                            .await?;
                        Ok(ok_json(&serde_json::json!({ "room_id": room_id })))
                    }
                    .await,
                )
            }
        });
    let service = rooms.clone();
    let send = warp::path!("rooms" / String / "send")
        .and(warp::post())
        .and(body_limited())
        .then(move |room: String, body: Bytes| {
            let rooms = service.clone();
            async move {
                reply(
                    async {
                        let room = room_id(&room)?;
                        let request: SendEvent = parse_json(&body)?;
                        let event_id = rooms
                            .send(
                                &room,
                                &request.sender,
                                &request.kind,
                                request.state_key.as_deref(),
                                request.content,
                            )
                            .await?;
                        Ok(ok_json(&serde_json::json!({ "event_id": event_id })))
                    }
                    .await,
                )
            }
        });
    let view = warp::path!("rooms" / String)
        .and(warp::get())
        .map(move |room: String| {
            reply(
                room_id(&room)
                    .and_then(|room| rooms.view(&room))
                    .map(|view| {
                        let mut state: Vec<(String, String, String)> = view
                            .state
                            .into_iter()
                            .map(|((kind, key), id)| (kind.to_string(), key, id.to_string()))
                            .collect();
                        state.sort();
                        ok_json(&serde_json::json!({
                            "room_version": view.version,
                            "state": state,
                            "extremities": view.extremities,
                            "timeline": view.timeline,
                        }))
                    }),
            )
        });
    let join = warp::path!("rooms" / String / "join")
        .and(warp::post())
        .and(body_limited())
        .then(move |room: String, body: Bytes| {
            let membership = membership.clone();
            async move {
                reply(
                    async {
                        let room = room_id(&room)?;
                        let request: JoinRoom = parse_json(&body)?;
                        let event_id = membership
                            .join(&room, &request.user, &request.servers)
                            .await?;
                        Ok(ok_json(&serde_json::json!({ "event_id": event_id })))
                    }
                    .await,
                )
            }
        });
    create
        .or(send)
        .unify()
        .or(join)
        .unify()
        .or(view)
        .unify()
        .boxed()
}
