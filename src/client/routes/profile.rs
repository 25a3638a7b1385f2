//! `GET /profile/{userId}`, `GET`/`PUT`/`DELETE /profile/{userId}/{keyName}`
//! for `displayname`, `avatar_url` and extended fields (`m.tz`, namespaced
//! keys). Spec: client-server-api "Profiles"; profile.yaml.

use bytes::Bytes;
use ruma::{OwnedUserId, ServerName};
use serde_json::{json, Map, Value};
use warp::Filter;

use crate::{
    accounts::profiles::{key, ProfileService, FIELDS},
    client::{body, optional_session, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::body_limited,
    request::user_id,
    store::accounts::Session,
};

/// Sets (`None`: removes) the session user's field `name`: the two that
/// member events carry as strings, any JSON for an extended one.
async fn change(
    profiles: &ProfileService,
    session: &Session,
    user: &str,
    name: &str,
    value: Option<Value>,
) -> Result<Value> {
    let name = key(name)?;
    if user_id(user)? != session.user_id {
        return Err(Error::forbidden("you can only change your own profile"));
    }
    if !FIELDS.contains(&name) {
        profiles.set_extended(&session.user_id, name, value)?;
        return Ok(json!({}));
    }
    let value = match value {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(_) => return Err(Error::bad_json(format!("{name} must be a string"))),
    };
    profiles.set(&session.user_id, name, value).await?;
    Ok(json!({}))
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

/// A user's profile, for whoever may read it; for one of our users,
/// an application service is asked about a user it claims that does not
/// exist yet (like another server, only on our users' behalf).
async fn profile_of(services: &Services, user: &str, session: Option<&Session>) -> Result<Value> {
    let profiles = &services.profiles;
    let user = readable(user, session, profiles.server_name())?;
    if session.is_some() {
        services.ask_for_user(&user).await?;
    }
    profiles.get(&user).await
}

pub fn routes(services: Services) -> Route {
    let whole_services = services.clone();
    let whole = v3()
        .and(warp::path!("profile" / String))
        .and(warp::get())
        .and(optional_session(services.accounts.clone()))
        .then(move |user: String, session: Option<Session>| {
            let services = whole_services.clone();
            respond(async move { profile_of(&services, &user, session.as_ref()).await })
        });
    let one_services = services.clone();
    let get_one = v3()
        .and(warp::path!("profile" / String / String))
        .and(warp::get())
        .and(optional_session(services.accounts.clone()))
        .then(
            move |user: String, name: String, session: Option<Session>| {
                let services = one_services.clone();
                respond(async move {
                    let name = key(&name)?;
                    let profile = profile_of(&services, &user, session.as_ref()).await?;
                    match profile.get(name) {
                        Some(value) if !value.is_null() => Ok(json!({ name: value })),
                        _ => Err(Error::not_found(format!("no {name} set"))),
                    }
                })
            },
        );
    let profiles = services.profiles.clone();
    let set =
        v3().and(warp::path!("profile" / String / String))
            .and(warp::put())
            .and(session(services.accounts.clone()))
            .and(body_limited())
            .then(
                move |user: String, name: String, session: Session, bytes: Bytes| {
                    let profiles = profiles.clone();
                    respond(async move {
                        let request: Map<String, Value> = body(&bytes)?;
                        let value = request.get(&name).cloned().ok_or_else(|| {
                            Error::missing_param(format!("the body needs {name}"))
                        })?;
                        change(&profiles, &session, &user, &name, Some(value)).await
                    })
                },
            );
    let profiles = services.profiles.clone();
    let delete = v3()
        .and(warp::path!("profile" / String / String))
        .and(warp::delete())
        .and(session(services.accounts.clone()))
        .then(move |user: String, name: String, session: Session| {
            let profiles = profiles.clone();
            respond(async move { change(&profiles, &session, &user, &name, None).await })
        });
    whole
        .or(get_one)
        .unify()
        .or(set)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}
