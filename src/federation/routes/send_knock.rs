//! `PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}`.
//! Spec: server-server-api.md "Knocking upon a room"; knocks.yaml.

use ruma::{CanonicalJsonObject, CanonicalJsonValue};
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{event_id, room_id, Services};
use crate::{
    error::Result,
    federation::auth::{authenticated, Authenticated},
    http_util::{ok_json, parse_json, reply},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "send_knock" / String / String)
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
        .accept_membership(&room, &event_id, &request.origin, object, "knock")
        .await?;
    let state: Vec<CanonicalJsonValue> = services
        .rooms
        .summary_state(&room)?
        .into_iter()
        .map(CanonicalJsonValue::Object)
        .collect();
    Ok(ok_json(&json!({ "knock_room_state": state })))
}
