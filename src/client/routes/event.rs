//! `GET /rooms/{roomId}/event/{eventId}`. Spec: client-server-api
//! "Getting events for a room"; rooms.yaml.

use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::Error,
    request::room_id,
    rooms::{client_event::client_event, relations::Bundler},
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("rooms" / String / "event" / String))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |room: String, event: String, session: Session| {
            let rooms = services.rooms.clone();
            respond(async move {
                let room = room_id(&room)?;
                let access = rooms.read_access(&room, &session.user_id)?;
                let id = crate::request::event_id(&event)?;
                let (_, pdu) = rooms.event(Some(&room), &id)?;
                if !rooms.readable_event(&id, &session.user_id, &access)? {
                    return Err(Error::not_found(format!("unknown event {id}")));
                }
                let mut event = client_event(&id, &pdu, true);
                Bundler::new(&rooms, &room, &session.user_id, &access).bundle(&mut event)?;
                Ok(event)
            })
        })
        .boxed()
}
