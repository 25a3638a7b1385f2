//! `POST /logout` and `POST /logout/all`. Spec: client-server-api "Logout".

use serde_json::json;
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let accounts = services.accounts.clone();
    let one = v3()
        .and(warp::path!("logout"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let accounts = accounts.clone();
            respond(async move { accounts.logout(&session).map(|()| json!({})) })
        });
    let accounts = services.accounts.clone();
    let all = v3()
        .and(warp::path!("logout" / "all"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let accounts = accounts.clone();
            respond(async move { accounts.logout_all(&session.user_id).map(|()| json!({})) })
        });
    one.or(all).unify().boxed()
}
