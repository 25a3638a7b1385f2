//! `GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event?ts=…&dir=f|b`:
//! the event closest to a time that the user may see ("jump to date").
//! Spec: client-server-api "GET /rooms/{roomId}/timestamp_to_event".

use serde_json::json;
use warp::Filter;

use crate::{
    client::{respond, session, Route, Services},
    http_util::raw_query,
    request::{room_id, time_and_direction, Query},
    rooms::reads::query::TimeAsker,
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    warp::path!("_matrix" / "client" / "v1" / "rooms" / String / "timestamp_to_event")
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |room: String, session: Session, query: String| {
            let services = services.clone();
            respond(async move {
                let room = room_id(&room)?;
                let (ts, forward) = time_and_direction(&Query::parse(&query))?;
                let user = &session.user_id;
                let access = services.rooms.read_access(&room, user)?;
                let (event_id, origin_server_ts) = services.rooms.event_at_time(
                    &room,
                    ts,
                    forward,
                    TimeAsker::User(user, &access),
                )?;
                Ok(json!({ "event_id": event_id, "origin_server_ts": origin_server_ts }))
            })
        })
        .boxed()
}
