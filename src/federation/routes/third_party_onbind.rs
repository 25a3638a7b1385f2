//! `PUT /_matrix/federation/v1/3pid/onbind`: an identity server tells us
//! one of our users bound an address that had pending invites. Not signed
//! (identity servers have no server keys): whatever it asks is only acted
//! on once the inviter's server has checked the identity server's
//! signature on each invite.
//! Spec: server-server-api.md "Third-party invites"; third_party_invite.yaml.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::Services;
use crate::{
    error::{Error, Result},
    http_util::{body_limited, ok_json, parse_json, reply},
    listener::PeerIp,
    rooms::membership::third_party_invite::Bind,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "3pid" / "onbind")
        .and(warp::put())
        .and(warp::ext::optional::<PeerIp>())
        .and(body_limited())
        .then(move |from: Option<PeerIp>, body: Bytes| {
            let services = services.clone();
            async move { reply(handle(&services, from, &body).await) }
        })
        .boxed()
}

/// Each binding may make us ask other servers for up to
/// `MAX_BOUND_INVITES` invites: it is limited per address like any
/// request that makes us contact others, and all of it must be done
/// within this long.
const BIND_DEADLINE: Duration = Duration::from_secs(60);

async fn handle(services: &Services, from: Option<PeerIp>, body: &[u8]) -> Result<Response> {
    let bind: Bind = parse_json(body)?;
    let ours = bind.mxid.server_name() == services.keys.server_name();
    if ours && !services.accounts.exists(&bind.mxid)? {
        return Err(Error::not_found(format!(
            "{} is not a user here",
            bind.mxid
        )));
    }
    services.strangers.take(from)?;
    tokio::time::timeout(BIND_DEADLINE, services.membership.on_bind(bind))
        .await
        .map_err(|_| {
            Error::new(
                http::StatusCode::GATEWAY_TIMEOUT,
                "M_UNKNOWN",
                "the invites' servers did not answer in time",
            )
        })??;
    Ok(ok_json(&json!({})))
}
