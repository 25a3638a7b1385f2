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
    // Room version 12's create event has no `room_id`: the room's ID is
    // its event ID with `!` for `$`, and clients (mautrix) require the field.
    if room && !event.contains_key("room_id") {
        if let Some(hash) = id.as_str().strip_prefix('$') {
            event.insert("room_id".into(), Value::String(format!("!{hash}")));
        }
    }
    // Since room version 11 `redacts` is in the content; clients written
    // before still read it at the top level, as Synapse keeps serving it.
    if !event.contains_key("redacts") {
        if let Some(target) = event.get("content").and_then(|c| c.get("redacts")).cloned() {
            event.insert("redacts".into(), target);
        }
    }
    let sent = match pdu.get("origin_server_ts") {
        Some(CanonicalJsonValue::Integer(ts)) => u64::try_from(i64::from(*ts)).unwrap_or(0),
        _ => 0,
    };
    let mut unsigned = Map::new();
    unsigned.insert("age".into(), now_ms().saturating_sub(sent).into());
    // Set on a stored event when a redaction rewrote it.
    if let Some(CanonicalJsonValue::Object(stored)) = pdu.get("unsigned") {
        if let Some(because) = stored.get("redacted_because") {
            unsigned.insert("redacted_because".into(), because.clone().into());
        }
    }
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

/// Adds `unsigned.transaction_id` to an event the requesting device sent
/// itself, so the client can match it to its local echo.
/// Spec: client-server-api "Transaction identifiers".
pub fn echo_transaction_id(
    accounts: &crate::store::accounts::AccountTrees,
    event: &mut Value,
    user: &ruma::UserId,
    device: &str,
) -> crate::error::Result<()> {
    if event["sender"] != user.as_str() {
        return Ok(());
    }
    let Some(id) = event["event_id"].as_str() else {
        return Ok(());
    };
    if let Some((sender_device, txn)) = accounts.txn_of_event(id)? {
        if sender_device == device {
            if !event["unsigned"].is_object() {
                event["unsigned"] = Value::Object(Map::new());
            }
            event["unsigned"]["transaction_id"] = Value::String(txn);
        }
    }
    Ok(())
}
