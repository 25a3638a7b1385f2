//! `GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}`: the full
//! auth chain of an event.
//! Spec: server-server-api.md "Retrieving events"; event_auth.yaml.

use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, load_events, visible_event, Services};
use crate::{
    blocking::reading_much,
    error::Result,
    federation::auth::Authenticated,
    http_util::{ok_json, reply},
    request::{event_id, room_id},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "event_auth" / String / String)
        .and(warp::get())
        .and(admitted(&services))
        .map(move |room: String, event: String, request: Authenticated| {
            reply(reading_much(|| handle(&services, &room, &event, &request)))
        })
        .boxed()
}

fn handle(
    services: &Services,
    room: &str,
    event: &str,
    request: &Authenticated,
) -> Result<Response> {
    let room = room_id(room)?;
    let event = event_id(event)?;
    visible_event(services, Some(&room), &event, &request.origin)?;
    let chain = services.rooms.auth_chain(&room, &[event])?;
    Ok(ok_json(&std::collections::BTreeMap::from([(
        "auth_chain",
        load_events(services, &chain)?,
    )])))
}
