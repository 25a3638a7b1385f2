//! `POST /user/{userId}/openid/request_token`: a token another service
//! (an integration manager, a widget) checks with our federation
//! `/openid/userinfo` to learn who the user is.
//! Spec: client-server-api "OpenID"; openid.yaml.

use serde_json::json;
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::Error,
    http_util::body_limited,
    request::user_id,
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("user" / String / "openid" / "request_token"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |user: String, session: Session, _: bytes::Bytes| {
            let accounts = services.accounts.clone();
            respond(async move {
                if user_id(&user)? != session.user_id {
                    return Err(Error::forbidden("OpenID tokens are only for yourself"));
                }
                let (token, expires_in) = accounts.openid_token(&session.user_id)?;
                Ok(json!({
                    "access_token": token,
                    "token_type": "Bearer",
                    "matrix_server_name": session.user_id.server_name(),
                    "expires_in": expires_in,
                }))
            })
        })
        .boxed()
}
