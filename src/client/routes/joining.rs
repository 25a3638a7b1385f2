//! `POST /join/{roomIdOrAlias}` and `POST /rooms/{roomId}/join`: here when
//! one of our users is in the room, else through a resident server.
//! Spec: client-server-api "Joining rooms"; joining.yaml.

use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedServerName};
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::Result,
    http_util::{percent_decode, raw_query},
    request::{params, room_id},
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let by_id_or_alias = services.clone();
    let by_target = v3()
        .and(warp::path!("join" / String))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |target: String, session: Session, query: String| {
            let services = by_id_or_alias.clone();
            async move { respond(join(services, session, target, query)).await }
        });
    let room_join = v3()
        .and(warp::path!("rooms" / String / "join"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |room: String, session: Session, query: String| {
            let services = services.clone();
            async move { respond(join(services, session, room, query)).await }
        });
    by_target.or(room_join).unify().boxed()
}

async fn join(
    services: Services,
    session: Session,
    target: String,
    query: String,
) -> Result<Value> {
    let (room, servers) = resolve_target(&services, &target, &query).await?;
    services
        .membership
        .join(&room, &session.user_id, &servers)
        .await?;
    Ok(json!({ "room_id": room }))
}

/// A `{roomIdOrAlias}` path segment and its `via`/`server_name`
/// parameters: the room, and the servers to reach it through (with those
/// the alias names).
pub(super) async fn resolve_target(
    services: &Services,
    target: &str,
    query: &str,
) -> Result<(OwnedRoomId, Vec<OwnedServerName>)> {
    let mut servers = Vec::new();
    for name in params(query, "via")
        .into_iter()
        .chain(params(query, "server_name"))
    {
        servers.push(crate::request::parsed("via", &name)?);
    }
    let decoded = percent_decode(target);
    let room = if decoded.starts_with('#') {
        let alias: OwnedRoomAliasId = crate::request::parsed("roomIdOrAlias", &decoded)?;
        let resolved = services.directory.resolve(&alias).await?;
        servers.extend(resolved.servers);
        resolved.room_id
    } else {
        room_id(target)?
    };
    Ok((room, servers))
}
