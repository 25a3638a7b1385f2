//! `PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}`.
//! Spec: server-server-api.md "Leaving Rooms (Rejecting Invites)"; leaving-v2.yaml.

use ruma::CanonicalJsonObject;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response};

use super::{room_event_put, Services};
use crate::http_util::{ok_json, parse_json};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    room_event_put(
        services,
        "v2",
        "send_leave",
        |services, room, event, request| async move {
            let object: CanonicalJsonObject = parse_json(&request.body)?;
            services
                .rooms
                .accept_membership(&room, &event, &request.origin, object, "leave")
                .await?;
            Ok(ok_json(&json!({})))
        },
    )
}
