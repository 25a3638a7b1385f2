//! `GET /_matrix/federation/v1/make_join/{roomId}/{userId}?ver=…`.
//! Spec: server-server-api.md "Joining Rooms"; joins-v1.yaml.

use ruma::{CanonicalJsonValue, OwnedUserId};
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{query_values, room_id, Services};
use crate::{
    error::{Error, Result},
    federation::auth::{authenticated, Authenticated},
    http_util::{ok_json, percent_decode, raw_query, reply},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "make_join" / String / String)
        .and(warp::get())
        .and(raw_query())
        .and(authenticated(
            services.keys.clone(),
            services.client.clone(),
        ))
        .then(
            move |room: String, user: String, query: String, request: Authenticated| {
                let services = services.clone();
                async move { reply(handle(&services, &room, &user, &query, request).await) }
            },
        )
        .boxed()
}

async fn handle(
    services: &Services,
    room: &str,
    user: &str,
    query: &str,
    request: Authenticated,
) -> Result<Response> {
    let room = room_id(room)?;
    let user = percent_decode(user);
    let user = OwnedUserId::try_from(user.as_str())
        .map_err(|e| Error::invalid_param(format!("{user:?} is not a user ID: {e}")))?;
    let versions = query_values(query, "ver");
    let (event, version) = services
        .rooms
        .make_join(&room, &user, &request.origin, &versions)
        .await?;
    Ok(ok_json(&json!({
        "room_version": version,
        "event": CanonicalJsonValue::Object(event),
    })))
}
