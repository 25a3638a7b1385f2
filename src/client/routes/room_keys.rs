//! `room_keys/version[/{version}]` (create, read, update, delete a
//! backup) and `room_keys/keys[/{roomId}[/{sessionId}]]?version=` (store,
//! read, delete keys). Spec: client-server-api "Server-side key
//! backups"; key_backup.yaml.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    e2ee::backup::{AllKeys, KeyBackups, KeyData, RoomKeys, VersionBody},
    error::{Error, Result},
    http_util::{body_limited, percent_decode, raw_query},
    request::{room_id, Query},
    store::accounts::Session,
};

fn value(answer: impl Serialize) -> Result<Value> {
    serde_json::to_value(answer).map_err(|e| Error::internal(e.to_string()))
}

/// Which keys a `room_keys/keys…` path names: all, a room's, or one.
struct Scope {
    room: Option<String>,
    session: Option<String>,
}

impl Scope {
    fn parse(room: Option<&str>, session: Option<&str>) -> Result<Self> {
        Ok(Self {
            room: room
                .map(|r| room_id(r).map(|r| r.to_string()))
                .transpose()?,
            session: session.map(percent_decode),
        })
    }
}

/// `GET`, `PUT` or `DELETE`, and which.
fn read_write_or_delete() -> impl Filter<Extract = (http::Method,), Error = warp::Rejection> + Clone
{
    warp::get()
        .or(warp::put())
        .unify()
        .or(warp::delete())
        .unify()
        .and(warp::method())
}

fn version_routes(services: &Services) -> Route {
    let backups = services.key_backups.clone();
    let create = v3()
        .and(warp::path!("room_keys" / "version"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |session: Session, bytes: Bytes| {
            let backups = backups.clone();
            respond(async move {
                let version = backups.create(&session.user_id, &body::<VersionBody>(&bytes)?)?;
                Ok(json!({ "version": version }))
            })
        });
    let backups = services.key_backups.clone();
    let latest = v3()
        .and(warp::path!("room_keys" / "version"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let backups = backups.clone();
            respond(async move { value(backups.info(&session.user_id, None)?) })
        });
    let backups = services.key_backups.clone();
    let one = v3()
        .and(warp::path!("room_keys" / "version" / String))
        .and(read_write_or_delete())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |version: String, method: http::Method, session: Session, bytes: Bytes| {
                let backups = backups.clone();
                respond(async move {
                    let user = &session.user_id;
                    match method {
                        http::Method::GET => value(backups.info(user, Some(&version))?),
                        http::Method::PUT => {
                            backups.update(user, &version, &body::<VersionBody>(&bytes)?)?;
                            Ok(json!({}))
                        }
                        _ => {
                            backups.delete(user, &version)?;
                            Ok(json!({}))
                        }
                    }
                })
            },
        );
    create.or(latest).unify().or(one).unify().boxed()
}

/// The keys of a backup, at whichever scope the path names.
async fn keys(
    backups: Arc<KeyBackups>,
    method: http::Method,
    session: Session,
    scope: Scope,
    query: String,
    bytes: Bytes,
) -> Result<Value> {
    let query = Query::parse(&query);
    let version = query.required("version")?;
    let user = &session.user_id;
    let (room, session_id) = (scope.room.as_deref(), scope.session.as_deref());
    match method {
        http::Method::PUT => {
            let keys = match (room, session_id) {
                (Some(room), Some(session_id)) => {
                    let key: KeyData = body(&bytes)?;
                    let mut room_keys = RoomKeys::default();
                    room_keys.sessions.insert(session_id.to_owned(), key);
                    one_room(room, room_keys)
                }
                (Some(room), None) => one_room(room, body(&bytes)?),
                _ => body::<AllKeys>(&bytes)?,
            };
            value(backups.put(user, version, keys)?)
        }
        http::Method::DELETE => value(backups.delete_keys(user, version, room, session_id)?),
        _ => match (room, session_id) {
            (Some(room), Some(session_id)) => value(backups.key(user, version, room, session_id)?),
            (Some(room), None) => {
                let mut all = backups.keys(user, version, Some(room))?;
                value(all.rooms.remove(room).unwrap_or_default())
            }
            _ => value(backups.keys(user, version, None)?),
        },
    }
}

fn one_room(room: &str, keys: RoomKeys) -> AllKeys {
    let mut all = AllKeys::default();
    all.rooms.insert(room.to_owned(), keys);
    all
}

fn key_routes(services: &Services) -> Route {
    let all = warp::path!("room_keys" / "keys").map(|| (None, None));
    let room = warp::path!("room_keys" / "keys" / String).map(|room: String| (Some(room), None));
    let one = warp::path!("room_keys" / "keys" / String / String)
        .map(|room: String, session: String| (Some(room), Some(session)));
    let backups = services.key_backups.clone();
    v3().and(all.or(room).unify().or(one).unify())
        .and(read_write_or_delete())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .and(body_limited())
        .then(
            move |(room, session_id): (Option<String>, Option<String>),
                  method: http::Method,
                  session: Session,
                  query: String,
                  bytes: Bytes| {
                let backups = backups.clone();
                respond(async move {
                    let scope = Scope::parse(room.as_deref(), session_id.as_deref())?;
                    keys(backups, method, session, scope, query, bytes).await
                })
            },
        )
        .boxed()
}

pub fn routes(services: Services) -> Route {
    version_routes(&services)
        .or(key_routes(&services))
        .unify()
        .boxed()
}
