//! `GET /rooms/{roomId}/joined_members` and `GET /rooms/{roomId}/members`.
//! Spec: client-server-api "Room membership"; rooms.yaml.

use ruma::events::StateEventType;
use serde_json::{json, Map, Value};
use warp::Filter;

use crate::{
    client::{must_be_joined, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::raw_query,
    request::{param, room_id},
    rooms::{client_event::client_event, reads::sync_state::StateEntries},
    store::accounts::Session,
    sync::Token,
};

pub fn routes(services: Services) -> Route {
    let joined_services = services.clone();
    let joined = v3()
        .and(warp::path!("rooms" / String / "joined_members"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |room: String, session: Session| {
            let services = joined_services.clone();
            respond(async move { joined_members(&services, &room, &session) })
        });
    let all = v3()
        .and(warp::path!("rooms" / String / "members"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |room: String, session: Session, query: String| {
            let services = services.clone();
            respond(async move { members(&services, &room, &session, &query) })
        });
    joined.or(all).unify().boxed()
}

/// The room's member events in `state`.
fn member_events(
    services: &Services,
    state: StateEntries,
) -> Result<Vec<(ruma::OwnedEventId, Value)>> {
    let mut events = Vec::new();
    for ((kind, _), id) in state {
        if kind == StateEventType::RoomMember {
            let pdu = services.rooms.event_object(&id)?;
            events.push((id.clone(), client_event(&id, &pdu, true)));
        }
    }
    Ok(events)
}

fn joined_members(services: &Services, room: &str, session: &Session) -> Result<Value> {
    let room = room_id(room)?;
    must_be_joined(&services.rooms, &room, &session.user_id)?;
    let mut joined = Map::new();
    for (_, event) in member_events(services, services.rooms.current_state_ids(&room)?)? {
        if event["content"]["membership"] == "join" {
            if let Some(user) = event["state_key"].as_str() {
                joined.insert(
                    user.to_owned(),
                    json!({
                        "display_name": event["content"]["displayname"],
                        "avatar_url": event["content"]["avatar_url"],
                    }),
                );
            }
        }
    }
    Ok(json!({ "joined": joined }))
}

/// The members as the reader may see them: now, as of their leave, or
/// with `at` as of a sync token, when the history visibility shows the
/// reader the room at that point.
fn members(services: &Services, room: &str, session: &Session, query: &str) -> Result<Value> {
    let room = room_id(room)?;
    let rooms = &services.rooms;
    let access = rooms.read_access(&room, &session.user_id)?;
    let state = match param(query, "at") {
        None => rooms.readable_state_ids(&room, &access)?,
        Some(at) => {
            let position = Token::parse(&at)?
                .position
                .min(access.latest_position(rooms.position()));
            let hidden = || Error::forbidden("the history visibility hides the room at that point");
            let last = rooms.last_event_at(&room, position)?.ok_or_else(hidden)?;
            if !rooms.readable_event(&last, &session.user_id, &access)? {
                return Err(hidden());
            }
            rooms.state_ids_after(&last)?
        }
    };
    let only = param(query, "membership");
    let not = param(query, "not_membership");
    let chunk: Vec<Value> = member_events(services, state)?
        .into_iter()
        .map(|(_, event)| event)
        .filter(|event| {
            let membership = event["content"]["membership"].as_str().unwrap_or_default();
            only.as_deref().is_none_or(|m| m == membership)
                && not.as_deref().is_none_or(|m| m != membership)
        })
        .collect();
    Ok(json!({ "chunk": chunk }))
}
