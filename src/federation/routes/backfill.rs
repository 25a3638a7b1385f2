//! `GET /_matrix/federation/v1/backfill/{roomId}?v=…&limit=`: history
//! before (and including) the given events, newest first.
//! Spec: server-server-api.md "Backfilling and retrieving missing events"; backfill.yaml.

use std::collections::BTreeSet;

use ruma::OwnedEventId;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response};

use super::{room_get, visible_pdus, Services};
use crate::{
    error::{Error, Result},
    http_util::ok_json,
    request::parsed,
    rooms::reads::query::{MAX_START_EVENTS, MAX_WALK},
    time::now_ms,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    room_get(
        services,
        "backfill",
        true,
        |services, room, query, request| {
            let from = query
                .all("v")
                .map(|v| parsed("v", v))
                .collect::<Result<Vec<OwnedEventId>>>()?;
            if from.len() > MAX_START_EVENTS {
                return Err(Error::invalid_param(format!(
                    "at most {MAX_START_EVENTS} v"
                )));
            }
            if from.is_empty() {
                query.required("v")?;
            }
            let limit = query
                .required("limit")?
                .parse::<usize>()
                .map_err(|_| Error::invalid_param("limit must be a number"))?;
            services.rooms.check_acl(&room, &request.origin)?;
            let ids =
                services
                    .rooms
                    .walk_back(&room, &from, limit.min(MAX_WALK), &BTreeSet::new(), 0)?;
            Ok(ok_json(&json!({
                "origin": services.keys.server_name().as_str(),
                "origin_server_ts": now_ms(),
                "pdus": visible_pdus(services, &ids, &request.origin)?,
            })))
        },
    )
}
