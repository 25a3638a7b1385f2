//! `GET /_matrix/federation/v1/state/{roomId}?event_id=`: the state before
//! an event and its auth chain, as full PDUs.
//! Spec: server-server-api.md "Retrieving events"; events.yaml.

use std::collections::BTreeMap;

use warp::{filters::BoxedFilter, reply::Response};

use super::{load_events, room_get, state_at, Services};
use crate::http_util::ok_json;

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    room_get(services, "state", true, |services, room, query, request| {
        let (state, auth_chain) = state_at(services, &room, query, &request.origin)?;
        // Events embedded as stored, unparsed: a large room's state is big.
        Ok(ok_json(&BTreeMap::from([
            ("pdus", load_events(services, &state)?),
            ("auth_chain", load_events(services, &auth_chain)?),
        ])))
    })
}
