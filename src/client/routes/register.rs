//! `POST /register` (off unless `registration.enabled`, optionally gated by
//! a registration token) and `GET /register/available`.
//! Spec: client-server-api "Account registration", "User-interactive
//! authentication API", "Token-authenticated registration".

use bytes::Bytes;
use ruma::OwnedDeviceId;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use warp::Filter;

use crate::{
    accounts::{uia::Verdict, NewDevice},
    admin::tokens_match,
    client::{body, respond, token, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, raw_query},
    listener::PeerIp,
    request::param,
};

/// The fields of a registration, from the request that completes it or
/// the earlier ones of its UIA session.
#[derive(Deserialize)]
struct RegisterRequest {
    username: Option<String>,
    password: Option<String>,
    device_id: Option<OwnedDeviceId>,
    initial_device_display_name: Option<String>,
    #[serde(default)]
    inhibit_login: bool,
    #[serde(default)]
    refresh_token: bool,
}

pub fn routes(services: Services) -> Route {
    let register_services = services.clone();
    let register = v3()
        .and(warp::path!("register"))
        .and(warp::post())
        .and(raw_query())
        .and(warp::ext::optional::<PeerIp>())
        .and(token())
        .and(body_limited())
        .then(
            move |query: String, from: Option<PeerIp>, token: Option<String>, bytes: Bytes| {
                let services = register_services.clone();
                async move {
                    respond(async move {
                        let request: Map<String, Value> = body(&bytes)?;
                        if request.get("type").and_then(Value::as_str) == Some(APPSERVICE) {
                            for_appservice(&services, token.as_deref(), &request).await
                        } else {
                            register(services, query, from, request).await
                        }
                    })
                    .await
                }
            },
        );
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

/// The one stage this server asks for: the registration token when one
/// is configured, else the dummy stage.
fn stage(services: &Services) -> &'static str {
    if services.registration.token.is_some() {
        "m.login.registration_token"
    } else {
        "m.login.dummy"
    }
}

/// Creates the account once the session's stage is complete, with the
/// username and password of whichever of its requests gave them; the
/// same session completed again logs in to the same account.
async fn register(
    services: Services,
    query: String,
    from: Option<PeerIp>,
    request: Map<String, Value>,
) -> Result<Value> {
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
    let first: RegisterRequest = serde_json::from_value(Value::Object(request.clone()))
        .map_err(|e| Error::bad_json(format!("request body: {e}")))?;
    // A taken or invalid name fails before the client completes auth.
    let starting = request
        .get("auth")
        .is_none_or(|a| a.get("session").is_none());
    if let (true, Some(name)) = (starting, &first.username) {
        services.accounts.check_new_name(name)?;
    }
    let expected = services.registration.token.clone();
    let passed = services
        .accounts
        .uia()
        .authenticate(
            "POST /register",
            stage(&services),
            &request,
            |auth| async move {
                Ok(match expected {
                    None => Verdict::Passed,
                    Some(expected) => match auth["token"].as_str() {
                        Some(given) if tokens_match(given, &expected) => Verdict::Passed,
                        _ => Verdict::Failed("wrong registration token".into()),
                    },
                })
            },
        )
        .await?;
    let fields: RegisterRequest = serde_json::from_value(Value::Object(passed.params))
        .map_err(|e| Error::bad_json(format!("request body: {e}")))?;
    let user = match passed.outcome.as_ref().and_then(Value::as_str) {
        Some(done) => crate::request::user_id(done)?,
        None => {
            let name = match &fields.username {
                Some(name) => name.clone(),
                None => format!("user{}", rand::random::<u32>()),
            };
            services.accounts.check_new_name(&name)?;
            let password = fields
                .password
                .clone()
                .ok_or_else(|| Error::missing_param("no password given"))?;
            services.user_limits.may_register(from)?;
            let user = services.accounts.register(&name, Some(password)).await?;
            services.user_limits.registered(from);
            services
                .accounts
                .uia()
                .set_outcome(&passed.session, json!(user));
            user
        }
    };
    logged_in(&services, user, fields)
}

/// The registration's answer: the user, logged in unless it asked not to be.
fn logged_in(
    services: &Services,
    user: ruma::OwnedUserId,
    fields: RegisterRequest,
) -> Result<Value> {
    if fields.inhibit_login {
        return Ok(json!({ "user_id": user }));
    }
    let login = services.accounts.open_session(
        &user,
        NewDevice {
            id: fields.device_id,
            display_name: fields.initial_device_display_name,
            refresh: fields.refresh_token,
        },
    )?;
    Ok(super::login::login_answer(&login))
}

/// The registration type of application services' users.
const APPSERVICE: &str = "m.login.application_service";

/// A user an application service registers in its namespace, with its
/// `as_token`: no interactive auth, whether or not registration is open.
/// Spec: application-service-api.md "Server admin style permissions".
async fn for_appservice(
    services: &Services,
    token: Option<&str>,
    request: &Map<String, Value>,
) -> Result<Value> {
    let fields: RegisterRequest = serde_json::from_value(Value::Object(request.clone()))
        .map_err(|e| Error::bad_json(format!("request body: {e}")))?;
    let name = fields
        .username
        .as_deref()
        .ok_or_else(|| Error::missing_param("no username given"))?;
    if !fields.inhibit_login {
        services.accounts.refuse_login_if_managing_devices(token)?;
    }
    let user = services
        .accounts
        .register_for_appservice(token, name)
        .await?;
    logged_in(services, user, fields)
}

fn available(services: &Services, query: &str) -> Result<Value> {
    if !services.registration.enabled {
        return Err(disabled());
    }
    let name = param(query, "username").ok_or_else(|| Error::missing_param("no username given"))?;
    services.accounts.check_new_name(&name)?;
    Ok(json!({ "available": true }))
}
