//! `GET /joined_rooms`. Spec: client-server-api "Room membership";
//! list_joined_rooms.yaml.

use ruma::events::room::member::MembershipState;
use serde_json::json;
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("joined_rooms"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let rooms = services.rooms.clone();
            respond(async move {
                let mut joined = Vec::new();
                for room in rooms.room_ids()? {
                    if rooms.membership_of(&room, &session.user_id)? == Some(MembershipState::Join)
                    {
                        joined.push(room);
                    }
                }
                Ok(json!({ "joined_rooms": joined }))
            })
        })
        .boxed()
}
