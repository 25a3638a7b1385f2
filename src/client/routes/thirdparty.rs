//! `GET /thirdparty/protocols`, `/thirdparty/protocol/{protocol}`,
//! `/thirdparty/location[/{protocol}]`, `/thirdparty/user[/{protocol}]`:
//! the networks bridged here. No bridges yet: no protocols, and nothing
//! found in them. Spec: client-server-api "Third-party Networks".

use serde_json::json;
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::Error,
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let protocols = v3()
        .and(warp::path!("thirdparty" / "protocols"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(|_: Session| respond(async { Ok(json!({})) }));
    let protocol = v3()
        .and(warp::path!("thirdparty" / "protocol" / String))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(|protocol: String, _: Session| {
            respond(async move { Err(Error::not_found(format!("no bridge for {protocol} here"))) })
        });
    let lookups = v3()
        .and(warp::path("thirdparty"))
        .and(warp::path("location").or(warp::path("user")).unify())
        .and(warp::path::tail())
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(|_, _: Session| respond(async { Ok(json!([])) }));
    protocols.or(protocol).unify().or(lookups).unify().boxed()
}
