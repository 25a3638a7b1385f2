//! `POST /refresh`: a new access token for a client that asked for a
//! refresh token at login. No access token is needed (it may have
//! expired). Spec: client-server-api "Refreshing access tokens";
//! refresh.yaml.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, v3, Route, Services},
    error::{Error, Result},
    http_util::body_limited,
};

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: Option<String>,
}

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("refresh"))
        .and(warp::post())
        .and(body_limited())
        .then(move |bytes: Bytes| {
            let services = services.clone();
            respond(async move { refresh(&services, &bytes) })
        })
        .boxed()
}

fn refresh(services: &Services, bytes: &Bytes) -> Result<Value> {
    let request: RefreshRequest = body(bytes)?;
    let token = request
        .refresh_token
        .ok_or_else(|| Error::missing_param("no refresh_token given"))?;
    let login = services.accounts.refresh(&token)?;
    let (refresh_token, lifetime) = login
        .refresh
        .ok_or_else(|| Error::internal("a refreshed session without a refresh token"))?;
    Ok(json!({
        "access_token": login.access_token,
        "refresh_token": refresh_token,
        "expires_in_ms": lifetime,
    }))
}
