//! `PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}`.
//! Spec: server-server-api.md "Knocking upon a room"; knocks.yaml.

use ruma::{CanonicalJsonObject, CanonicalJsonValue};
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response};

use super::{room_event_put, Services};
use crate::http_util::{ok_json, parse_json};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    room_event_put(
        services,
        "v1",
        "send_knock",
        |services, room, event, request| async move {
            let object: CanonicalJsonObject = parse_json(&request.body)?;
            services
                .rooms
                .accept_membership(&room, &event, &request.origin, object, "knock")
                .await?;
            let state: Vec<CanonicalJsonValue> = services
                .rooms
                .summary_state(&room)?
                .into_iter()
                .map(CanonicalJsonValue::Object)
                .collect();
            Ok(ok_json(&json!({ "knock_room_state": state })))
        },
    )
}
