//! `GET`/`PUT`/`DELETE /directory/room/{roomAlias}` and
//! `GET /rooms/{roomId}/aliases` (this server's aliases of a room, for
//! whoever may read it).
//! Spec: client-server-api "Room aliases"; directory.yaml.

use bytes::Bytes;
use ruma::{OwnedRoomAliasId, OwnedRoomId};
use serde::Deserialize;
use serde_json::json;
use warp::Filter;

use crate::{
    client::{body, must_be_joined, respond, session, v3, Route, Services},
    error::Result,
    http_util::body_limited,
    listener::PeerIp,
    store::accounts::Session,
};

#[derive(Deserialize)]
struct PutAlias {
    room_id: OwnedRoomId,
}

fn alias(segment: &str) -> Result<OwnedRoomAliasId> {
    crate::request::id("roomAlias", segment)
}

pub fn routes(services: Services) -> Route {
    let get_services = services.clone();
    let get = v3()
        .and(warp::path!("directory" / "room" / String))
        .and(warp::get())
        .and(warp::ext::optional::<PeerIp>())
        .then(move |name: String, from: Option<PeerIp>| {
            let services = get_services.clone();
            respond(async move {
                // Without credentials: a stranger's lookup.
                let resolved = services.resolve_alias(&alias(&name)?, from).await?;
                Ok(json!(resolved))
            })
        });
    let put_services = services.clone();
    let put = v3()
        .and(warp::path!("directory" / "room" / String))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |name: String, session: Session, bytes: Bytes| {
            let services = put_services.clone();
            respond(async move {
                let alias = alias(&name)?;
                let request: PutAlias = body(&bytes)?;
                services.accounts.may_take_alias(&alias, &session)?;
                must_be_joined(&services.rooms, &request.room_id, &session.user_id)?;
                services
                    .directory
                    .put_alias(&alias, &request.room_id, &session.user_id)?;
                Ok(json!({}))
            })
        });
    let directory = services.directory.clone();
    let delete = v3()
        .and(warp::path!("directory" / "room" / String))
        .and(warp::delete())
        .and(session(services.accounts.clone()))
        .then(move |name: String, session: Session| {
            let directory = directory.clone();
            respond(async move {
                directory
                    .remove_alias(&alias(&name)?, &session.user_id)
                    .await?;
                Ok(json!({}))
            })
        });
    let room_aliases = v3()
        .and(warp::path!("rooms" / String / "aliases"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |room: String, session: Session| {
            let services = services.clone();
            respond(async move {
                let room = crate::request::room_id(&room)?;
                services.rooms.read_access(&room, &session.user_id)?;
                Ok(json!({ "aliases": services.directory.aliases_of(&room)? }))
            })
        });
    get.or(put)
        .unify()
        .or(delete)
        .unify()
        .or(room_aliases)
        .unify()
        .boxed()
}
