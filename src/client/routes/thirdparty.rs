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
    http_util::{percent_decode, percent_encode, raw_query},
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
    let lookups =
        v3().and(warp::path("thirdparty"))
            .and(warp::path("location").or(warp::path("user")).unify())
            .and(warp::path::full())
            .and(warp::path::tail())
            .and(raw_query())
            .and(warp::get())
            .and(session(services.accounts.clone()))
            .then(
                move |full: warp::path::FullPath,
                      tail: warp::path::Tail,
                      query: String,
                      _: Session| {
                    let services = services.clone();
                    respond(async move {
                        Ok(lookup(&services, full.as_str(), tail.as_str(), &query).await)
                    })
                },
            );
    protocols.or(protocol).unify().or(lookups).unify().boxed()
}

/// A lookup in one protocol, asked of its application service; without a
/// protocol (a reverse lookup by alias or user ID), of each of them.
async fn lookup(services: &Services, full: &str, protocol: &str, query: &str) -> Value {
    let kind = if full.contains("/thirdparty/user") {
        "user"
    } else {
        "location"
    };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let protocols: Vec<String> = if protocol.is_empty() {
        services
            .appservices
            .protocols()
            .await
            .keys()
            .cloned()
            .collect()
    } else {
        vec![percent_decode(protocol)]
    };
    let mut found = Vec::new();
    for protocol in protocols {
        let path = if protocol.is_empty() || full.ends_with(kind) {
            format!("/_matrix/app/v1/thirdparty/{kind}{query}")
        } else {
            format!(
                "/_matrix/app/v1/thirdparty/{kind}/{}{query}",
                percent_encode(&protocol)
            )
        };
        if let Some(Value::Array(list)) = services.appservices.thirdparty(&protocol, &path).await {
            found.extend(list);
        }
    }
    json!(found)
}
