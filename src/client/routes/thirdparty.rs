//! `GET /thirdparty/protocols`, `/thirdparty/protocol/{protocol}`,
//! `/thirdparty/location[/{protocol}]`, `/thirdparty/user[/{protocol}]`:
//! the networks bridged here, as the application services that serve
//! them describe them; lookups are passed to the one serving the protocol.
//! Spec: client-server-api "Third-party Networks";
//! application-service-api.md "Third-party networks".

use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::Error,
    http_util::{percent_decode, raw_query},
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let all = services.clone();
    let protocols = v3()
        .and(warp::path!("thirdparty" / "protocols"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |_: Session| {
            let services = all.clone();
            respond(async move { Ok(Value::Object(services.appservices.protocols().await)) })
        });
    let one = services.clone();
    let protocol = v3()
        .and(warp::path!("thirdparty" / "protocol" / String))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |protocol: String, _: Session| {
            let services = one.clone();
            respond(async move {
                let protocol = percent_decode(&protocol);
                services
                    .appservices
                    .protocols()
                    .await
                    .remove(&protocol)
                    .ok_or_else(|| Error::not_found(format!("no bridge for {protocol} here")))
            })
        });
    let lookups = v3()
        .and(warp::path("thirdparty"))
        .and(
            (warp::path("location").map(|| "location"))
                .or(warp::path("user").map(|| "user"))
                .unify(),
        )
        .and(warp::path::tail())
        .and(raw_query())
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(
            move |kind: &'static str, protocol: warp::path::Tail, query: String, _: Session| {
                let services = services.clone();
                respond(async move {
                    let protocol = percent_decode(protocol.as_str());
                    let protocol = (!protocol.is_empty()).then_some(protocol.as_str());
                    Ok(json!(
                        services
                            .appservices
                            .thirdparty(kind, protocol, &query)
                            .await
                    ))
                })
            },
        );
    protocols.or(protocol).unify().or(lookups).unify().boxed()
}
