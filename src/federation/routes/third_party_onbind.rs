//! `PUT /_matrix/federation/v1/3pid/onbind`: an identity server tells us
//! one of our users bound an address that had pending invites. Not signed
//! (identity servers have no server keys): whatever it asks is only acted
//! on once the inviter's server has checked the identity server's
//! signature on each invite.
//! Spec: server-server-api.md "Third-party invites"; third_party_invite.yaml.

use bytes::Bytes;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::Services;
use crate::{
    error::Result,
    http_util::{body_limited, ok_json, parse_json, reply},
    rooms::membership::third_party_invite::Bind,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "3pid" / "onbind")
        .and(warp::put())
        .and(body_limited())
        .then(move |body: Bytes| {
            let services = services.clone();
            async move { reply(handle(&services, &body).await) }
        })
        .boxed()
}

async fn handle(services: &Services, body: &[u8]) -> Result<Response> {
    let bind: Bind = parse_json(body)?;
    services.membership.on_bind(bind).await?;
    Ok(ok_json(&json!({})))
}
