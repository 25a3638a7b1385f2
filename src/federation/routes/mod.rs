//! Federation listener routes, one file per spec endpoint.

mod backfill;
mod event;
mod event_auth;
mod exchange_third_party_invite;
mod get_missing_events;
mod hierarchy;
mod invite;
mod key_query;
mod make_join;
mod make_knock;
mod make_leave;
mod media_download;
mod openid_userinfo;
mod public_rooms;
mod query_directory;
mod query_profile;
mod send;
mod send_join;
mod send_knock;
mod send_leave;
mod server_keys;
mod state;
mod state_ids;
mod third_party_onbind;
mod timestamp_to_event;
mod user_devices;
mod user_keys;
mod version;
pub mod well_known;

use std::sync::Arc;

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, OwnedEventId, OwnedRoomId, RoomId, ServerName,
};
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::auth::{authenticated, Authenticated};
use crate::{
    blocking::reading_much,
    error::{Error, Result},
    http_util::{raw_query, reply},
    keys::KeyService,
    net::https::HttpsClient,
    request::{event_id, parsed, room_id, Query},
    store::rooms::EventMeta,
};

pub use crate::services::Services;

/// Every route the federation listener serves.
pub fn routes(services: Services) -> BoxedFilter<(Response,)> {
    let keys = services.keys.clone();
    version::route()
        .or(server_keys::route(keys.clone()))
        .unify()
        .or(key_query::get_route(
            keys.clone(),
            services.strangers.clone(),
        ))
        .unify()
        .or(key_query::post_route(keys, services.strangers.clone()))
        .unify()
        .or(send::route(services.clone()))
        .unify()
        .or(make_join::route(services.clone()))
        .unify()
        .or(send_join::route(services.clone()))
        .unify()
        .or(make_leave::route(services.clone()))
        .unify()
        .or(send_leave::route(services.clone()))
        .unify()
        .or(make_knock::route(services.clone()))
        .unify()
        .or(send_knock::route(services.clone()))
        .unify()
        .or(invite::route(services.clone()))
        .unify()
        .or(exchange_third_party_invite::route(services.clone()))
        .unify()
        .or(third_party_onbind::route(services.clone()))
        .unify()
        .or(event::route(services.clone()))
        .unify()
        .or(state_ids::route(services.clone()))
        .unify()
        .or(state::route(services.clone()))
        .unify()
        .or(event_auth::route(services.clone()))
        .unify()
        .or(backfill::route(services.clone()))
        .unify()
        .or(get_missing_events::route(services.clone()))
        .unify()
        .or(timestamp_to_event::route(services.clone()))
        .unify()
        .or(query_directory::route(services.clone()))
        .unify()
        .or(query_profile::route(services.clone()))
        .unify()
        .or(user_devices::route(services.clone()))
        .unify()
        .or(user_keys::routes(services.clone()))
        .unify()
        .or(public_rooms::routes(services.clone()))
        .unify()
        .or(hierarchy::route(services.clone()))
        .unify()
        .or(openid_userinfo::route(services.clone()))
        .unify()
        .or(media_download::routes(services.clone()))
        .unify()
        .recover(answer_own_errors)
        .unify()
        .or(unknown_federation_endpoint(
            services.keys.clone(),
            services.client.clone(),
        ))
        .unify()
        .boxed()
}

/// An authenticated request, once its origin has a free slot (see
/// [`crate::inbound::admission`]); refused with 429 when too many of
/// the origin's requests wait already.
fn admitted(
    services: &Services,
) -> impl Filter<Extract = (Authenticated,), Error = warp::Rejection> + Clone {
    let admission = services.admission.clone();
    authenticated(services.keys.clone(), services.client.clone()).and_then(
        move |request: Authenticated| {
            let admission = admission.clone();
            async move {
                request
                    .admitted_by(&admission)
                    .await
                    .map_err(warp::reject::custom)
            }
        },
    )
}

/// A route's own refusal (a bad signature, a bad parameter) is the
/// answer: trying the catch-all below as well would read a body the
/// route already took (warp logs "request body already taken").
async fn answer_own_errors(rejection: warp::Rejection) -> Result<Response, warp::Rejection> {
    match rejection.find::<Error>() {
        Some(error) => Ok(error.clone().into_response()),
        None => Err(rejection),
    }
}

/// Any other `/_matrix/federation/…` path is authenticated first and then
/// answered `M_UNRECOGNIZED`: an unauthenticated caller learns nothing
/// about which endpoints exist.
/// Spec: server-server-api.md "Unsupported endpoints".
fn unknown_federation_endpoint(
    keys: Arc<KeyService>,
    client: Arc<HttpsClient>,
) -> BoxedFilter<(Response,)> {
    warp::path("_matrix")
        .and(warp::path("federation"))
        .and(authenticated(keys, client))
        .map(|request: super::auth::Authenticated| {
            tracing::debug!(origin = %request.origin, "unrecognized federation endpoint");
            Error::unrecognized("Unrecognized request").into_response()
        })
        .boxed()
}

