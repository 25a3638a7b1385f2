//! `GET /_matrix/client/v1/rooms/{roomId}/threads`: a room's threads, the
//! most recently active first, each root with its aggregations.
//! Spec: client-server-api "Querying threads in a room"; threads_list.yaml.

use ruma::api::client::threads::get_threads::v1::Response;
use warp::Filter;

use super::relations::raw_events;
use crate::{
    client::{session, typed, Route, Services},
    error::{Error, Result},
    http_util::{raw_query, reply},
    request::{room_id, Query},
    rooms::relations::{token, ThreadsQuery},
    store::accounts::Session,
};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

pub fn route(services: Services) -> Route {
    warp::path!("_matrix" / "client" / "v1" / "rooms" / String / "threads")
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .map(move |room: String, session: Session, query: String| {
            reply(threads(&services, &room, &session, &Query::parse(&query)))
        })
        .boxed()
}

fn threads(
    services: &Services,
    room: &str,
    session: &Session,
    query: &Query,
) -> Result<warp::reply::Response> {
    let room = room_id(room)?;
    let participated = match query.get("include") {
        None | Some("all") => false,
        Some("participated") => true,
        Some(_) => return Err(Error::invalid_param("include must be all or participated")),
    };
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| Error::invalid_param("limit must be a number"))?,
    };
    let query = ThreadsQuery {
        participated,
        from: query.get("from").map(token::parse).transpose()?,
        limit: limit.clamp(1, MAX_LIMIT),
    };
    let page = services.rooms.threads(&room, &session.user_id, &query)?;
    let mut response = Response::new(raw_events(&page.chunk)?);
    response.next_batch = page.next.as_ref().map(token::format);
    Ok(typed(response))
}
