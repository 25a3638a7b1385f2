//! `GET /_matrix/federation/v1/backfill/{roomId}?v=…&limit=`: history
//! before (and including) the given events, newest first.
//! Spec: server-server-api.md "Backfilling and retrieving missing events"; backfill.yaml.

use std::collections::BTreeSet;

use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, visible_pdus, Services};
use crate::{
    blocking::reading_much,
    error::{Error, Result},
    federation::auth::Authenticated,
    http_util::{ok_json, raw_query, reply},
    request::{event_id, params, room_id},
    rooms::reads::query::{MAX_START_EVENTS, MAX_WALK},
    time::now_ms,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "backfill" / String)
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
    let from = params(query, "v")
        .iter()
        .map(|v| event_id(v))
        .collect::<Result<Vec<_>>>()?;
    if from.len() > MAX_START_EVENTS {
        return Err(Error::invalid_param(format!(
            "at most {MAX_START_EVENTS} v"
        )));
    }
    if from.is_empty() {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
            "v is required",
        ));
    }
    let limit = match params(query, "limit").first() {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| Error::invalid_param("limit must be a number"))?,
        None => {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_MISSING_PARAM",
                "limit is required",
            ))
        }
    };
    services.rooms.check_acl(&room, &request.origin)?;
    let ids = services
        .rooms
        .walk_back(&room, &from, limit.min(MAX_WALK), &BTreeSet::new(), 0)?;
    Ok(ok_json(&json!({
        "origin": services.keys.server_name().as_str(),
        "origin_server_ts": now_ms(),
        "pdus": visible_pdus(services, &ids, &request.origin)?,
    })))
}
