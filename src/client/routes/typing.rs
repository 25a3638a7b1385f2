//! `PUT /rooms/{roomId}/typing/{userId}`. Spec: client-server-api
//! "Typing Notifications"; typing.yaml.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use warp::Filter;

use crate::{
    client::{body, must_be_joined, respond, session, v3, Route, Services},
    error::Error,
    http_util::body_limited,
    request::{room_id, user_id},
    store::accounts::Session,
};

#[derive(Deserialize)]
struct Typing {
    typing: bool,
    timeout: Option<u64>,
}

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("rooms" / String / "typing" / String))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |room: String, user: String, session: Session, bytes: Bytes| {
                let services = services.clone();
                respond(async move {
                    let room = room_id(&room)?;
                    if user_id(&user)? != session.user_id {
                        return Err(Error::forbidden("you can only set your own typing state"));
                    }
                    must_be_joined(&services.rooms, &room, &session.user_id)?;
                    let request: Typing = body(&bytes)?;
                    let timeout = request
                        .typing
                        .then(|| Duration::from_millis(request.timeout.unwrap_or(30_000)));
                    services.edus.set_typing(&room, &session.user_id, timeout)?;
                    Ok(json!({}))
                })
            },
        )
        .boxed()
}
