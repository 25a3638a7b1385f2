//! `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]`:
//! an event's children, paged, each with its own aggregations.
//! Spec: client-server-api "Relationships"; relations.yaml.

use ruma::{api::client::relations::get_relating_events::v1::Response, serde::Raw, UInt};
use warp::{filters::path::Tail, Filter};

use crate::{
    client::{session, typed, Route, Services},
    error::{Error, Result},
    http_util::{percent_decode, raw_query, reply},
    request::{event_id, room_id, Query},
    rooms::relations::{token, RelationsQuery},
    store::accounts::Session,
};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

pub fn route(services: Services) -> Route {
    warp::path!("_matrix" / "client" / "v1" / "rooms" / String / "relations" / String / ..)
        .and(warp::path::tail())
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .map(
            move |room: String, parent: String, tail: Tail, session: Session, query: String| {
                reply(relations(
                    &services,
                    &room,
                    &parent,
                    tail.as_str(),
                    &session,
                    &query,
                ))
            },
        )
        .boxed()
}

fn relations(
    services: &Services,
    room: &str,
    parent: &str,
    tail: &str,
    session: &Session,
    query: &str,
) -> Result<warp::reply::Response> {
    let room = room_id(room)?;
    let parent = event_id(parent)?;
    let query = relations_query(tail, &Query::parse(query))?;
    let page = services
        .rooms
        .relations(&room, &parent, &session.user_id, &query)?;
    let mut response = Response::new(raw_events(&page.chunk)?);
    response.next_batch = page.next.as_ref().map(token::format);
    response.prev_batch = query.from.as_ref().map(token::format);
    response.recursion_depth = page.recursion_depth.map(UInt::from);
    Ok(typed(response))
}

/// Client events as ruma's raw events of the response types.
pub(super) fn raw_events<T>(events: &[serde_json::Value]) -> Result<Vec<Raw<T>>> {
    events
        .iter()
        .map(|event| Raw::new(event).map(Raw::cast_unchecked))
        .collect::<serde_json::Result<Vec<_>>>()
        .map_err(|e| Error::internal(e.to_string()))
}

/// The path's `relType` and `eventType`, and the query string.
fn relations_query(tail: &str, query: &Query) -> Result<RelationsQuery> {
    let mut rest = tail
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode);
    let rel_type = rest.next();
    let event_type = rest.next();
    if rest.next().is_some() {
        return Err(Error::unrecognized("unknown relations path"));
    }
    let position = |name: &str| query.get(name).map(token::parse).transpose();
    let back = match query.get("dir") {
        None | Some("b") => true,
        Some("f") => false,
        Some(_) => return Err(Error::invalid_param("dir must be f or b")),
    };
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| Error::invalid_param("limit must be a number"))?,
    };
    let recurse = query
        .get("recurse")
        .or_else(|| query.get("org.matrix.msc3981.recurse"));
    let recurse = match recurse {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(Error::invalid_param("recurse must be true or false")),
    };
    Ok(RelationsQuery {
        rel_type,
        event_type,
        from: position("from")?,
        to: position("to")?,
        back,
        limit: limit.clamp(1, MAX_LIMIT),
        recurse,
    })
}
