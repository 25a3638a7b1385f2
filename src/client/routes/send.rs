//! `PUT /rooms/{roomId}/send/{eventType}/{txnId}`: idempotent per device
//! and transaction ID; and r0's `POST /rooms/{roomId}/send/{eventType}`.
//! Spec: client-server-api "Sending events to a room"; room_send.yaml.

use bytes::Bytes;
use ruma::RoomId;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, percent_decode, raw_query},
    request::room_id,
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    let put_services = services.clone();
    let put = v3()
        .and(warp::path!("rooms" / String / "send" / String / String))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .and(body_limited())
        .then(
            move |room: String,
                  kind: String,
                  txn: String,
                  session: Session,
                  query: String,
                  bytes: Bytes| {
                let services = put_services.clone();
                let sent = (room, kind, Some(txn));
                async move { respond(send(services, sent, session, &query, bytes)).await }
            },
        );
    // r0's `POST` without a transaction ID: not idempotent, still sent by
    // older bots and tools (Synapse keeps it too).
    let post = v3()
        .and(warp::path!("rooms" / String / "send" / String))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |room: String, kind: String, session: Session, bytes: Bytes| {
                let services = services.clone();
                async move { respond(send(services, (room, kind, None), session, "", bytes)).await }
            },
        );
    put.or(post).unify().boxed()
}

async fn send(
    services: Services,
    (room, kind, txn): (String, String, Option<String>),
    session: Session,
    query: &str,
    bytes: Bytes,
) -> Result<Value> {
    let room = room_id(&room)?;
    let kind = percent_decode(&kind);
    let txn = txn.map(|t| percent_decode(&t));
    let accounts = &services.accounts;
    if let Some(txn) = &txn {
        if let Some(event_id) = accounts.txn_event(&session, txn)? {
            // A record without its event: the server stopped in between.
            if services.rooms.has_event(&event_id)? {
                return Ok(json!({ "event_id": event_id }));
            }
        }
    }
    let content: Value = body(&bytes)?;
    check_content(&room, &kind, &content)?;
    services
        .rooms
        .check_new_relation(&room, &session.user_id, &kind, &content)?;
    services.user_limits.message(&session.user_id)?;
    if let Some(delay) = delay_of(query)? {
        let txn = txn.as_deref().map(|t| (session.device_id.as_str(), t));
        let id = services
            .delayed
            .schedule(&session.user_id, &room, (&kind, None), content, delay, txn)
            .await?;
        return Ok(json!({ "delay_id": id }));
    }
    let rooms = &services.rooms;
    let ts = appservice_ts(&session, query)?;
    let event_id = match &txn {
        Some(txn) => {
            rooms
                .send_once(&room, &session.user_id, &kind, content, ts, |id| {
                    accounts.put_txn_event(&session, txn, Some(txn), id.as_str())
                })
                .await?
        }
        None => {
            rooms
                .send_at(&room, &session.user_id, (&kind, None, content), ts)
                .await?
        }
    };
    Ok(json!({ "event_id": event_id }))
}

/// The `?ts=` of an application service's request: the time to give the
/// event (other users' `ts` is ignored, as Synapse ignores it).
/// Spec: application-service-api.md "Timestamp massaging".
pub(super) fn appservice_ts(session: &Session, query: &str) -> Result<Option<u64>> {
    if session.appservice.is_none() {
        return Ok(None);
    }
    crate::request::Query::parse(query)
        .get("ts")
        .map(|ts| {
            ts.parse::<u64>()
                .map_err(|_| Error::invalid_param(format!("ts {ts:?} is not a time in ms")))
        })
        .transpose()
}

/// The fields clients rely on in the events everyone renders, checked
/// before anything is sent, as Synapse's event validator does (it answers
/// 400 too): a message's `body` and `msgtype`, a topic, a name, a known
/// membership, a tombstone pointing elsewhere.
pub(super) fn check_content(room: &RoomId, kind: &str, content: &Value) -> Result<()> {
    let strings: &[&str] = match kind {
        "m.room.message" => &["body", "msgtype"],
        "m.room.topic" => &["topic"],
        "m.room.name" => &["name"],
        "m.room.tombstone" => &["replacement_room"],
        _ => &[],
    };
    for field in strings {
        if !content[field].is_string() {
            return Err(Error::bad_json(format!(
                "{kind} needs {field:?} as a string"
            )));
        }
    }
    match kind {
        "m.room.member" => {
            let known = ["invite", "join", "leave", "ban", "knock"];
            if !content["membership"]
                .as_str()
                .is_some_and(|m| known.contains(&m))
            {
                return Err(Error::bad_json(
                    "membership must be invite, join, leave, ban or knock",
                ));
            }
        }
        "m.room.tombstone" if content["replacement_room"] == room.as_str() => {
            return Err(Error::bad_json("a tombstone cannot point at its own room"));
        }
        _ => {}
    }
    Ok(())
}

/// MSC4140's `org.matrix.msc4140.delay` (ms): send the event that much
/// later, as a delayed event, unless restarted or cancelled.
pub(super) fn delay_of(query: &str) -> Result<Option<u64>> {
    crate::request::param(query, "org.matrix.msc4140.delay")
        .map(|d| {
            d.parse::<u64>().map_err(|_| {
                Error::invalid_param("org.matrix.msc4140.delay must be a number of ms")
            })
        })
        .transpose()
}
