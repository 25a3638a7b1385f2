//! `GET /capabilities`. Spec: client-server-api "Capabilities negotiation".

use serde_json::json;
use warp::Filter;

use crate::{
    client::{session, v3, Route, Services},
    http_util::ok_json,
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    let default = services.rooms.default_version().to_string();
    v3().and(warp::path!("capabilities"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .map(move |_: Session| {
            let available: serde_json::Map<String, serde_json::Value> =
                (3..=12).map(|v| (v.to_string(), json!("stable"))).collect();
            ok_json(&json!({"capabilities": {
                "m.change_password": {"enabled": true},
                "m.room_versions": {"default": default, "available": available},
                "m.set_displayname": {"enabled": true},
                "m.set_avatar_url": {"enabled": true},
                "m.3pid_changes": {"enabled": false},
            }}))
        })
        .boxed()
}
