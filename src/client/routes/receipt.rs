//! `POST /rooms/{roomId}/receipt/{receiptType}/{eventId}` and
//! `POST /rooms/{roomId}/read_markers`. Spec: client-server-api
//! "Receipts", "Fully read markers"; receipts.yaml, read_markers.yaml.

use bytes::Bytes;
use ruma::{OwnedEventId, RoomId};
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, must_be_joined, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, percent_decode},
    request::room_id,
    store::accounts::Session,
    time::now_ms,
};

const RECEIPT_TYPES: [&str; 2] = ["m.read", "m.read.private"];

pub fn routes(services: Services) -> Route {
    let receipt_services = services.clone();
    let one = v3()
        .and(warp::path!("rooms" / String / "receipt" / String / String))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(
            move |room: String, kind: String, event: String, session: Session, bytes: Bytes| {
                let services = receipt_services.clone();
                respond(async move {
                    let room = room_id(&room)?;
                    let kind = percent_decode(&kind);
                    let event = percent_decode(&event);
                    let thread = thread_of(&body(&bytes)?)?;
                    if kind == "m.fully_read" {
                        if thread.is_some() {
                            return Err(Error::invalid_param(
                                "the fully read marker is not per thread",
                            ));
                        }
                        fully_read(&services, &room, &session, &event)?;
                    } else {
                        let receipt = (kind.as_str(), thread.as_deref());
                        receipt_of(&services, &room, &session, receipt, &event)?;
                    }
                    Ok(json!({}))
                })
            },
        );
    let markers = v3()
        .and(warp::path!("rooms" / String / "read_markers"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |room: String, session: Session, bytes: Bytes| {
            let services = services.clone();
            respond(async move {
                let room = room_id(&room)?;
                let markers: Value = body(&bytes)?;
                if let Some(event) = markers["m.fully_read"].as_str() {
                    fully_read(&services, &room, &session, event)?;
                }
                for kind in RECEIPT_TYPES {
                    if let Some(event) = markers[kind].as_str() {
                        receipt_of(&services, &room, &session, (kind, None), event)?;
                    }
                }
                Ok(json!({}))
            })
        });
    one.or(markers).unify().boxed()
}

fn event_in(services: &Services, room: &RoomId, event: &str) -> Result<OwnedEventId> {
    let id: OwnedEventId = crate::request::parsed("eventId", event)?;
    services.rooms.event(Some(room), &id)?;
    Ok(id)
}

/// A receipt's `thread_id`: `main` or a thread root's event ID.
/// Spec: client-server-api "Threaded read receipts".
fn thread_of(body: &Value) -> Result<Option<String>> {
    match &body["thread_id"] {
        Value::Null => Ok(None),
        Value::String(main) if main == "main" => Ok(Some(main.clone())),
        Value::String(root) => {
            let root: OwnedEventId = crate::request::parsed("thread_id", root)?;
            Ok(Some(root.to_string()))
        }
        _ => Err(Error::invalid_param("thread_id must be a string")),
    }
}

fn receipt_of(
    services: &Services,
    room: &RoomId,
    session: &Session,
    (kind, thread): (&str, Option<&str>),
    event: &str,
) -> Result<()> {
    if !RECEIPT_TYPES.contains(&kind) {
        return Err(Error::invalid_param(format!(
            "unknown receipt type {kind:?}"
        )));
    }
    must_be_joined(&services.rooms, room, &session.user_id)?;
    let id = event_in(services, room, event)?;
    services
        .edus
        .set_receipt(room, kind, &session.user_id, &id, (now_ms(), thread))
}

/// The fully-read marker is room account data.
fn fully_read(services: &Services, room: &RoomId, session: &Session, event: &str) -> Result<()> {
    must_be_joined(&services.rooms, room, &session.user_id)?;
    let id = event_in(services, room, event)?;
    let content = json!({ "event_id": id });
    services.accounts.set_account_data(
        &services.rooms,
        &session.user_id,
        Some(room.as_str()),
        "m.fully_read",
        content,
    )
}
