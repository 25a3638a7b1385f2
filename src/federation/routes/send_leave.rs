//! `PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}`, and the v1
//! endpoint older servers still use (answered `[200, {}]`).
//! Spec: server-server-api.md "Leaving Rooms (Rejecting Invites)";
//! leaving-v2.yaml, leaving-v1.yaml.

use ruma::CanonicalJsonObject;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{room_event_put, Services};
use crate::http_util::{ok_json, parse_json};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    let [v2, v1] = [("v2", json!({})), ("v1", json!([200, {}]))].map(|(version, answer)| {
        room_event_put(
            services.clone(),
            version,
            "send_leave",
            move |services, room, event, request| {
                let answer = answer.clone();
                async move {
                    let object: CanonicalJsonObject = parse_json(&request.body)?;
                    services
                        .rooms
                        .accept_membership(&room, &event, &request.origin, object, "leave")
                        .await?;
                    Ok(ok_json(&answer))
                }
            },
        )
    });
    v2.or(v1).unify().boxed()
}
