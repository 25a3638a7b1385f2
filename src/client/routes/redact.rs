//! `PUT /rooms/{roomId}/redact/{eventId}/{txnId}`: idempotent per device
//! and transaction ID. Spec: client-server-api "Redactions"; redaction.yaml.

use bytes::Bytes;
use ruma::OwnedEventId;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, room_id, session, v3, ClientServices, Route},
    error::Error,
    http_util::{body_limited, percent_decode},
    store::accounts::Session,
};

pub fn route(services: ClientServices) -> Route {
    v3().and(warp::path!("rooms" / String / "redact" / String / String))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |room: String, event: String, txn: String, session: Session, bytes: Bytes| {
                let services = services.clone();
                respond(async move {
                    let room = room_id(&room)?;
                    let decoded = percent_decode(&event);
                    let target = OwnedEventId::try_from(decoded.as_str())
                        .map_err(|e| Error::invalid_param(format!("{decoded:?}: {e}")))?;
                    let trees = services.accounts.trees();
                    let txn = percent_decode(&txn);
                    let txn_key = format!("redact\u{1}{txn}");
                    if let Some(event_id) = trees.txn_event(&session, &txn_key)? {
                        return Ok(json!({ "event_id": event_id }));
                    }
                    let request: Value = body(&bytes)?;
                    let event_id = services
                        .rooms
                        .redact(&room, &session.user_id, &target, request["reason"].as_str())
                        .await?;
                    trees.put_txn_event(&session, &txn_key, Some(&txn), event_id.as_str())?;
                    Ok(json!({ "event_id": event_id }))
                })
            },
        )
        .boxed()
}
