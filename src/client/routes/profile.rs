//! `GET /profile/{userId}`, `GET`/`PUT /profile/{userId}/{field}` for
//! `displayname` and `avatar_url`. Spec: client-server-api "Profiles";
//! profile.yaml.

use bytes::Bytes;
use ruma::{OwnedUserId, ServerName};
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    accounts::profiles::FIELDS,
    client::{body, optional_session, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::body_limited,
    request::user_id,
    store::accounts::Session,
};

fn field(name: &str) -> Result<&'static str> {
    FIELDS
        .into_iter()
        .find(|f| *f == name)
        .ok_or_else(|| Error::unrecognized(format!("profile field {name:?} is not supported")))
}

/// The user whose profile is asked for. Another server's user takes a
/// signed request to that server: only our users may cause one.
fn readable(user: &str, session: Option<&Session>, ours: &ServerName) -> Result<OwnedUserId> {
    let user = user_id(user)?;
    if session.is_none() && user.server_name() != ours {
        return Err(Error::new(
            http::StatusCode::UNAUTHORIZED,
            "M_MISSING_TOKEN",
            "looking up another server's user needs an access token",
        ));
    }
    Ok(user)
}

pub fn routes(services: Services) -> Route {
    let profiles = services.profiles.clone();
    let whole = v3()
        .and(warp::path!("profile" / String))
        .and(warp::get())
        .and(optional_session(services.accounts.clone()))
        .then(move |user: String, session: Option<Session>| {
            let profiles = profiles.clone();
            let ours = profiles.server_name().to_owned();
            respond(async move {
                profiles
                    .get(&readable(&user, session.as_ref(), &ours)?)
                    .await
            })
        });
    let profiles = services.profiles.clone();
    let get_one = v3()
        .and(warp::path!("profile" / String / String))
        .and(warp::get())
        .and(optional_session(services.accounts.clone()))
        .then(
            move |user: String, name: String, session: Option<Session>| {
                let profiles = profiles.clone();
                let ours = profiles.server_name().to_owned();
                respond(async move {
                    let name = field(&name)?;
                    let profile = profiles
                        .get(&readable(&user, session.as_ref(), &ours)?)
                        .await?;
                    match profile.get(name) {
                        Some(value) if !value.is_null() => Ok(json!({ name: value })),
                        _ => Err(Error::not_found(format!("no {name} set"))),
                    }
                })
            },
        );
    let profiles = services.profiles.clone();
    let set = v3()
        .and(warp::path!("profile" / String / String))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |user: String, name: String, session: Session, bytes: Bytes| {
                let profiles = profiles.clone();
                respond(async move {
                    let name = field(&name)?;
                    if user_id(&user)? != session.user_id {
                        return Err(Error::forbidden("you can only change your own profile"));
                    }
                    let request: Value = body(&bytes)?;
                    let value = match &request[name] {
                        Value::String(s) => Some(s.clone()),
                        Value::Null => None,
                        _ => return Err(Error::bad_json(format!("{name} must be a string"))),
                    };
                    profiles.set(&session.user_id, name, value).await?;
                    Ok(json!({}))
                })
            },
        );
    whole.or(get_one).unify().or(set).unify().boxed()
}
