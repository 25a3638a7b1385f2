//! `PUT /_matrix/federation/v1/exchange_third_party_invite/{roomId}`: the
//! invited user's server asks us to issue our user's third-party invite.
//! Spec: server-server-api.md "Third-party invites"; third_party_invite.yaml.

use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    error::Result,
    federation::auth::Authenticated,
    http_util::{ok_json, parse_json, reply},
    request::room_id,
    rooms::membership::third_party_invite::PartialInvite,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "exchange_third_party_invite" / String)
        .and(warp::put())
        .and(admitted(&services))
        .then(move |room: String, request: Authenticated| {
            let services = services.clone();
            async move { reply(handle(&services, &room, &request).await) }
        })
        .boxed()
}

async fn handle(services: &Services, room: &str, request: &Authenticated) -> Result<Response> {
    let room = room_id(room)?;
    let invite: PartialInvite = parse_json(&request.body)?;
    services
        .membership
        .exchange_third_party_invite(&request.origin, &room, invite)
        .await?;
    Ok(ok_json(&json!({})))
}
