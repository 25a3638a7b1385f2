//! `POST /_matrix/federation/v1/get_missing_events/{roomId}`: the events
//! between what a server has (`earliest_events`) and what it was sent
//! (`latest_events`), oldest first.
//! Spec: server-server-api.md "Backfilling and retrieving missing events"; events.yaml.

use std::collections::BTreeSet;

use ruma::OwnedEventId;
use serde::Deserialize;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, visible_pdus, Services};
use crate::{
    blocking::reading_much,
    error::{Error, Result},
    federation::auth::Authenticated,
    http_util::{ok_json, parse_json, reply},
    request::room_id,
    rooms::reads::query::{MAX_START_EVENTS, MAX_WALK},
};

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    earliest_events: Vec<OwnedEventId>,
    latest_events: Vec<OwnedEventId>,
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    min_depth: u64,
}

fn default_limit() -> usize {
    10
}

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "get_missing_events" / String)
        .and(warp::post())
        .and(admitted(&services))
        .map(move |room: String, request: Authenticated| {
            reply(reading_much(|| handle(&services, &room, &request)))
        })
        .boxed()
}

fn handle(services: &Services, room: &str, request: &Authenticated) -> Result<Response> {
    let room = room_id(room)?;
    let body: Request = parse_json(&request.body)?;
    if body.latest_events.len() > MAX_START_EVENTS {
        return Err(Error::invalid_param(format!(
            "at most {MAX_START_EVENTS} latest_events"
        )));
    }
    services.rooms.check_acl(&room, &request.origin)?;
    let mut starts = Vec::new();
    for latest in &body.latest_events {
        let (_, json) = services.rooms.event(Some(&room), latest)?;
        if let Some(ruma::CanonicalJsonValue::Array(prevs)) = json.get("prev_events") {
            starts.extend(prevs.iter().filter_map(|p| match p {
                ruma::CanonicalJsonValue::String(id) => OwnedEventId::try_from(id.as_str()).ok(),
                ruma::CanonicalJsonValue::Array(pair) => match pair.first() {
                    Some(ruma::CanonicalJsonValue::String(id)) => {
                        OwnedEventId::try_from(id.as_str()).ok()
                    }
                    _ => None,
                },
                _ => None,
            }));
        }
    }
    let stop: BTreeSet<OwnedEventId> = body.earliest_events.into_iter().collect();
    let mut ids = services.rooms.walk_back(
        &room,
        &starts,
        body.limit.min(MAX_WALK),
        &stop,
        body.min_depth,
    )?;
    ids.reverse();
    Ok(ok_json(
        &json!({ "events": visible_pdus(services, &ids, &request.origin)? }),
    ))
}
