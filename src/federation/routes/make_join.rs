//! `GET /_matrix/federation/v1/make_join/{roomId}/{userId}?ver=…`, and the
//! template handler `make_leave` and `make_knock` share with it.
//! Spec: server-server-api.md "Joining Rooms"; joins-v1.yaml.

use ruma::CanonicalJsonValue;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    error::Result,
    federation::auth::Authenticated,
    http_util::{ok_json, raw_query, reply},
    request::{params, room_id},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    template_route(services, "make_join", "join", true)
}

/// `GET /_matrix/federation/v1/{endpoint}/{roomId}/{userId}`: an unsigned
/// `membership` event for the user, with the room's version. `versioned`
/// endpoints take the other server's supported versions as `ver`.
pub(super) fn template_route(
    services: Services,
    endpoint: &'static str,
    membership: &'static str,
    versioned: bool,
) -> BoxedFilter<(Response,)> {
    warp::path("_matrix")
        .and(warp::path("federation"))
        .and(warp::path("v1"))
        .and(warp::path(endpoint))
        .and(warp::path::param::<String>())
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(raw_query())
        .and(admitted(&services))
        .then(
            move |room: String, user: String, query: String, request: Authenticated| {
                let services = services.clone();
                async move {
                    let versions = versioned.then(|| params(&query, "ver"));
                    reply(handle(&services, &room, &user, membership, versions, request).await)
                }
            },
        )
        .boxed()
}

async fn handle(
    services: &Services,
    room: &str,
    user: &str,
    membership: &str,
    versions: Option<Vec<String>>,
    request: Authenticated,
) -> Result<Response> {
    let room = room_id(room)?;
    let user = crate::request::user_id(user)?;
    let (event, version) = services
        .rooms
        .make_membership(
            &room,
            &user,
            &request.origin,
            membership,
            versions.as_deref(),
        )
        .await?;
    Ok(ok_json(&json!({
        "room_version": version,
        "event": CanonicalJsonValue::Object(event),
    })))
}
