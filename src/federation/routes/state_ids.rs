//! `GET /_matrix/federation/v1/state_ids/{roomId}?event_id=`: the IDs of
//! the state before an event and of its auth chain.
//! Spec: server-server-api.md "Retrieving events"; events.yaml.

use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, state_at, Services};
use crate::{
    blocking::reading_much,
    error::Result,
    federation::auth::Authenticated,
    http_util::{ok_json, raw_query, reply},
    request::room_id,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "state_ids" / String)
        .and(warp::get())
        .and(raw_query())
        .and(admitted(&services))
        .map(move |room: String, query: String, request: Authenticated| {
            reply(reading_much(|| handle(&services, &room, &query, &request)))
        })
        .boxed()
}

fn handle(
    services: &Services,
    room: &str,
    query: &str,
    request: &Authenticated,
) -> Result<Response> {
    let room = room_id(room)?;
    let (state, auth_chain) = state_at(services, &room, query, &request.origin)?;
    Ok(ok_json(
        &json!({ "pdu_ids": state, "auth_chain_ids": auth_chain }),
    ))
}
