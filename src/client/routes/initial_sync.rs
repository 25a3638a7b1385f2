//! `GET /initialSync` and `GET /rooms/{roomId}/initialSync`: the r0
//! snapshots older clients and bots still start from.
//! Spec: client-server-api old_sync.yaml (initialSync),
//! room_initial_sync.yaml.

use serde_json::Value;
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::raw_query,
    request::{param, room_id},
    store::accounts::Session,
};

/// Events per room when the client names no `limit` (Synapse's default).
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;

pub fn routes(services: Services) -> Route {
    let all_services = services.clone();
    let all = v3()
        .and(warp::path!("initialSync"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |session: Session, query: String| {
            let services = all_services.clone();
            respond(async move { initial_sync(&services, &session, &query) })
        });
    let one = v3()
        .and(warp::path!("rooms" / String / "initialSync"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |room: String, session: Session, query: String| {
            let services = services.clone();
            respond(async move {
                let room = room_id(&room)?;
                let limit = limit(&query)?;
                let mut body = services
                    .sync
                    .room_initial_sync(&session.user_id, &room, limit)?;
                body["visibility"] = visibility(&services, &room)?;
                Ok(body)
            })
        });
    all.or(one).unify().boxed()
}

fn initial_sync(services: &Services, session: &Session, query: &str) -> Result<Value> {
    let archived = match param(query, "archived").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Error::invalid_param(format!(
                "archived {other:?} is not true or false"
            )))
        }
    };
    let (mut top, rooms) = services
        .sync
        .initial_sync(&session.user_id, limit(query)?, archived)?;
    let mut listed = Vec::with_capacity(rooms.len());
    for mut room in rooms {
        room.body["visibility"] = visibility(services, &room.room_id)?;
        listed.push(room.body);
    }
    top["rooms"] = Value::Array(listed);
    Ok(top)
}

fn limit(query: &str) -> Result<usize> {
    match param(query, "limit") {
        Some(n) => Ok(n
            .parse::<usize>()
            .map_err(|_| Error::invalid_param(format!("limit {n:?} is not a number")))?
            .min(MAX_LIMIT)),
        None => Ok(DEFAULT_LIMIT),
    }
}

/// Whether the room is in this server's public room directory.
fn visibility(services: &Services, room: &ruma::RoomId) -> Result<Value> {
    let public = services.directory.is_public(room)?;
    Ok(Value::from(if public { "public" } else { "private" }))
}
