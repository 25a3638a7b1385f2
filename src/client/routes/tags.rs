//! `GET /user/{userId}/rooms/{roomId}/tags` and `PUT`/`DELETE
//! /user/{userId}/rooms/{roomId}/tags/{tag}`.
//! Spec: client-server-api "Room Tagging"; tags.yaml.

use bytes::Bytes;
use serde_json::{json, Map, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, percent_decode},
    request::{room_id, user_id},
    store::accounts::Session,
};

/// The room, when the path's user is the session's own.
fn own_room(session: &Session, user: &str, room: &str) -> Result<ruma::OwnedRoomId> {
    if user_id(user)? != session.user_id {
        return Err(Error::forbidden("you can only use your own tags"));
    }
    room_id(room)
}

pub fn routes(services: Services) -> Route {
    let accounts = services.accounts.clone();
    let get = v3()
        .and(warp::path!("user" / String / "rooms" / String / "tags"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |user: String, room: String, session: Session| {
            let accounts = accounts.clone();
            respond(async move {
                let room = own_room(&session, &user, &room)?;
                accounts.tags(&session.user_id, &room)
            })
        });
    let put_services = services.clone();
    let put = v3()
        .and(warp::path!(
            "user" / String / "rooms" / String / "tags" / String
        ))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |user: String, room: String, tag: String, session: Session, bytes: Bytes| {
                let services = put_services.clone();
                respond(async move {
                    let room = own_room(&session, &user, &room)?;
                    let content: Map<String, Value> = body(&bytes)?;
                    services.accounts.put_tag(
                        &services.rooms,
                        &session.user_id,
                        &room,
                        &percent_decode(&tag),
                        content,
                    )?;
                    Ok(json!({}))
                })
            },
        );
    let delete = v3()
        .and(warp::path!(
            "user" / String / "rooms" / String / "tags" / String
        ))
        .and(warp::delete())
        .and(session(services.accounts.clone()))
        .then(
            move |user: String, room: String, tag: String, session: Session| {
                let services = services.clone();
                respond(async move {
                    let room = own_room(&session, &user, &room)?;
                    services.accounts.delete_tag(
                        &services.rooms,
                        &session.user_id,
                        &room,
                        &percent_decode(&tag),
                    )?;
                    Ok(json!({}))
                })
            },
        );
    get.or(put).unify().or(delete).unify().boxed()
}
