//! `POST /register` (off unless `registration.enabled`, optionally gated by
//! a registration token) and `GET /register/available`.
//! Spec: client-server-api "Account registration", "User-interactive
//! authentication API", "Token-authenticated registration".

use bytes::Bytes;
use ruma::OwnedDeviceId;
use serde::Deserialize;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    admin::tokens_match,
    client::{body, respond, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, raw_query},
    request::param,
};

#[derive(Deserialize)]
struct Auth {
    #[serde(rename = "type")]
    kind: Option<String>,
    token: Option<String>,
    session: Option<String>,
}

#[derive(Deserialize)]
struct RegisterRequest {
    auth: Option<Auth>,
    username: Option<String>,
    password: Option<String>,
    device_id: Option<OwnedDeviceId>,
    initial_device_display_name: Option<String>,
    #[serde(default)]
    inhibit_login: bool,
}

pub fn routes(services: Services) -> Route {
    let register_services = services.clone();
    let register = v3()
        .and(warp::path!("register"))
        .and(warp::post())
        .and(raw_query())
        .and(body_limited())
        .then(move |query: String, bytes: Bytes| {
            let services = register_services.clone();
            async move { respond(register(services, query, bytes)).await }
        });
    let available = v3()
        .and(warp::path!("register" / "available"))
        .and(warp::get())
        .and(raw_query())
        .then(move |query: String| {
            let services = services.clone();
            respond(async move { available(&services, &query) })
        });
    register.or(available).unify().boxed()
}

fn disabled() -> Error {
    Error::forbidden("registration is disabled on this server")
}

/// The single stage this server asks for, as a 401 the client can follow.
fn auth_needed(stage: &str, session: Option<String>, failed: Option<&str>) -> Error {
    let session = session.unwrap_or_else(|| {
        use rand::Rng;
        rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(16)
            .map(char::from)
            .collect()
    });
    let (errcode, message) = match failed {
        Some(message) => ("M_FORBIDDEN", message.to_owned()),
        None => ("M_FORBIDDEN", "more authentication is needed".to_owned()),
    };
    let mut error = Error::new(http::StatusCode::UNAUTHORIZED, errcode, message)
        .with_field("flows", json!([{"stages": [stage]}]))
        .with_field("params", json!({}))
        .with_field("session", session);
    if failed.is_none() {
        error = error.with_field("completed", json!([]));
    }
    error
}

/// Checks user-interactive auth: a dummy stage, or the registration token.
fn check_auth(services: &Services, auth: Option<Auth>) -> Result<()> {
    let required = services.registration.token.as_deref();
    let stage = if required.is_some() {
        "m.login.registration_token"
    } else {
        "m.login.dummy"
    };
    let Some(auth) = auth else {
        return Err(auth_needed(stage, None, None));
    };
    match (auth.kind.as_deref(), required) {
        (Some("m.login.dummy"), None) => Ok(()),
        (Some("m.login.registration_token"), Some(expected)) => match auth.token.as_deref() {
            Some(given) if tokens_match(given, expected) => Ok(()),
            _ => Err(auth_needed(
                stage,
                auth.session,
                Some("wrong registration token"),
            )),
        },
        _ => Err(auth_needed(stage, auth.session, None)),
    }
}

async fn register(services: Services, query: String, bytes: Bytes) -> Result<Value> {
    if !services.registration.enabled {
        return Err(disabled());
    }
    if param(&query, "kind").is_some_and(|kind| kind == "guest") {
        return Err(Error::new(
            http::StatusCode::FORBIDDEN,
            "M_GUEST_ACCESS_FORBIDDEN",
            "guest accounts are not offered here",
        ));
    }
    let request: RegisterRequest = body(&bytes)?;
    let name = match &request.username {
        Some(name) => name.clone(),
        None => format!("user{}", rand::random::<u32>()),
    };
    // A taken or invalid name fails before the client completes auth.
    services.accounts.check_new_name(&name)?;
    check_auth(&services, request.auth)?;
    let password = request
        .password
        .ok_or_else(|| Error::missing_param("no password given"))?;
    let user = services.accounts.register(&name, Some(password)).await?;
    if request.inhibit_login {
        return Ok(json!({ "user_id": user }));
    }
    let login = services.accounts.open_session(
        &user,
        request.device_id,
        request.initial_device_display_name,
    )?;
    Ok(json!({
        "user_id": login.user_id,
        "access_token": login.access_token,
        "device_id": login.device_id,
    }))
}

fn available(services: &Services, query: &str) -> Result<Value> {
    if !services.registration.enabled {
        return Err(disabled());
    }
    let name = param(query, "username").ok_or_else(|| Error::missing_param("no username given"))?;
    services.accounts.check_new_name(&name)?;
    Ok(json!({ "available": true }))
}
