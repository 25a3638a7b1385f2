//! `GET`/`POST /login` with `m.login.password`, and
//! `m.login.application_service` for application services' users.
//! Spec: client-server-api "Login"; login.yaml.

use std::net::IpAddr;

use bytes::Bytes;
use ruma::OwnedDeviceId;
use serde::Deserialize;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    accounts::NewDevice,
    client::{body, respond, token, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, ok_json},
    listener::PeerIp,
};

#[derive(Deserialize)]
struct Identifier {
    #[serde(rename = "type")]
    kind: String,
    user: Option<String>,
}

#[derive(Deserialize)]
struct LoginRequest {
    #[serde(rename = "type")]
    kind: String,
    identifier: Option<Identifier>,
    /// Deprecated form of `identifier.user`, still sent by some clients.
    user: Option<String>,
    password: Option<String>,
    device_id: Option<OwnedDeviceId>,
    initial_device_display_name: Option<String>,
    /// Whether the client can refresh its access token (which then expires).
    #[serde(default)]
    refresh_token: bool,
}

pub fn routes(services: Services) -> Route {
    let flows = v3().and(warp::path!("login")).and(warp::get()).map(|| {
        ok_json(&json!({"flows": [
            {"type": "m.login.password"},
            {"type": "m.login.application_service"},
        ]}))
    });
    let login = v3()
        .and(warp::path!("login"))
        .and(warp::post())
        .and(warp::ext::optional::<PeerIp>())
        .and(token())
        .and(body_limited())
        .then(
            move |from: Option<PeerIp>, token: Option<String>, bytes: Bytes| {
                let services = services.clone();
                async move { respond(login(services, bytes, from.map(|p| p.0), token)).await }
            },
        );
    flows.or(login).unify().boxed()
}

async fn login(
    services: Services,
    bytes: Bytes,
    from: Option<IpAddr>,
    token: Option<String>,
) -> Result<Value> {
    let request: LoginRequest = body(&bytes)?;
    let appservice = request.kind == "m.login.application_service";
    if request.kind != "m.login.password" && !appservice {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            format!(
                "login type {:?} is not supported; use m.login.password",
                request.kind
            ),
        ));
    }
    let name = match request.identifier {
        Some(Identifier {
            kind,
            user: Some(user),
        }) if kind == "m.id.user" => user,
        Some(Identifier { kind, .. }) if kind != "m.id.user" => {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                format!("identifier type {kind:?} is not supported; use m.id.user"),
            ))
        }
        _ => request
            .user
            .ok_or_else(|| Error::missing_param("no user given"))?,
    };
    let device = NewDevice {
        id: request.device_id,
        display_name: request.initial_device_display_name,
        refresh: request.refresh_token,
    };
    if appservice {
        services
            .accounts
            .refuse_login_if_managing_devices(token.as_deref())?;
        let user = services
            .accounts
            .appservice_login(token.as_deref(), &name)?;
        let login = services.accounts.open_session(&user, device)?;
        return Ok(login_answer(&login));
    }
    let password = request
        .password
        .ok_or_else(|| Error::missing_param("no password given"))?;
    let login = services
        .accounts
        .login(&name, password, device, from)
        .await?;
    let mut answer = login_answer(&login);
    answer["home_server"] = json!(login.user_id.server_name());
    Ok(answer)
}

/// What login and registration answer for a new session: the token, and
/// for a client that asked, the refresh token and the token's lifetime.
pub(super) fn login_answer(login: &crate::accounts::Login) -> Value {
    let mut answer = json!({
        "user_id": login.user_id,
        "access_token": login.access_token,
        "device_id": login.device_id,
    });
    if let Some((refresh_token, lifetime)) = &login.refresh {
        answer["refresh_token"] = json!(refresh_token);
        answer["expires_in_ms"] = json!(lifetime);
    }
    answer
}
