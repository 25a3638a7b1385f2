//! `GET /rooms/{roomId}/context/{eventId}`: an event with the events
//! around it, for permalinks. Spec: client-server-api "Events";
//! event_context.yaml.

use ruma::{events::StateEventType, OwnedEventId};
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::raw_query,
    request::param,
    rooms::{client_event::client_event, relations::Bundler},
    store::accounts::Session,
    sync::Token,
};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("rooms" / String / "context" / String))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(
            move |room: String, event: String, session: Session, query: String| {
                let services = services.clone();
                respond(async move { context(&services, &room, &event, &session, &query) })
            },
        )
        .boxed()
}

fn context(
    services: &Services,
    room: &str,
    event: &str,
    session: &Session,
    query: &str,
) -> Result<Value> {
    let rooms = &services.rooms;
    let room = crate::request::room_id(room)?;
    let access = rooms.read_access(&room, &session.user_id)?;
    let id = crate::request::event_id(event)?;
    let (meta, _) = rooms.event(Some(&room), &id)?;
    let user = &session.user_id;
    if meta.outlier || meta.stream == 0 || !rooms.readable_event(&id, user, &access)? {
        return Err(Error::not_found(format!(
            "{id} is not in the room's timeline"
        )));
    }
    let limit = param(query, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(DEFAULT_LIMIT)
        .min(MAX_LIMIT);
    let visible = |entries: Vec<(u64, OwnedEventId)>| -> Result<Vec<(u64, OwnedEventId)>> {
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries {
            if rooms.readable_event(&entry.1, user, &access)? {
                kept.push(entry);
            }
        }
        Ok(kept)
    };
    let mut before = visible(rooms.timeline_between(&room, 0, meta.stream, limit / 2, true)?)?;
    before.reverse();
    let after =
        visible(rooms.timeline_between(&room, meta.stream, u64::MAX, limit - limit / 2, false)?)?;
    let mut senders = std::collections::BTreeSet::new();
    let bundler = Bundler::new(rooms, &room, user, &access);
    let mut render = |entries: &[(u64, OwnedEventId)]| -> Result<Vec<Value>> {
        entries
            .iter()
            .map(|(_, id)| {
                let mut event = client_event(id, &rooms.event_object(id)?, true);
                bundler.bundle(&mut event)?;
                senders.extend(event["sender"].as_str().map(str::to_owned));
                Ok(event)
            })
            .collect()
    };
    let events_before = render(&before)?;
    let events_after = render(&after)?;
    let event = render(&[(meta.stream, id.clone())])?.remove(0);
    // The room's state, with only the members these events need.
    let mut state = Vec::new();
    for ((kind, key), state_id) in rooms.readable_state_ids(&room, &access)? {
        if kind == StateEventType::RoomMember && !senders.contains(&key) {
            continue;
        }
        state.push(client_event(
            &state_id,
            &rooms.event_object(&state_id)?,
            true,
        ));
    }
    let start = before.last().map_or(meta.stream - 1, |(p, _)| p - 1);
    let end = after.last().map_or(meta.stream, |(p, _)| *p);
    Ok(json!({
        "event": event,
        "events_before": events_before,
        "events_after": events_after,
        "start": Token::at(start).to_string(),
        "end": Token::at(end).to_string(),
        "state": state,
    }))
}
