//! `PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}`, and the v1
//! endpoint older servers still use: the same checks, its answer wrapped
//! as `[200, answer]`, never with members omitted.
//! Spec: server-server-api.md "Joining Rooms"; joins-v2.yaml, joins-v1.yaml.

use ruma::{CanonicalJsonObject, OwnedEventId, OwnedRoomId};
use serde_json::{json, value::RawValue};
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, room_event_put, Services};
use crate::{
    error::Result,
    federation::auth::Authenticated,
    http_util::{ok_json, parse_json, raw_query, reply},
    peers::SendJoinAnswer,
    request::{event_id, params, room_id},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    let v2_services = services.clone();
    let v2 = warp::path!("_matrix" / "federation" / "v2" / "send_join" / String / String)
        .and(warp::put())
        .and(raw_query())
        .and(admitted(&services))
        .then(
            move |room: String, event: String, query: String, request: Authenticated| {
                let services = v2_services.clone();
                async move {
                    let omit_members = params(&query, "omit_members")
                        .first()
                        .is_some_and(|v| v == "true");
                    reply(
                        async {
                            let (room, event) = (room_id(&room)?, event_id(&event)?);
                            let answer =
                                handle(&services, room, event, request, omit_members).await?;
                            Ok(ok_json(&answer))
                        }
                        .await,
                    )
                }
            },
        );
    let v1 = room_event_put(
        services,
        "v1",
        "send_join",
        |services, room, event, request| async move {
            let answer = handle(&services, room, event, request, false).await?;
            Ok(ok_json(&json!([200, answer])))
        },
    );
    v2.or(v1).unify().boxed()
}

async fn handle(
    services: &Services,
    room: OwnedRoomId,
    event_id: OwnedEventId,
    request: Authenticated,
    omit_members: bool,
) -> Result<SendJoinAnswer<Box<RawValue>>> {
    let object: CanonicalJsonObject = parse_json(&request.body)?;
    let answer = services
        .rooms
        .send_join(&room, &event_id, &request.origin, object, omit_members)
        .await?;
    Ok(SendJoinAnswer::<Box<RawValue>> {
        origin: services.keys.server_name().to_string(),
        state: answer.state,
        auth_chain: answer.auth_chain,
        members_omitted: answer.members_omitted,
        servers_in_room: answer.servers_in_room,
        event: answer.event,
    })
}
