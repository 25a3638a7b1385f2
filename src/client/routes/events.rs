//! `GET /events`: the r0 event stream, deprecated but still called by
//! older clients and bots; with `room_id`, a peek into a room the user may
//! read without joining (a `world_readable` one).
//! Spec: client-server-api old_sync.yaml (getEvents), peeking_events.yaml.

use warp::Filter;

use super::sync::timeout;
use crate::{
    client::{respond, session, v3, Route, Services},
    http_util::raw_query,
    request::{param, room_id},
    store::accounts::Session,
    sync::Token,
};

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("events"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |session: Session, query: String| {
            let services = services.clone();
            respond(async move {
                let from = param(&query, "from")
                    .map(|t| Token::parse(&t))
                    .transpose()?;
                let room = param(&query, "room_id").map(|r| room_id(&r)).transpose()?;
                let wait = timeout(&query)?;
                services
                    .sync
                    .events(&session.user_id, from, wait, room.as_deref())
                    .await
            })
        })
        .boxed()
}
