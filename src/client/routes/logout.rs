//! `POST /logout` and `POST /logout/all`. Spec: client-server-api "Logout".

use serde_json::json;
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let one_services = services.clone();
    let one = v3()
        .and(warp::path!("logout"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let services = one_services.clone();
            respond(async move {
                let removed = services.accounts.logout(&session)?;
                services.devices_removed(&session.user_id, &removed)?;
                Ok(json!({}))
            })
        });
    let all = v3()
        .and(warp::path!("logout" / "all"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let services = services.clone();
            respond(async move {
                let removed = services.accounts.logout_all(&session.user_id)?;
                services.devices_removed(&session.user_id, &removed)?;
                Ok(json!({}))
            })
        });
    one.or(all).unify().boxed()
}
