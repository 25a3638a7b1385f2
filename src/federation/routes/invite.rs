//! `PUT /_matrix/federation/v2/invite/{roomId}/{eventId}`: another server
//! asks us to co-sign its invite of one of our users. The v1 endpoint,
//! which older servers still use, sends the bare event (its room state in
//! `unsigned.invite_room_state`) for a room of version 1 or 2 (it names
//! none; Synapse assumes 1 too) and is answered `[200, {"event": …}]`.
//! Spec: server-server-api.md "Inviting to a room"; invites-v2.yaml,
//! invites-v1.yaml.

use ruma::{CanonicalJsonObject, CanonicalJsonValue, EventId, RoomId, ServerName, UserId};
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{room_event_put, Services};
use crate::{
    error::{Error, Result},
    http_util::{ok_json, parse_json},
    rooms::membership::invite::InviteRequest,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    let v2 = room_event_put(
        services.clone(),
        "v2",
        "invite",
        |services, room, event, request| async move {
            let body: InviteRequest = parse_json(&request.body)?;
            let signed = receive(&services, &request.origin, &room, &event, body).await?;
            Ok(ok_json(
                &json!({ "event": CanonicalJsonValue::Object(signed) }),
            ))
        },
    );
    let v1 = room_event_put(
        services,
        "v1",
        "invite",
        |services, room, event, request| async move {
            let event_object: CanonicalJsonObject = parse_json(&request.body)?;
            let body = InviteRequest {
                room_version: "1".to_owned(),
                invite_room_state: invite_room_state(&event_object),
                event: event_object,
            };
            let signed = receive(&services, &request.origin, &room, &event, body).await?;
            Ok(ok_json(
                &json!([200, { "event": CanonicalJsonValue::Object(signed) }]),
            ))
        },
    );
    v2.or(v1).unify().boxed()
}

/// An invite of a user we have (an invite of anyone else would be kept
/// for nobody), checked and co-signed.
async fn receive(
    services: &Services,
    origin: &ServerName,
    room: &RoomId,
    event: &EventId,
    body: InviteRequest,
) -> Result<CanonicalJsonObject> {
    let invited = match body.event.get("state_key") {
        Some(CanonicalJsonValue::String(key)) => UserId::parse(key.as_str()).ok(),
        _ => None,
    };
    match invited {
        Some(user) if services.accounts.exists(&user)? => {}
        _ => return Err(Error::not_found("the invited user does not exist here")),
    }
    services
        .rooms
        .receive_invite(origin, room, event, body)
        .await
}

/// The stripped state a v1 invite carries in its `unsigned` section.
fn invite_room_state(event: &CanonicalJsonObject) -> Vec<CanonicalJsonObject> {
    let Some(CanonicalJsonValue::Object(unsigned)) = event.get("unsigned") else {
        return Vec::new();
    };
    let Some(CanonicalJsonValue::Array(state)) = unsigned.get("invite_room_state") else {
        return Vec::new();
    };
    state
        .iter()
        .filter_map(|e| match e {
            CanonicalJsonValue::Object(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}
