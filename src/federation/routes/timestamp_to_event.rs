//! `GET /_matrix/federation/v1/timestamp_to_event/{roomId}?ts=…&dir=f|b`.
//! Spec: server-server-api.md "Retrieving events"; events.yaml.

use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response};

use super::{room_get, Services};
use crate::{error::Error, http_util::ok_json};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    room_get(
        services,
        "timestamp_to_event",
        false,
        |services, room, query, request| {
            let ts = query
                .required("ts")?
                .parse::<u64>()
                .map_err(|_| Error::invalid_param("ts must be a timestamp in milliseconds"))?;
            let forward = match query.required("dir")? {
                "f" => true,
                "b" => false,
                _ => return Err(Error::invalid_param("dir must be f or b")),
            };
            let (event_id, origin_server_ts) =
                services
                    .rooms
                    .event_at_time(&room, ts, forward, &request.origin)?;
            Ok(ok_json(&json!({
                "event_id": event_id,
                "origin_server_ts": origin_server_ts,
            })))
        },
    )
}
