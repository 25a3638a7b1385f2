//! `GET /_matrix/federation/v1/state/{roomId}?event_id=`: the state before
//! an event and its auth chain, as full PDUs.
//! Spec: server-server-api.md "Retrieving events"; events.yaml.

use std::collections::BTreeMap;

use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, load_events, state_at, Services};
use crate::{
    blocking::reading_much,
    error::Result,
    federation::auth::Authenticated,
    http_util::{ok_json, raw_query, reply},
    request::room_id,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "state" / String)
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
    // Events embedded as stored, unparsed: a large room's state is big.
    Ok(ok_json(&BTreeMap::from([
        ("pdus", load_events(services, &state)?),
        ("auth_chain", load_events(services, &auth_chain)?),
    ])))
}
