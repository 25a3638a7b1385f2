//! `GET /_matrix/client/v1/room_summary/{roomIdOrAlias}?via=…`: what a
//! room is before joining it (name, topic, members, join rule, type,
//! encryption, version) and the user's membership.
//! Spec: client-server-api "GET /_matrix/client/v1/room_summary"; room_summary.yaml.

use ruma::{OwnedRoomAliasId, OwnedServerName};
use warp::Filter;

use crate::{
    client::{respond, session, Route, Services},
    http_util::{percent_decode, raw_query},
    request::{id, parsed, room_id, Query},
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    warp::path!("_matrix" / "client" / "v1" / "room_summary" / String)
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |target: String, session: Session, query: String| {
            let services = services.clone();
            respond(async move {
                let query = Query::parse(&query);
                let mut via = query
                    .all("via")
                    .map(|server| parsed::<OwnedServerName>("via", server))
                    .collect::<crate::error::Result<Vec<_>>>()?;
                let room = if percent_decode(&target).starts_with('#') {
                    let alias: OwnedRoomAliasId = id("roomIdOrAlias", &target)?;
                    let resolved = services.resolve_alias(&alias, None).await?;
                    // The alias's servers first: they hold the room.
                    via.splice(0..0, resolved.servers);
                    resolved.room_id
                } else {
                    room_id(&target)?
                };
                services
                    .hierarchy
                    .room_summary(&room, &session.user_id, &via)
                    .await
            })
        })
        .boxed()
}
