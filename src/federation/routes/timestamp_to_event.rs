//! `GET /_matrix/federation/v1/timestamp_to_event/{roomId}?ts=…&dir=f|b`.
//! Spec: server-server-api.md "Retrieving events"; events.yaml.

use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response};

use super::{room_get, Services};
use crate::{http_util::ok_json, request::time_and_direction, rooms::reads::query::TimeAsker};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    room_get(
        services,
        "timestamp_to_event",
        false,
        |services, room, query, request| {
            let (ts, forward) = time_and_direction(query)?;
            let (event_id, origin_server_ts) = services.rooms.event_at_time(
                &room,
                ts,
                forward,
                TimeAsker::Server(&request.origin),
            )?;
            Ok(ok_json(&json!({
                "event_id": event_id,
                "origin_server_ts": origin_server_ts,
            })))
        },
    )
}
