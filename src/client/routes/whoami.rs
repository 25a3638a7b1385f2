//! `GET /account/whoami`. Spec: client-server-api "Current account information".

use serde_json::json;
use warp::Filter;

use crate::{
    client::{session, v3, Route, Services},
    http_util::ok_json,
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("account" / "whoami"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .map(|session: Session| {
            ok_json(&json!({
                "user_id": session.user_id,
                "device_id": session.device_id,
                "is_guest": false,
            }))
        })
        .boxed()
}
