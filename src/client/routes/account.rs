//! `POST /account/password`, `POST /account/deactivate` and
//! `GET /account/3pid` (hearth binds no third-party identifiers).
//! Spec: client-server-api "Account management"; registration.yaml,
//! administrative_contact.yaml.

use bytes::Bytes;
use serde_json::{json, Map, Value};
use warp::Filter;

use crate::{
    client::{body, confirm_password, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::body_limited,
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let for_password = services.clone();
    let password = v3()
        .and(warp::path!("account" / "password"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |session: Session, bytes: Bytes| {
            let services = for_password.clone();
            async move { respond(change_password(services, session, bytes)).await }
        });
    let for_deactivate = services.clone();
    let deactivate = v3()
        .and(warp::path!("account" / "deactivate"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |session: Session, bytes: Bytes| {
            let services = for_deactivate.clone();
            async move { respond(deactivate(services, session, bytes)).await }
        });
    let threepids = v3()
        .and(warp::path!("account" / "3pid"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(|_: Session| respond(async { Ok(json!({"threepids": []})) }));
    password
        .or(deactivate)
        .unify()
        .or(threepids)
        .unify()
        .boxed()
}

/// The new password; every other session ends unless the client asks to
/// keep them (`logout_devices: false`).
async fn change_password(services: Services, session: Session, bytes: Bytes) -> Result<Value> {
    let request: Map<String, Value> = body(&bytes)?;
    confirm_password(
        &services.accounts,
        &session,
        "POST /account/password",
        &request,
    )
    .await?;
    let new = request
        .get("new_password")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::bad_json("new_password must be a non-empty string"))?;
    services
        .accounts
        .set_password(&session.user_id, new.to_owned())
        .await?;
    if request
        .get("logout_devices")
        .and_then(Value::as_bool)
        .unwrap_or(true)
    {
        let removed = services.accounts.logout_others(&session)?;
        services.devices_removed(&session.user_id, &removed)?;
    }
    Ok(json!({}))
}

/// Leaves every room, then locks the account for good.
async fn deactivate(services: Services, session: Session, bytes: Bytes) -> Result<Value> {
    let request: Map<String, Value> = body(&bytes)?;
    confirm_password(
        &services.accounts,
        &session,
        "POST /account/deactivate",
        &request,
    )
    .await?;
    services.membership.leave_all(&session.user_id).await?;
    services.accounts.deactivate(&session.user_id)?;
    Ok(json!({"id_server_unbind_result": "no-support"}))
}
