//! `GET /_matrix/federation/v1/state_ids/{roomId}?event_id=`: the IDs of
//! the state before an event and of its auth chain.
//! Spec: server-server-api.md "Retrieving events"; events.yaml.

use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response};

use super::{room_get, state_at, Services};
use crate::http_util::ok_json;

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    room_get(
        services,
        "state_ids",
        true,
        |services, room, query, request| {
            let (state, auth_chain) = state_at(services, &room, query, &request.origin)?;
            Ok(ok_json(
                &json!({ "pdu_ids": state, "auth_chain_ids": auth_chain }),
            ))
        },
    )
}
