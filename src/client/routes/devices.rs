//! `GET /devices`, `GET`/`PUT`/`DELETE /devices/{deviceId}` and
//! `POST /delete_devices`: a user's sessions. Deleting needs the password
//! again (user-interactive auth). Application services that manage their
//! users' devices create and delete them (MSC4190).
//! Spec: client-server-api "Device Management"; device_management.yaml.

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Map, Value};
use warp::{reply::Response, Filter};

use crate::{
    accounts::AccountService,
    client::{body, confirm_password, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, json_response, ok_json, percent_decode, reply},
    store::accounts::{Device, Session},
};

fn describe(id: &str, device: &Device) -> Value {
    json!({
        "device_id": id,
        "display_name": device.display_name,
        "last_seen_ts": device.last_seen_ts,
    })
}

pub fn routes(services: Services) -> Route {
    let accounts = services.accounts.clone();
    let list = v3()
        .and(warp::path!("devices"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let accounts = accounts.clone();
            respond(async move {
                let devices: Vec<Value> = accounts
                    .devices_of(&session.user_id)?
                    .iter()
                    .map(|(id, d)| describe(id, d))
                    .collect();
                Ok(json!({ "devices": devices }))
            })
        });
    let accounts = services.accounts.clone();
    let get = v3()
        .and(warp::path!("devices" / String))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |id: String, session: Session| {
            let accounts = accounts.clone();
            respond(async move {
                let id = percent_decode(&id);
                let device = accounts.device(&session.user_id, id.as_str().into())?;
                Ok(describe(&id, &device))
            })
        });
    let accounts = services.accounts.clone();
    let rename = v3()
        .and(warp::path!("devices" / String))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |id: String, session: Session, bytes: Bytes| {
            let accounts = accounts.clone();
            async move {
                reply(put_device(
                    &accounts,
                    &percent_decode(&id),
                    &session,
                    &bytes,
                ))
            }
        });
    let bulk_services = services.clone();
    let delete_many = v3()
        .and(warp::path!("delete_devices"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |session: Session, bytes: Bytes| {
            let services = bulk_services.clone();
            async move { respond(delete_many(services, session, bytes)).await }
        });
    let delete = v3()
        .and(warp::path!("devices" / String))
        .and(warp::delete())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |id: String, session: Session, bytes: Bytes| {
            let services = services.clone();
            async move { respond(delete(services, percent_decode(&id), session, bytes)).await }
        });
    list.or(get)
        .unify()
        .or(rename)
        .unify()
        .or(delete)
        .unify()
        .or(delete_many)
        .unify()
        .boxed()
}

/// Renames a device; an application service that manages its users'
/// devices creates one this way (201; MSC4190).
fn put_device(
    accounts: &AccountService,
    id: &str,
    session: &Session,
    bytes: &Bytes,
) -> Result<Response> {
    let request: Value = body(bytes)?;
    let name = request["display_name"].as_str().map(str::to_owned);
    let device: &ruma::DeviceId = id.into();
    if accounts.manages_devices(session)
        && accounts.create_appservice_device(session, device, name.clone())?
    {
        return Ok(json_response(StatusCode::CREATED, &json!({})));
    }
    accounts.rename_device(&session.user_id, device, name)?;
    Ok(ok_json(&json!({})))
}

/// Needs `auth` with the user's password (user-interactive auth), but
/// for an application service that manages devices (MSC4190).
async fn delete(services: Services, id: String, session: Session, bytes: Bytes) -> Result<Value> {
    let request: Map<String, Value> = body(&bytes)?;
    let operation = format!("DELETE /devices/{id}");
    if !services.accounts.manages_devices(&session) {
        confirm_password(&services.accounts, &session, &operation, &request).await?;
    }
    remove(&services, &session, &id)?;
    Ok(json!({}))
}

/// Most devices one request deletes.
const MAX_BULK: usize = 1_000;

/// Several devices at once (what Element's session manager sends); the
/// UIA session covers this list of devices only.
async fn delete_many(services: Services, session: Session, bytes: Bytes) -> Result<Value> {
    let request: Map<String, Value> = body(&bytes)?;
    let devices: Vec<String> = request
        .get("devices")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| Error::bad_json(format!("devices: {e}")))?
        .ok_or_else(|| Error::missing_param("devices is required"))?;
    if devices.len() > MAX_BULK {
        return Err(Error::too_large(format!(
            "at most {MAX_BULK} devices at once"
        )));
    }
    let mut sorted = devices.clone();
    sorted.sort();
    let operation = format!("POST /delete_devices {}", sorted.join(","));
    if !services.accounts.manages_devices(&session) {
        confirm_password(&services.accounts, &session, &operation, &request).await?;
    }
    for id in &devices {
        remove(&services, &session, id)?;
    }
    Ok(json!({}))
}

fn remove(services: &Services, session: &Session, id: &str) -> Result<()> {
    services
        .accounts
        .remove_device(&session.user_id, id.into())?;
    services.devices_removed(&session.user_id, &[id.to_owned()])
}
