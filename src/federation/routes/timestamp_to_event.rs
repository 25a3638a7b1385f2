//! `GET /_matrix/federation/v1/timestamp_to_event/{roomId}?ts=…&dir=f|b`.
//! Spec: server-server-api.md "Retrieving events"; events.yaml.

use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    error::{Error, Result},
    federation::auth::Authenticated,
    http_util::{ok_json, raw_query, reply},
    request::{params, room_id},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "timestamp_to_event" / String)
        .and(warp::get())
        .and(raw_query())
        .and(admitted(&services))
        .map(move |room: String, query: String, request: Authenticated| {
            reply(handle(&services, &room, &query, &request))
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
    let missing = |name: &str| {
        Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
            format!("{name} is required"),
        )
    };
    let ts = params(query, "ts")
        .first()
        .ok_or_else(|| missing("ts"))?
        .parse::<u64>()
        .map_err(|_| Error::invalid_param("ts must be a timestamp in milliseconds"))?;
    let forward = match params(query, "dir").first().map(String::as_str) {
        Some("f") => true,
        Some("b") => false,
        Some(_) => return Err(Error::invalid_param("dir must be f or b")),
        None => return Err(missing("dir")),
    };
    let (event_id, origin_server_ts) =
        services
            .rooms
            .event_at_time(&room, ts, forward, &request.origin)?;
    Ok(ok_json(&json!({
        "event_id": event_id,
        "origin_server_ts": origin_server_ts,
    })))
}
