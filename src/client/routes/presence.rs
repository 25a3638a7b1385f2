//! `GET`/`PUT /presence/{userId}/status`.
//! Spec: client-server-api "Presence"; presence.yaml.

use bytes::Bytes;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    edus::is_presence_state,
    error::{Error, Result},
    http_util::body_limited,
    request::user_id,
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let edus = services.edus.clone();
    let get = v3()
        .and(warp::path!("presence" / String / "status"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |user: String, _: Session| {
            let edus = edus.clone();
            respond(async move { Ok(edus.presence_of(&user_id(&user)?)) })
        });
    let put = v3()
        .and(warp::path!("presence" / String / "status"))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |user: String, session: Session, bytes: Bytes| {
            let services = services.clone();
            respond(async move { set(&services, &user, &session, &bytes) })
        });
    get.or(put).unify().boxed()
}

fn set(services: &Services, user: &str, session: &Session, bytes: &Bytes) -> Result<Value> {
    let user = user_id(user)?;
    if user != session.user_id {
        return Err(Error::forbidden("you can only set your own presence"));
    }
    let request: Value = body(bytes)?;
    let state = request["presence"]
        .as_str()
        .filter(|s| is_presence_state(s))
        .ok_or_else(|| Error::bad_json("presence must be online, unavailable or offline"))?;
    let status_msg = match &request["status_msg"] {
        Value::Null => None,
        Value::String(msg) => Some(Some(msg.clone())),
        _ => return Err(Error::bad_json("status_msg must be a string")),
    };
    services.edus.set_presence(&user, state, status_msg)?;
    Ok(json!({}))
}
