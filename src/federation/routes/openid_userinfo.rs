//! `GET /_matrix/federation/v1/openid/userinfo?access_token=`: who an
//! OpenID token we issued belongs to. Not signed: the caller is any
//! service the user handed the token to.
//! Spec: server-server-api.md "OpenID"; openid.yaml.

use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::Services;
use crate::{
    error::Error,
    http_util::{ok_json, raw_query, reply},
    request::params,
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "openid" / "userinfo")
        .and(warp::get())
        .and(raw_query())
        .map(move |query: String| {
            let token = params(&query, "access_token").into_iter().next();
            reply(
                token
                    .ok_or_else(|| Error::unknown_token("access_token is required"))
                    .and_then(|token| services.accounts.openid_user(&token))
                    .map(|user| ok_json(&json!({ "sub": user }))),
            )
        })
        .boxed()
}
