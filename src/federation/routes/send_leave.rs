//! `PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}`.
//! Spec: server-server-api.md "Leaving Rooms (Rejecting Invites)"; leaving-v2.yaml.

use ruma::CanonicalJsonObject;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{event_id, room_id, Services};
use crate::{
    error::Result,
    federation::auth::{authenticated, Authenticated},
    http_util::{ok_json, parse_json, reply},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v2" / "send_leave" / String / String)
        .and(warp::put())
        .and(authenticated(
            services.keys.clone(),
            services.client.clone(),
        ))
        .then(move |room: String, event: String, request: Authenticated| {
            let services = services.clone();
            async move { reply(handle(&services, &room, &event, request).await) }
        })
        .boxed()
}

async fn handle(
    services: &Services,
    room: &str,
    event: &str,
    request: Authenticated,
) -> Result<Response> {
    let room = room_id(room)?;
    let event_id = event_id(event)?;
    let object: CanonicalJsonObject = parse_json(&request.body)?;
    services
        .rooms
        .accept_membership(&room, &event_id, &request.origin, object, "leave")
        .await?;
    Ok(ok_json(&json!({})))
}
