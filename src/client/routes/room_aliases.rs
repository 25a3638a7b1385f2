//! `GET /rooms/{roomId}/aliases`: this server's aliases of a room, for
//! its members. Spec: client-server-api "Room aliases"; directory.yaml.

use serde_json::json;
use warp::Filter;

use crate::{
    client::{must_be_joined, respond, session, v3, Route, Services},
    request::room_id,
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("rooms" / String / "aliases"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |room: String, session: Session| {
            let services = services.clone();
            respond(async move {
                let room = room_id(&room)?;
                must_be_joined(&services.rooms, &room, &session.user_id)?;
                Ok(json!({ "aliases": services.directory.aliases_of(&room)? }))
            })
        })
        .boxed()
}
