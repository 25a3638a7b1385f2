//! `PUT /rooms/{roomId}/redact/{eventId}/{txnId}`: idempotent per device
//! and transaction ID. Spec: client-server-api "Redactions"; redaction.yaml.

use bytes::Bytes;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    http_util::{body_limited, percent_decode},
    request::room_id,
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("rooms" / String / "redact" / String / String))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |room: String, event: String, txn: String, session: Session, bytes: Bytes| {
                let services = services.clone();
                respond(async move {
                    let room = room_id(&room)?;
                    let target = crate::request::event_id(&event)?;
                    let accounts = &services.accounts;
                    let txn = percent_decode(&txn);
                    let txn_key = format!("redact\u{1}{txn}");
                    if let Some(event_id) = accounts.txn_event(&session, &txn_key)? {
                        return Ok(json!({ "event_id": event_id }));
                    }
                    let request: Value = body(&bytes)?;
                    let event_id = services
                        .rooms
                        .redact(&room, &session.user_id, &target, request["reason"].as_str())
                        .await?;
                    accounts.put_txn_event(&session, &txn_key, Some(&txn), event_id.as_str())?;
                    Ok(json!({ "event_id": event_id }))
                })
            },
        )
        .boxed()
}
