//! `GET`/`PUT /user/{userId}/account_data/{type}` and
//! `/user/{userId}/rooms/{roomId}/account_data/{type}`.
//! Spec: client-server-api "Client Config"; account-data.yaml.

use bytes::Bytes;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, percent_decode},
    request::{room_id, user_id},
    store::accounts::Session,
};

fn own(session: &Session, user: &str) -> Result<()> {
    if user_id(user)? != session.user_id {
        return Err(Error::forbidden("you can only use your own account data"));
    }
    Ok(())
}

/// Types the server manages itself, which clients may not set.
fn settable(kind: &str) -> Result<()> {
    if kind == "m.fully_read" || kind == "m.push_rules" {
        return Err(Error::new(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "M_BAD_JSON",
            format!("{kind} is managed by the server"),
        ));
    }
    Ok(())
}

pub fn routes(services: Services) -> Route {
    let global = v3()
        .and(warp::path!("user" / String / "account_data" / String))
        .map(|user, kind| (user, None, kind))
        .untuple_one();
    let in_room = v3()
        .and(warp::path!(
            "user" / String / "rooms" / String / "account_data" / String
        ))
        .map(|user, room, kind| (user, Some(room), kind))
        .untuple_one();
    let path = global.or(in_room).unify();
    let get_services = services.clone();
    let get = path
        .clone()
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(
            move |user: String, room: Option<String>, kind: String, session: Session| {
                let services = get_services.clone();
                respond(async move {
                    own(&session, &user)?;
                    let room = room.map(|r| room_id(&r)).transpose()?;
                    let kind = percent_decode(&kind);
                    let room = room.as_ref().map(|r| r.as_str());
                    services
                        .accounts
                        .account_data(&session.user_id, room, &kind)
                })
            },
        );
    let put = path
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |user: String,
                  room: Option<String>,
                  kind: String,
                  session: Session,
                  bytes: Bytes| {
                let services = services.clone();
                respond(async move {
                    own(&session, &user)?;
                    let room = room.map(|r| room_id(&r)).transpose()?;
                    let kind = percent_decode(&kind);
                    settable(&kind)?;
                    let content: Value = body(&bytes)?;
                    if !content.is_object() {
                        return Err(Error::bad_json("account data must be a JSON object"));
                    }
                    let room = room.as_ref().map(|r| r.as_str());
                    services.accounts.set_account_data(
                        &services.rooms,
                        &session.user_id,
                        room,
                        &kind,
                        content,
                    )?;
                    Ok(json!({}))
                })
            },
        );
    get.or(put).unify().boxed()
}
