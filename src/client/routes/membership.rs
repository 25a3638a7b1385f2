//! `POST /rooms/{roomId}/{invite,kick,ban,unban}`: one user acting on
//! another's membership. Spec: client-server-api "Room membership";
//! inviting.yaml, kicking.yaml, banning.yaml.

use bytes::Bytes;
use ruma::{events::room::member::MembershipState, OwnedUserId, RoomId, UserId};
use serde::Deserialize;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::body_limited,
    request::room_id,
    store::accounts::Session,
};

#[derive(Deserialize)]
struct Target {
    user_id: OwnedUserId,
    reason: Option<String>,
}

const ACTIONS: [&str; 4] = ["invite", "kick", "ban", "unban"];

pub fn routes(services: Services) -> Route {
    v3().and(warp::path("rooms"))
        .and(warp::path::param::<String>())
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and_then(|room: String, action: String| async move {
            if ACTIONS.contains(&action.as_str()) {
                Ok((room, action))
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |room: String, action: String, session: Session, bytes: Bytes| {
                let services = services.clone();
                async move { respond(act(services, room, action, session, bytes)).await }
            },
        )
        .boxed()
}

async fn act(
    services: Services,
    room: String,
    action: String,
    session: Session,
    bytes: Bytes,
) -> Result<Value> {
    let room = room_id(&room)?;
    let target: Target = body(&bytes)?;
    let sender = &session.user_id;
    if action == "invite" {
        services.ask_for_user(&target.user_id).await?;
        services
            .membership
            .invite(
                &room,
                sender,
                &target.user_id,
                false,
                target.reason.as_deref(),
            )
            .await?;
        return Ok(json!({}));
    }
    check_target(&services, &room, &action, &target.user_id)?;
    let membership = match action.as_str() {
        "ban" => "ban",
        _ => "leave",
    };
    let mut content = json!({ "membership": membership });
    if let Some(reason) = target.reason {
        content["reason"] = json!(reason);
    }
    services
        .rooms
        .send(
            &room,
            sender,
            "m.room.member",
            Some(target.user_id.as_str()),
            content,
        )
        .await?;
    Ok(json!({}))
}

/// A kick needs someone in the room (joined, invited or knocking) and an
/// unban someone banned: otherwise the leave would be a no-op or hide a
/// mistake. The auth rules allow both; Synapse refuses them (403), and so
/// do we.
fn check_target(services: &Services, room: &RoomId, action: &str, target: &UserId) -> Result<()> {
    let current = services.rooms.membership_of(room, target)?;
    let allowed = match action {
        "kick" => matches!(
            current,
            Some(MembershipState::Join | MembershipState::Invite | MembershipState::Knock)
        ),
        "unban" => current == Some(MembershipState::Ban),
        _ => true,
    };
    if allowed {
        return Ok(());
    }
    Err(Error::forbidden(format!(
        "cannot {action} {target}: their membership is {}",
        current.map_or("none".to_owned(), |m| m.to_string())
    )))
}
