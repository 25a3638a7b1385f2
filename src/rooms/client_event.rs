//! Events as clients see them: the PDU without its federation fields.
//! Spec: client-server-api "Room Event Format", "Stripped state".

use ruma::{CanonicalJsonObject, CanonicalJsonValue, EventId};
use serde_json::{Map, Value};

use crate::time::now_ms;

/// Fields of a PDU a client sees (`room_id` only where asked for).
const CLIENT_FIELDS: [&str; 6] = [
    "type",
    "sender",
    "origin_server_ts",
    "content",
    "state_key",
    "redacts",
];

/// The client form of a PDU: `ClientEventWithoutRoomID` unless `room` is set.
pub fn client_event(id: &EventId, pdu: &CanonicalJsonObject, room: bool) -> Value {
    let mut event = Map::new();
    for field in CLIENT_FIELDS
        .iter()
        .copied()
        .chain(room.then_some("room_id"))
    {
        if let Some(value) = pdu.get(field) {
            event.insert(field.to_owned(), value.clone().into());
        }
    }
    event.insert("event_id".into(), Value::String(id.to_string()));
    let sent = match pdu.get("origin_server_ts") {
        Some(CanonicalJsonValue::Integer(ts)) => u64::try_from(i64::from(*ts)).unwrap_or(0),
        _ => 0,
    };
    let mut unsigned = Map::new();
    unsigned.insert("age".into(), now_ms().saturating_sub(sent).into());
    event.insert("unsigned".into(), Value::Object(unsigned));
    Value::Object(event)
}

/// The stripped form of a state event, as invites and knocks carry it.
pub fn stripped(pdu: &CanonicalJsonObject) -> Value {
    let mut event = Map::new();
    for field in ["type", "state_key", "content", "sender"] {
        if let Some(value) = pdu.get(field) {
            event.insert(field.to_owned(), value.clone().into());
        }
    }
    Value::Object(event)
}
