//! The client-server API on the client listener: what Element and other
//! clients need to log in and chat. Spec: client-server-api/_index.md.

mod routes;

use std::{future::Future, sync::Arc};

use bytes::Bytes;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use warp::{filters::BoxedFilter, reply::Response, Filter, Rejection};

use crate::{
    accounts::AccountService,
    error::{Error, Result},
    http_util::{ok_json, parse_json, percent_decode, reply},
    rooms::RoomService,
    store::accounts::Session,
};

pub use crate::services::Services;

pub use routes::routes;

/// `/_matrix/client/v3/…`.
fn v3() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::path("_matrix")
        .and(warp::path("client"))
        .and(warp::path("v3"))
}

/// The access token from `Authorization: Bearer` or, deprecated but still
/// used, the `access_token` query parameter.
/// Spec: client-server-api "Using access tokens".
fn token() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(crate::http_util::raw_query())
        .map(|header: Option<String>, query: String| {
            header
                .and_then(|h| h.strip_prefix("Bearer ").map(str::to_owned))
                .or_else(|| {
                    query
                        .split('&')
                        .find_map(|pair| pair.strip_prefix("access_token="))
                        .map(percent_decode)
                })
        })
}

/// The session of the request's access token; 401 without a valid one.
fn session(
    accounts: Arc<AccountService>,
) -> impl Filter<Extract = (Session,), Error = Rejection> + Clone {
    token().and_then(move |token: Option<String>| {
        let accounts = accounts.clone();
        async move {
            let token = token.ok_or_else(|| {
                warp::reject::custom(Error::new(
                    http::StatusCode::UNAUTHORIZED,
                    "M_MISSING_TOKEN",
                    "this endpoint needs an access token",
                ))
            })?;
            accounts.authenticate(&token).map_err(warp::reject::custom)
        }
    })
}

/// User-interactive auth by password, for destructive requests: passes
/// when `auth` holds the user's password, else answers 401 with the one
/// flow we offer. Spec: client-server-api "User-Interactive Authentication API".
async fn confirm_password(
    accounts: &AccountService,
    session: &Session,
    auth: &Value,
) -> Result<()> {
    let flow = |errcode: &'static str, error: &'static str| {
        Error::new(http::StatusCode::UNAUTHORIZED, errcode, error)
            .with_field("flows", json!([{"stages": ["m.login.password"]}]))
            .with_field("params", json!({}))
            .with_field("session", auth["session"].as_str().unwrap_or("password"))
    };
    let Some(password) = auth["password"].as_str() else {
        return Err(flow("M_FORBIDDEN", "confirm with your password"));
    };
    if !accounts
        .password_matches(&session.user_id, password.to_owned())
        .await?
    {
        return Err(flow("M_FORBIDDEN", "wrong password"));
    }
    Ok(())
}

/// The response of a handler that produces a JSON value.
async fn respond(result: impl Future<Output = Result<Value>>) -> Response {
    reply(result.await.map(|value| ok_json(&value)))
}

/// A JSON body; an empty body reads as `{}` (clients send none for
/// `POST …/leave`).
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return parse_json(b"{}");
    }
    parse_json(bytes)
}

/// The `{roomId}` of a path, if the session's user is joined to it.
fn joined_room(rooms: &RoomService, segment: &str, session: &Session) -> Result<ruma::OwnedRoomId> {
    let room = crate::request::room_id(segment)?;
    must_be_joined(rooms, &room, &session.user_id)?;
    Ok(room)
}

/// Refuses a user who is not joined to the room (the room's existence
/// is not revealed either way).
fn must_be_joined(rooms: &RoomService, room: &ruma::RoomId, user: &ruma::UserId) -> Result<()> {
    match rooms.membership_of(room, user) {
        Ok(Some(ruma::events::room::member::MembershipState::Join)) => Ok(()),
        _ => Err(Error::forbidden(format!("{user} is not in {room}"))),
    }
}

/// Route builders take the services and give one boxed filter.
type Route = BoxedFilter<(Response,)>;
