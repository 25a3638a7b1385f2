//! `GET /rooms/{roomId}/messages`: the timeline in pages, either way, by
//! stream position. Spec: client-server-api "Getting events for a room";
//! message_pagination.yaml.

use std::collections::HashSet;

use ruma::{events::StateEventType, OwnedUserId};
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{must_be_joined, query_param, respond, room_id, session, v3, ClientServices, Route},
    error::{Error, Result},
    http_util::raw_query,
    rooms::client_event::client_event,
    store::accounts::Session,
    sync::{Filter as SyncFilter, Token},
};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 1000;

pub fn route(services: ClientServices) -> Route {
    v3().and(warp::path!("rooms" / String / "messages"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |room: String, session: Session, query: String| {
            let services = services.clone();
            respond(async move { messages(&services, &room, &session, &query) })
        })
        .boxed()
}

fn token(query: &str, name: &str) -> Result<Option<u64>> {
    query_param(query, name)
        .map(|t| Token::parse(&t).map(|t| t.position))
        .transpose()
}

fn messages(
    services: &ClientServices,
    room: &str,
    session: &Session,
    query: &str,
) -> Result<Value> {
    let room = room_id(room)?;
    let rooms = &services.rooms;
    must_be_joined(rooms, &room, &session.user_id)?;
    let backwards = match query_param(query, "dir").as_deref() {
        Some("b") => true,
        Some("f") => false,
        _ => return Err(Error::invalid_param("dir must be \"b\" or \"f\"")),
    };
    let limit = match query_param(query, "limit") {
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| Error::invalid_param(format!("limit {n:?} is not a number")))?
            .clamp(1, MAX_LIMIT),
        None => DEFAULT_LIMIT,
    };
    let lazy = query_param(query, "filter")
        .and_then(|f| serde_json::from_str::<Value>(&f).ok())
        .is_some_and(|f| {
            SyncFilter::from_json(&json!({"room": {"state": f.clone(), "timeline": f}}))
                .lazy_load_members
        });
    let now = rooms.position();
    let from = token(query, "from")?.unwrap_or(if backwards { now } else { 0 });
    let to = token(query, "to")?;
    // Positions are (after, before) exclusive bounds.
    let mut events = if backwards {
        rooms.timeline_between(&room, to.unwrap_or(0), from.saturating_add(1), limit, true)?
    } else {
        rooms.timeline_between(&room, from, to.map_or(u64::MAX, |t| t + 1), limit, false)?
    };
    if backwards {
        events.reverse();
    }
    let end = events.last().map(
        |(position, _)| {
            if backwards {
                position - 1
            } else {
                *position
            }
        },
    );
    let mut senders: HashSet<OwnedUserId> = HashSet::new();
    let mut chunk = Vec::new();
    for (_, id) in &events {
        let pdu = rooms.event_object(id)?;
        if let Some(sender) = pdu.get("sender").and_then(|s| s.as_str()) {
            senders.extend(OwnedUserId::try_from(sender).ok());
        }
        chunk.push(client_event(id, &pdu, true));
    }
    let mut state = Vec::new();
    if lazy {
        for sender in &senders {
            if let Some((id, pdu)) =
                rooms.state_event(&room, &StateEventType::RoomMember, sender.as_str())?
            {
                state.push(client_event(&id, &pdu, true));
            }
        }
    }
    let position = |p: u64| Token::at(p).to_string();
    let mut answer = json!({ "start": position(from), "chunk": chunk, "state": state });
    // No `end` once there is nothing further: the client stops paginating.
    if let Some(end) = end {
        answer["end"] = json!(position(end));
    }
    Ok(answer)
}
