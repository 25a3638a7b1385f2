//! `POST /join/{roomIdOrAlias}` and `POST /rooms/{roomId}/join`: here when
//! one of our users is in the room, else through a resident server.
//! Spec: client-server-api "Joining rooms"; joining.yaml.

use bytes::Bytes;
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedServerName};
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, percent_decode, raw_query},
    request::{params, room_id},
    rooms::membership::Content,
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let by_id_or_alias = services.clone();
    let by_target = v3()
        .and(warp::path!("join" / String))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .and(body_limited())
        .then(
            move |target: String, session: Session, query: String, bytes: Bytes| {
                let services = by_id_or_alias.clone();
                async move { respond(join(services, session, target, query, bytes)).await }
            },
        );
    let room_join = v3()
        .and(warp::path!("rooms" / String / "join"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .and(body_limited())
        .then(
            move |room: String, session: Session, query: String, bytes: Bytes| {
                let services = services.clone();
                async move { respond(join(services, session, room, query, bytes)).await }
            },
        );
    by_target.or(room_join).unify().boxed()
}

async fn join(
    services: Services,
    session: Session,
    target: String,
    query: String,
    bytes: Bytes,
) -> Result<Value> {
    // The body's fields (a reason, or anything else) go into the member
    // event, as Synapse does; third_party_signed is not supported.
    let content: Content = body(&bytes)?;
    for field in ["reason", "displayname", "avatar_url"] {
        if content.get(field).is_some_and(|v| !v.is_string()) {
            return Err(Error::bad_json(format!("{field} must be a string")));
        }
    }
    let (room, servers) = resolve_target(&services, &target, &query).await?;
    services.user_limits.join(&session.user_id)?;
    services
        .membership
        .join(&room, &session.user_id, &servers, &content)
        .await?;
    // Joining an upgraded room's replacement carries the user's tags and
    // push rules over.
    if let Some(old) = services.rooms.predecessor(&room)? {
        services
            .accounts
            .carry_over_room(&services.rooms, &session.user_id, &old, &room)?;
    }
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
        let resolved = services.resolve_alias(&alias, None).await?;
        servers.extend(resolved.servers);
        resolved.room_id
    } else {
        room_id(target)?
    };
    Ok((room, servers))
}
