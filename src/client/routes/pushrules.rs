//! `GET /pushrules/`: the spec's default rules, which clients such as
//! Element need before they show notifications. Changing them is not
//! supported yet. Spec: client-server-api "Push Rules"; pushrules.yaml.

use ruma::push::Ruleset;
use serde_json::json;
use warp::Filter;

use crate::{
    client::{session, v3, ClientServices, Route},
    http_util::ok_json,
    store::accounts::Session,
};

pub fn route(services: ClientServices) -> Route {
    v3().and(warp::path("pushrules"))
        .and(warp::path::end().or(warp::path!("global")).unify())
        .and(warp::get())
        .and(session(services.accounts))
        .map(|session: Session| {
            ok_json(&json!({ "global": Ruleset::server_default(&session.user_id) }))
        })
        .boxed()
}
