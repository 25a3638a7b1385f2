//! `GET /_matrix/federation/v1/event/{eventId}`: one event, as a
//! transaction holding it.
//! Spec: server-server-api.md "Retrieving events"; events.yaml.

use ruma::CanonicalJsonValue;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, visible_event, Services};
use crate::{
    error::Result,
    federation::auth::Authenticated,
    http_util::{ok_json, reply},
    time::now_ms,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "event" / String)
        .and(warp::get())
        .and(admitted(&services))
        .map(move |event: String, request: Authenticated| {
            reply(handle(&services, &event, &request))
        })
        .boxed()
}

fn handle(services: &Services, event: &str, request: &Authenticated) -> Result<Response> {
    let event_id = crate::request::event_id(event)?;
    let (_, json) = visible_event(services, None, &event_id, &request.origin)?;
    Ok(ok_json(&json!({
        "origin": services.keys.server_name().as_str(),
        "origin_server_ts": now_ms(),
        "pdus": [CanonicalJsonValue::Object(json)],
    })))
}
