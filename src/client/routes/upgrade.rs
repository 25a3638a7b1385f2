//! `POST /rooms/{roomId}/upgrade`: a room replaced by one of a newer
//! version. Spec: client-server-api "Room Upgrades"; room_upgrades.yaml.

use bytes::Bytes;
use ruma::{api::client::room::upgrade_room::v3::Response, OwnedUserId, RoomVersionId};
use serde::Deserialize;
use warp::Filter;

use crate::{
    client::{body, session, typed, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, reply},
    request::room_id,
    store::accounts::Session,
};

#[derive(Deserialize)]
struct UpgradeRequest {
    new_version: String,
    #[serde(default)]
    additional_creators: Vec<OwnedUserId>,
}

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("rooms" / String / "upgrade"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |room: String, session: Session, bytes: Bytes| {
            let services = services.clone();
            async move { reply(upgrade(&services, &room, &session, &bytes).await) }
        })
        .boxed()
}

async fn upgrade(
    services: &Services,
    room: &str,
    session: &Session,
    bytes: &Bytes,
) -> Result<warp::reply::Response> {
    let room = room_id(room)?;
    let request: UpgradeRequest = body(bytes)?;
    let version = RoomVersionId::try_from(request.new_version.as_str()).map_err(|e| {
        Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_UNSUPPORTED_ROOM_VERSION",
            format!("{:?}: {e}", request.new_version),
        )
    })?;
    let user = &session.user_id;
    let rooms = &services.rooms;
    let new = rooms
        .upgrade(&room, user, version, &request.additional_creators)
        .await?;
    services.directory.move_to(&room, &new, user).await?;
    // The upgrading user's tags and push rules follow the room (others'
    // when they join).
    services
        .accounts
        .carry_over_room(rooms, user, &room, &new)?;
    rooms.retire(&room, user, &new).await?;
    Ok(typed(Response::new(new)))
}
