//! `POST /rooms/{roomId}/leave` (also rejecting an invite or retracting a
//! knock) and `POST /rooms/{roomId}/forget`.
//! Spec: client-server-api "Leaving rooms"; leaving.yaml.

use bytes::Bytes;
use ruma::events::room::member::MembershipState;
use serde_json::json;
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::Error,
    http_util::body_limited,
    request::room_id,
    rooms::membership::Content,
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let membership = services.membership.clone();
    let leave = v3()
        .and(warp::path!("rooms" / String / "leave"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |room: String, session: Session, bytes: Bytes| {
            let membership = membership.clone();
            respond(async move {
                let room = room_id(&room)?;
                // Only the reason is kept: a leave is not a profile.
                let request: Content = body(&bytes)?;
                let mut content = Content::new();
                if let Some(reason) = request.get("reason") {
                    if !reason.is_string() {
                        return Err(Error::bad_json("reason must be a string"));
                    }
                    content.insert("reason".into(), reason.clone());
                }
                membership
                    .leave(&room, &session.user_id, &[], &content)
                    .await?;
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
