//! `PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}`.
//! Spec: server-server-api.md "Joining Rooms"; joins-v2.yaml.

use ruma::CanonicalJsonObject;
use serde_json::value::RawValue;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    error::Result,
    federation::auth::Authenticated,
    http_util::{ok_json, parse_json, raw_query, reply},
    peers::SendJoinAnswer,
    request::{event_id, params, room_id},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v2" / "send_join" / String / String)
        .and(warp::put())
        .and(raw_query())
        .and(admitted(&services))
        .then(
            move |room: String, event: String, query: String, request: Authenticated| {
                let services = services.clone();
                async move { reply(handle(&services, &room, &event, &query, request).await) }
            },
        )
        .boxed()
}

async fn handle(
    services: &Services,
    room: &str,
    event: &str,
    query: &str,
    request: Authenticated,
) -> Result<Response> {
    let room = room_id(room)?;
    let event_id = event_id(event)?;
    let object: CanonicalJsonObject = parse_json(&request.body)?;
    let omit_members = params(query, "omit_members")
        .first()
        .is_some_and(|v| v == "true");
    let answer = services
        .rooms
        .send_join(&room, &event_id, &request.origin, object, omit_members)
        .await?;
    Ok(ok_json(&SendJoinAnswer::<Box<RawValue>> {
        origin: services.keys.server_name().to_string(),
        state: answer.state,
        auth_chain: answer.auth_chain,
        members_omitted: answer.members_omitted,
        servers_in_room: answer.servers_in_room,
        event: answer.event,
    }))
}
