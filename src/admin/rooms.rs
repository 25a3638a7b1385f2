//! Admin endpoints that drive rooms directly as any local user (tests and
//! benches use them to set rooms up without logging in): create a room, send an event as a local user, join, leave, knock and
//! invite (across servers too), read a room's state and a user's pending
//! invites and knocks.

use std::{future::Future, sync::Arc};

use bytes::Bytes;
use ruma::{CanonicalJsonValue, OwnedRoomId, OwnedServerName, OwnedUserId, RoomVersionId};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};
use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    error::Result,
    http_util::{body_limited, ok_json, parse_json, reply},
    rooms::{
        membership::{Content, MembershipService},
        RoomService,
    },
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
struct Leave {
    user: OwnedUserId,
    /// Residents to reject an invite through (the inviter's server is tried too).
    #[serde(default)]
    servers: Vec<OwnedServerName>,
}

#[derive(Deserialize)]
struct Knock {
    user: OwnedUserId,
    servers: Vec<OwnedServerName>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct Invite {
    sender: OwnedUserId,
    user: OwnedUserId,
}

#[derive(Deserialize)]
struct SendEvent {
    sender: OwnedUserId,
    #[serde(rename = "type")]
    kind: String,
    state_key: Option<String>,
    content: serde_json::Value,
}

use crate::request::room_id;

/// `POST rooms/{roomId}/{action}` with a JSON body of type `T`.
fn room_action<T, F, Fut>(action: &'static str, handler: F) -> BoxedFilter<(Response,)>
where
    T: DeserializeOwned + Send + 'static,
    F: Fn(OwnedRoomId, T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Value>> + Send,
{
    warp::path("rooms")
        .and(warp::path::param::<String>())
        .and(warp::path(action))
        .and(warp::path::end())
        .and(warp::post())
        .and(body_limited())
        .then(move |room: String, body: Bytes| {
            let handler = handler.clone();
            async move {
                reply(
                    async {
                        let room = room_id(&room)?;
                        let request: T = parse_json(&body)?;
                        Ok(ok_json(&handler(room, request).await?))
                    }
                    .await,
                )
            }
        })
        .boxed()
}

/// `POST rooms`, `POST rooms/{roomId}/{send,join,leave,knock,invite}`,
/// `GET rooms/{roomId}`, `GET users/{userId}/pending`, `GET events/{eventId}`,
/// under the
/// authenticated admin prefix.
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
                        Ok(ok_json(&json!({ "room_id": room_id })))
                    }
                    .await,
                )
            }
        });
    let service = rooms.clone();
    let send = room_action("send", move |room, request: SendEvent| {
        let rooms = service.clone();
        async move {
            let event_id = rooms
                .send(
                    &room,
                    &request.sender,
                    &request.kind,
                    request.state_key.as_deref(),
                    request.content,
                )
                .await?;
            Ok(json!({ "event_id": event_id }))
        }
    });
    let service = membership.clone();
    let join = room_action("join", move |room, request: JoinRoom| {
        let membership = service.clone();
        async move {
            let event_id = membership
                .join(&room, &request.user, &request.servers, &Content::new())
                .await?;
            Ok(json!({ "event_id": event_id }))
        }
    });
    let service = membership.clone();
    let leave = room_action("leave", move |room, request: Leave| {
        let membership = service.clone();
        async move {
            let event_id = membership
                .leave(&room, &request.user, &request.servers, &Content::new())
                .await?;
            Ok(json!({ "event_id": event_id }))
        }
    });
    let service = membership.clone();
    let knock = room_action("knock", move |room, request: Knock| {
        let membership = service.clone();
        async move {
            let mut content = Content::new();
            if let Some(reason) = request.reason {
                content.insert("reason".into(), reason.into());
            }
            let event_id = membership
                .knock(&room, &request.user, &request.servers, &content)
                .await?;
            Ok(json!({ "event_id": event_id }))
        }
    });
    let invite = room_action("invite", move |room, request: Invite| {
        let membership = membership.clone();
        async move {
            let event_id = membership
                .invite(&room, &request.sender, &request.user, false, None)
                .await?;
            Ok(json!({ "event_id": event_id }))
        }
    });
    let service = rooms.clone();
    let pending = warp::path!("users" / String / "pending")
        .and(warp::get())
        .map(move |user: String| {
            reply(
                crate::request::user_id(&user)
                    .and_then(|user| service.pending_of(&user))
                    .map(|pending| ok_json(&json!({ "pending": pending }))),
            )
        });
    let service = rooms.clone();
    let event = warp::path!("events" / String)
        .and(warp::get())
        .map(move |event: String| {
            reply(
                crate::request::event_id(&event)
                    .and_then(|id| service.event(None, &id))
                    .map(|(meta, json)| {
                        ok_json(&json!({
                            "event": CanonicalJsonValue::Object(json),
                            "meta": meta,
                        }))
                    }),
            )
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
                        ok_json(&json!({
                            "room_version": view.version,
                            "state": state,
                            "extremities": view.extremities,
                            "timeline": view.timeline,
                            "partial_state": view.partial,
                        }))
                    }),
            )
        });
    create
        .or(send)
        .unify()
        .or(join)
        .unify()
        .or(leave)
        .unify()
        .or(knock)
        .unify()
        .or(invite)
        .unify()
        .or(pending)
        .unify()
        .or(event)
        .unify()
        .or(view)
        .unify()
        .boxed()
}
