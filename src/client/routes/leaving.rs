//! `POST /rooms/{roomId}/leave` (also rejecting an invite or retracting a
//! knock) and `POST /rooms/{roomId}/forget`.
//! Spec: client-server-api "Leaving rooms"; leaving.yaml.

use ruma::events::room::member::MembershipState;
use serde_json::json;
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::Error,
    request::room_id,
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let membership = services.membership.clone();
    let leave = v3()
        .and(warp::path!("rooms" / String / "leave"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .then(move |room: String, session: Session| {
            let membership = membership.clone();
            respond(async move {
                let room = room_id(&room)?;
                membership.leave(&room, &session.user_id, &[]).await?;
                Ok(json!({}))
            })
        });
    let rooms = services.rooms.clone();
    let forget = v3()
        .and(warp::path!("rooms" / String / "forget"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .then(move |room: String, session: Session| {
            let rooms = rooms.clone();
            respond(async move {
                let room = room_id(&room)?;
                // Nothing is kept per user beyond the room's own state, so
                // forgetting only requires having left.
                match rooms.membership_of(&room, &session.user_id) {
                    Ok(Some(
                        MembershipState::Join | MembershipState::Invite | MembershipState::Knock,
                    )) => Err(Error::invalid_param("leave the room before forgetting it")),
                    _ => Ok(json!({})),
                }
            })
        });
    leave.or(forget).unify().boxed()
}
