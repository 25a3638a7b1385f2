//! `PUT /sendToDevice/{eventType}/{txnId}`: idempotent per device and
//! transaction ID. Spec: client-server-api "Send-to-Device messaging";
//! to_device.yaml.

use std::collections::HashMap;

use bytes::Bytes;
use ruma::OwnedUserId;
use serde::Deserialize;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    http_util::{body_limited, percent_decode},
    store::accounts::Session,
};

#[derive(Deserialize)]
struct Messages {
    messages: HashMap<OwnedUserId, HashMap<String, Value>>,
}

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("sendToDevice" / String / String))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |kind: String, txn: String, session: Session, bytes: Bytes| {
                let services = services.clone();
                respond(async move {
                    let (kind, txn) = (percent_decode(&kind), percent_decode(&txn));
                    let accounts = &services.accounts;
                    // Shares the send transaction map, under its own namespace.
                    let txn_key = format!("sendToDevice\u{1}{txn}");
                    if accounts.txn_event(&session, &txn_key)?.is_some() {
                        return Ok(json!({}));
                    }
                    let request: Messages = body(&bytes)?;
                    let message_id = format!("{}{}", session.device_id, txn);
                    services.edus.send_to_device(
                        &session.user_id,
                        &kind,
                        &message_id,
                        request.messages,
                    )?;
                    accounts.put_txn_event(&session, &txn_key, None, "")?;
                    Ok(json!({}))
                })
            },
        )
        .boxed()
}