/// `GET /_matrix/federation/v1/query/{kind}?…`, authenticated.
fn query_get<F, Fut>(services: Services, kind: &'static str, handle: F) -> BoxedFilter<(Response,)>
where
    F: Fn(Services, Query) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response>> + Send,
{
    warp::path("_matrix")
        .and(warp::path("federation"))
        .and(warp::path("v1"))
        .and(warp::path("query"))
        .and(warp::path(kind))
        .and(warp::path::end())
        .and(warp::get())
        .and(raw_query())
        .and(admitted(&services))
        .then(move |query: String, _: Authenticated| {
            let (services, handle) = (services.clone(), handle.clone());
            async move { reply(handle(services, Query::parse(&query)).await) }
        })
        .boxed()
}

/// `GET /_matrix/federation/v1/{endpoint}/{roomId}?…`, authenticated,
/// with the room parsed before `handle` runs; `reads_much` handlers run
/// off the async workers (see [`reading_much`]).
fn room_get<F>(
    services: Services,
    endpoint: &'static str,
    reads_much: bool,
    handle: F,
) -> BoxedFilter<(Response,)>
where
    F: Fn(&Services, OwnedRoomId, &Query, &Authenticated) -> Result<Response>
        + Clone
        + Send
        + Sync
        + 'static,
{
    warp::path("_matrix")
        .and(warp::path("federation"))
        .and(warp::path("v1"))
        .and(warp::path(endpoint))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(raw_query())
        .and(admitted(&services))
        .map(move |room: String, query: String, request: Authenticated| {
            let query = Query::parse(&query);
            let run = || handle(&services, room_id(&room)?, &query, &request);
            reply(if reads_much { reading_much(run) } else { run() })
        })
        .boxed()
}

/// `PUT /_matrix/federation/{version}/{endpoint}/{roomId}/{eventId}`,
/// authenticated, with both IDs parsed before `handle` runs.
fn room_event_put<F, Fut>(
    services: Services,
    version: &'static str,
    endpoint: &'static str,
    handle: F,
) -> BoxedFilter<(Response,)>
where
    F: Fn(Services, OwnedRoomId, OwnedEventId, Authenticated) -> Fut
        + Clone
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = Result<Response>> + Send,
{
    warp::path("_matrix")
        .and(warp::path("federation"))
        .and(warp::path(version))
        .and(warp::path(endpoint))
        .and(warp::path::param::<String>())
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::put())
        .and(admitted(&services))
        .then(move |room: String, event: String, request: Authenticated| {
            let (services, handle) = (services.clone(), handle.clone());
            async move {
                reply(
                    async {
                        let (room, event) = (room_id(&room)?, event_id(&event)?);
                        handle(services, room, event, request).await
                    }
                    .await,
                )
            }
        })
        .boxed()
}

/// An event `origin` may see, or 403/404: unknown events, events of
/// another room and events the server may not see are refused, and so is
/// a server the room's ACL denies.
fn visible_event(
    services: &Services,
    room: Option<&RoomId>,
    id: &EventId,
    origin: &ServerName,
) -> Result<(EventMeta, CanonicalJsonObject)> {
    let (meta, json) = services.rooms.event(room, id)?;
    services.rooms.check_acl(&meta.room_id, origin)?;
    if !services.rooms.server_may_see(&meta, origin)? {
        return Err(Error::forbidden(format!("{origin} may not see {id}")));
    }
    Ok((meta, json))
}

/// `?event_id=` of a state request: the state before it and its auth chain.
fn state_at(
    services: &Services,
    room: &RoomId,
    query: &Query,
    origin: &ServerName,
) -> Result<(Vec<OwnedEventId>, Vec<OwnedEventId>)> {
    let event: OwnedEventId = parsed("event_id", query.required("event_id")?)?;
    let (meta, _) = visible_event(services, Some(room), &event, origin)?;
    let state = services.rooms.state_ids_before(&meta)?;
    let chain = services.rooms.auth_chain(room, &state)?;
    Ok((state, chain))
}

fn load_events(
    services: &Services,
    ids: &[OwnedEventId],
) -> Result<Vec<Box<serde_json::value::RawValue>>> {
    ids.iter().map(|id| services.rooms.event_raw(id)).collect()
}

/// The events among `ids` that `origin` may see, as PDUs.
fn visible_pdus(
    services: &Services,
    ids: &[OwnedEventId],
    origin: &ServerName,
) -> Result<Vec<CanonicalJsonValue>> {
    let mut pdus = Vec::new();
    for id in ids {
        let (meta, json) = services.rooms.event(None, id)?;
        if services.rooms.server_may_see(&meta, origin)? {
            pdus.push(CanonicalJsonValue::Object(json));
        }
    }
    Ok(pdus)
}
