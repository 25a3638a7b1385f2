//! The client-server API on the client listener: what Element and other
//! clients need to log in and chat. Spec: client-server-api/_index.md.

mod routes;

use std::{future::Future, sync::Arc};

use bytes::Bytes;

use serde::de::DeserializeOwned;
use serde_json::Value;
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

/// `/_matrix/client/v3/…`, and `r0/…`: `/versions` lists r0.6.1, whose
/// clients and bots use those paths (Synapse serves both).
fn v3() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::path("_matrix")
        .and(warp::path("client"))
        .and(warp::path("v3").or(warp::path("r0")).unify())
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

/// The session of the request's access token (or an application
/// service's, acting as a user); 401 without a valid one.
fn session(
    accounts: Arc<AccountService>,
) -> impl Filter<Extract = (Session,), Error = Rejection> + Clone {
    token().and(crate::http_util::raw_query()).and_then(
        move |token: Option<String>, query: String| {
            let accounts = accounts.clone();
            async move {
                let token = token.ok_or_else(|| {
                    warp::reject::custom(Error::new(
                        http::StatusCode::UNAUTHORIZED,
                        "M_MISSING_TOKEN",
                        "this endpoint needs an access token",
                    ))
                })?;
                accounts
                    .authenticate_request(&token, &query)
                    .map_err(warp::reject::custom)
            }
        },
    )
}

/// The session of the request's access token when it has one (401 for
/// a token we do not know); `None` without one.
fn optional_session(
    accounts: Arc<AccountService>,
) -> impl Filter<Extract = (Option<Session>,), Error = Rejection> + Clone {
    token().and(crate::http_util::raw_query()).and_then(
        move |token: Option<String>, query: String| {
            let accounts = accounts.clone();
            async move {
                token
                    .map(|token| accounts.authenticate_request(&token, &query))
                    .transpose()
                    .map_err(warp::reject::custom)
            }
        },
    )
}

/// User-interactive auth by password, for destructive requests of the
/// session's user: passes once a UIA session started for this very
/// `operation` (method and path) holds the user's password, else answers
/// 401 with the one flow we offer and the session's progress.
/// Spec: client-server-api "User-Interactive Authentication API".
async fn confirm_password(
    accounts: &AccountService,
    session: &Session,
    operation: &str,
    request: &serde_json::Map<String, Value>,
) -> Result<()> {
    let operation = format!("{operation} as {}", session.user_id);
    let user = &session.user_id;
    accounts
        .uia()
        .authenticate(&operation, "m.login.password", request, |auth| async move {
            use crate::accounts::uia::Verdict;
            let claimed = auth["identifier"]["user"]
                .as_str()
                .or(auth["user"].as_str());
            let is_user = |c: &str| c == user.as_str() || c == user.localpart();
            if claimed.is_some_and(|c| !is_user(c)) {
                return Ok(Verdict::Failed("authenticate as yourself".into()));
            }
            let Some(password) = auth["password"].as_str() else {
                return Ok(Verdict::Failed("no password given".into()));
            };
            Ok(
                if accounts.password_matches(user, password.to_owned()).await? {
                    Verdict::Passed
                } else {
                    Verdict::Failed("wrong password".into())
                },
            )
        })
        .await?;
    Ok(())
}

/// The response of a handler that produces a JSON value.
async fn respond(result: impl Future<Output = Result<Value>>) -> Response {
    reply(result.await.map(|value| ok_json(&value)))
}

/// A JSON body, which in the client-server API is always an object
/// (`M_NOT_JSON` when it is not JSON, `M_BAD_JSON` when it is JSON of
/// another kind); an empty body reads as `{}` (clients send none for
/// `POST …/leave`).
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => parse_json(b"{}"),
        Some(b'{') => parse_json(bytes),
        Some(_) => match parse_json::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(Error::bad_json("the request body must be a JSON object")),
            Err(not_json) => Err(not_json),
        },
    }
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

/// A response built from ruma's type for the endpoint.
fn typed(response: impl ruma::api::OutgoingResponseExt) -> Response {
    match response.try_into_http_response::<Vec<u8>>() {
        Ok(response) => response.map(Into::into),
        Err(e) => Error::internal(format!("building the response: {e}")).into_response(),
    }
}
