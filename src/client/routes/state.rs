//! `GET /rooms/{roomId}/state`, `GET`/`PUT
//! /rooms/{roomId}/state/{eventType}/{stateKey}` (the key may be empty and
//! then omitted). Spec: client-server-api "Getting events for a room",
//! "Sending events to a room"; room_state.yaml.

use bytes::Bytes;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, percent_decode, raw_query},
    request::{room_id, Query},
    rooms::{client_event::client_event, reads::access::ReadAccess},
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let all_services = services.clone();
    let all = v3()
        .and(warp::path!("rooms" / String / "state"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |room: String, session: Session| {
            let services = all_services.clone();
            respond(async move { full_state(&services, &room, &session) })
        });
    // `state/{type}` and `state/{type}/{key}`: the key defaults to "".
    let key = warp::path::param::<String>()
        .and(warp::path::end())
        .or(warp::path::end().map(String::new))
        .unify();
    let one = v3()
        .and(warp::path("rooms"))
        .and(warp::path::param::<String>())
        .and(warp::path("state"))
        .and(warp::path::param::<String>())
        .and(key);
    let get_services = services.clone();
    let get = one
        .clone()
        .and(warp::get())
        .and(raw_query())
        .and(session(services.accounts.clone()))
        .then(
            move |room: String, kind: String, key: String, query: String, session: Session| {
                let services = get_services.clone();
                let query = Query::parse(&query);
                respond(async move { get_state(&services, &room, (&kind, &key), &query, &session) })
            },
        );
    let put = one
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .and(body_limited())
        .then(
            move |room: String,
                  kind: String,
                  key: String,
                  session: Session,
                  query: String,
                  bytes: Bytes| {
                let services = services.clone();
                let target = (room, kind, key);
                async move { respond(put_state(services, target, session, &query, bytes)).await }
            },
        );
    all.or(get).unify().or(put).unify().boxed()
}

fn full_state(services: &Services, room: &str, session: &Session) -> Result<Value> {
    let room = room_id(room)?;
    let access = services.rooms.read_access(&room, &session.user_id)?;
    let mut events = Vec::new();
    for (_, id) in services.rooms.readable_state_ids(&room, &access)? {
        events.push(client_event(&id, &services.rooms.event_object(&id)?, true));
    }
    Ok(Value::Array(events))
}

/// One state event's content, or with `format=event` (v1.16) the whole
/// event as clients see events.
fn get_state(
    services: &Services,
    room: &str,
    (kind, key): (&str, &str),
    query: &Query,
    session: &Session,
) -> Result<Value> {
    let room = room_id(room)?;
    let access = services.rooms.read_access(&room, &session.user_id)?;
    let whole = match query.get("format") {
        None | Some("content") => false,
        Some("event") => true,
        Some(other) => return Err(Error::invalid_param(format!("unknown format {other:?}"))),
    };
    let (kind, key) = (percent_decode(kind), percent_decode(key));
    let kind = ruma::events::StateEventType::from(kind);
    let found = match access {
        ReadAccess::Former { .. } => services
            .rooms
            .readable_state_ids(&room, &access)?
            .into_iter()
            .find(|((k, s), _)| *k == kind && *s == key)
            .map(|(_, id)| id),
        _ => services.rooms.state_event_id(&room, &kind, &key)?,
    };
    let id = found.ok_or_else(|| Error::not_found(format!("no {kind} state with key {key:?}")))?;
    let pdu = services.rooms.event_object(&id)?;
    if whole {
        return Ok(client_event(&id, &pdu, true));
    }
    Ok(pdu
        .get("content")
        .cloned()
        .map(Into::into)
        .unwrap_or(json!({})))
}

async fn put_state(
    services: Services,
    (room, kind, key): (String, String, String),
    session: Session,
    query: &str,
    bytes: Bytes,
) -> Result<Value> {
    let room = room_id(&room)?;
    let (kind, key) = (percent_decode(&kind), percent_decode(&key));
    let content: Value = body(&bytes)?;
    super::send::check_content(&room, &kind, &content)?;
    if kind == "m.room.canonical_alias" {
        services
            .directory
            .check_canonical_alias(&room, &content)
            .await?;
    }
    if let Some(delay) = super::send::delay_of(query)? {
        let id = services
            .delayed
            .schedule(
                &session.user_id,
                &room,
                (&kind, Some(&key)),
                content,
                delay,
                None,
            )
            .await?;
        return Ok(json!({ "delay_id": id }));
    }
    let ts = super::send::appservice_ts(&session, query)?;
    let event_id = services
        .rooms
        .send_at(&room, &session.user_id, (&kind, Some(&key), content), ts)
        .await?;
    Ok(json!({ "event_id": event_id }))
}
