//! `PUT /_matrix/federation/v2/invite/{roomId}/{eventId}`: another server
//! asks us to co-sign its invite of one of our users.
//! Spec: server-server-api.md "Inviting to a room"; invites-v2.yaml.

use ruma::CanonicalJsonValue;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response};

use super::{room_event_put, Services};
use crate::{
    http_util::{ok_json, parse_json},
    rooms::membership::invite::InviteRequest,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    room_event_put(
        services,
        "v2",
        "invite",
        |services, room, event, request| async move {
            let body: InviteRequest = parse_json(&request.body)?;
            let signed = services
                .rooms
                .receive_invite(&request.origin, &room, &event, body)
                .await?;
            Ok(ok_json(
                &json!({ "event": CanonicalJsonValue::Object(signed) }),
            ))
        },
    )
}
