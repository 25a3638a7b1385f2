//! `PUT /_matrix/federation/v2/invite/{roomId}/{eventId}`: another server
//! asks us to co-sign its invite of one of our users.
//! Spec: server-server-api.md "Inviting to a room"; invites-v2.yaml.

use ruma::CanonicalJsonValue;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{event_id, room_id, Services};
use crate::{
    error::Result,
    federation::auth::{authenticated, Authenticated},
    http_util::{ok_json, parse_json, reply},
    rooms::service::InviteRequest,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v2" / "invite" / String / String)
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
    let body: InviteRequest = parse_json(&request.body)?;
    let signed = services
        .rooms
        .receive_invite(&request.origin, &room, &event_id, body)
        .await?;
    Ok(ok_json(
        &json!({ "event": CanonicalJsonValue::Object(signed) }),
    ))
}
