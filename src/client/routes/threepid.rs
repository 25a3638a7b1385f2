//! Third-party identifiers (email, phone): hearth sends no email or text
//! messages, so none can be validated. Clients get the spec's answers
//! rather than 404 (the empty list is in `account.rs`):
//! `M_THREEPID_MEDIUM_NOT_SUPPORTED` for
//! a token request, `M_THREEPID_AUTH_FAILED` for adding or binding one,
//! and nothing to remove. Spec: client-server-api "Adding Account
//! Administrative Contact Information"; administrative_contact.yaml,
//! registration.yaml.

use serde_json::json;
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::Error,
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let request_token = v3()
        .and(
            warp::path!("account" / "3pid" / String / "requestToken")
                .or(warp::path!("register" / String / "requestToken"))
                .unify()
                .or(warp::path!(
                    "account" / "password" / String / "requestToken"
                ))
                .unify(),
        )
        .and(warp::post())
        .then(|medium: String| {
            respond(async move {
                Err(Error::new(
                    http::StatusCode::BAD_REQUEST,
                    "M_THREEPID_MEDIUM_NOT_SUPPORTED",
                    format!("this server does not send {medium} messages"),
                ))
            })
        });
    let add = v3()
        .and(
            warp::path!("account" / "3pid" / "add")
                .or(warp::path!("account" / "3pid" / "bind"))
                .unify()
                .or(warp::path!("account" / "3pid"))
                .unify(),
        )
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .then(|_: Session| {
            respond(async {
                Err(Error::new(
                    http::StatusCode::BAD_REQUEST,
                    "M_THREEPID_AUTH_FAILED",
                    "no third-party identifier has been validated on this server",
                ))
            })
        });
    let remove = v3()
        .and(
            warp::path!("account" / "3pid" / "delete")
                .or(warp::path!("account" / "3pid" / "unbind"))
                .unify(),
        )
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .then(|_: Session| {
            respond(async { Ok(json!({ "id_server_unbind_result": "no-support" })) })
        });
    request_token.or(add).unify().or(remove).unify().boxed()
}
