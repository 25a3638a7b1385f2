//! A PDU parsed once into the fields the event pipeline, authorization and
//! state resolution read; implements ruma's state-res `Event` trait.
//! Spec: rooms/v1 "Event format" (`prev_events`/`auth_events` as
//! `[id, hashes]` pairs), rooms/v3+ (bare IDs), rooms/v12 (no `room_id` on
//! the create event).

use ruma::{
    events::TimelineEventType,
    room_version_rules::{EventsReferenceFormatVersion, RoomVersionRules},
    CanonicalJsonObject, CanonicalJsonValue, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId,
    OwnedUserId, RoomId, UInt, UserId,
};
use serde_json::value::RawValue;

use super::checks::Refused;

#[derive(Debug, Clone)]
pub struct Pdu {
    pub event_id: OwnedEventId,
    pub room_id: Option<OwnedRoomId>,
    pub sender: OwnedUserId,
    pub origin_server_ts: MilliSecondsSinceUnixEpoch,
    pub kind: TimelineEventType,
    pub content: Box<RawValue>,
    pub state_key: Option<String>,
    pub prev_events: Vec<OwnedEventId>,
    pub auth_events: Vec<OwnedEventId>,
    pub redacts: Option<OwnedEventId>,
    pub depth: UInt,
    pub rejected: bool,
}

fn string<'a>(object: &'a CanonicalJsonObject, field: &str) -> Result<&'a str, Refused> {
    match object.get(field) {
        Some(CanonicalJsonValue::String(s)) => Ok(s),
        _ => Err(Refused(format!("{field} is missing or not a string"))),
    }
}

fn optional_string<'a>(
    object: &'a CanonicalJsonObject,
    field: &str,
) -> Result<Option<&'a str>, Refused> {
    match object.get(field) {
        None => Ok(None),
        Some(CanonicalJsonValue::String(s)) => Ok(Some(s)),
        Some(_) => Err(Refused(format!("{field} is not a string"))),
    }
}

fn parse_event_id(text: &str, field: &str) -> Result<OwnedEventId, Refused> {
    OwnedEventId::try_from(text)
        .map_err(|e| Refused(format!("{field}: {text:?} is not an event ID: {e}")))
}

/// `prev_events` / `auth_events` in either reference format.
fn references(
    object: &CanonicalJsonObject,
    field: &str,
    format: &EventsReferenceFormatVersion,
) -> Result<Vec<OwnedEventId>, Refused> {
    let Some(CanonicalJsonValue::Array(items)) = object.get(field) else {
        return Err(Refused(format!("{field} is missing or not a list")));
    };
    items
        .iter()
        .map(|item| match (format, item) {
            (EventsReferenceFormatVersion::V1, CanonicalJsonValue::Array(pair)) => {
                match pair.first() {
                    Some(CanonicalJsonValue::String(id)) => parse_event_id(id, field),
                    _ => Err(Refused(format!(
                        "{field} holds a malformed [id, hashes] pair"
                    ))),
                }
            }
            (EventsReferenceFormatVersion::V1, _) => {
                Err(Refused(format!("{field} must hold [id, hashes] pairs")))
            }
            (_, CanonicalJsonValue::String(id)) => parse_event_id(id, field),
            _ => Err(Refused(format!("{field} must hold event IDs"))),
        })
        .collect()
}

impl Pdu {
    /// `content.membership`, for member events.
    pub fn membership(&self) -> Option<&str> {
        #[derive(serde::Deserialize)]
        struct Membership<'a> {
            #[serde(borrow)]
            membership: Option<&'a str>,
        }
        serde_json::from_str::<Membership<'_>>(self.content.get())
            .ok()
            .and_then(|m| m.membership)
    }

    /// Reads a PDU whose format was already checked (see `checks::check`).
    pub fn parse(
        event_id: OwnedEventId,
        object: &CanonicalJsonObject,
        rules: &RoomVersionRules,
    ) -> Result<Self, Refused> {
        let format = &rules.events_reference_format;
        let content = match object.get("content") {
            Some(content @ CanonicalJsonValue::Object(_)) => {
                serde_json::value::to_raw_value(content)
                    .map_err(|e| Refused(format!("content: {e}")))?
            }
            _ => return Err(Refused("content is missing or not an object".into())),
        };
        let ts = match object.get("origin_server_ts") {
            Some(CanonicalJsonValue::Integer(ts)) => UInt::try_from(i64::from(*ts))
                .map_err(|_| Refused("negative origin_server_ts".into()))?,
            _ => return Err(Refused("origin_server_ts is missing".into())),
        };
        let depth = match object.get("depth") {
            Some(CanonicalJsonValue::Integer(d)) => {
                UInt::try_from(i64::from(*d)).map_err(|_| Refused("negative depth".into()))?
            }
            _ => return Err(Refused("depth is missing".into())),
        };
        // Since v11 `redacts` lives in the content; earlier it is top-level.
        let redacts = match optional_string(object, "redacts")? {
            Some(id) => Some(parse_event_id(id, "redacts")?),
            None => content_redacts(&content)?,
        };
        Ok(Self {
            event_id,
            room_id: optional_string(object, "room_id")?
                .map(|id| OwnedRoomId::try_from(id).map_err(|e| Refused(format!("room_id: {e}"))))
                .transpose()?,
            sender: OwnedUserId::try_from(string(object, "sender")?)
                .map_err(|e| Refused(format!("sender: {e}")))?,
            origin_server_ts: MilliSecondsSinceUnixEpoch(ts),
            kind: string(object, "type")?.into(),
            content,
            state_key: optional_string(object, "state_key")?.map(str::to_owned),
            prev_events: references(object, "prev_events", format)?,
            auth_events: references(object, "auth_events", format)?,
            redacts,
            depth,
            rejected: false,
        })
    }
}

fn content_redacts(content: &RawValue) -> Result<Option<OwnedEventId>, Refused> {
    #[derive(serde::Deserialize)]
    struct Redacts {
        redacts: Option<serde_json::Value>,
    }
    let parsed: Redacts =
        serde_json::from_str(content.get()).map_err(|e| Refused(format!("content: {e}")))?;
    match parsed.redacts {
        Some(serde_json::Value::String(id)) => parse_event_id(&id, "content.redacts").map(Some),
        _ => Ok(None),
    }
}

impl ruma::state_res::Event for Pdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &Self::Id {
        &self.event_id
    }

    fn room_id(&self) -> Option<&RoomId> {
        self.room_id.as_deref()
    }

    fn sender(&self) -> &UserId {
        &self.sender
    }

    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.origin_server_ts
    }

    fn event_type(&self) -> &TimelineEventType {
        &self.kind
    }

    fn content(&self) -> &RawValue {
        &self.content
    }

    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }

    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.prev_events.iter())
    }

    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.auth_events.iter())
    }

    fn redacts(&self) -> Option<&Self::Id> {
        self.redacts.as_ref()
    }

    fn rejected(&self) -> bool {
        self.rejected
    }
}

/// Checked events of one room by ID, each parsed.
pub type Checked = std::collections::HashMap<OwnedEventId, (Pdu, super::checks::CheckedPdu)>;

/// An event's `origin_server_ts`.
pub fn origin_ts(event: &ruma::CanonicalJsonObject) -> Option<u64> {
    match event.get("origin_server_ts") {
        Some(ruma::CanonicalJsonValue::Integer(ts)) => u64::try_from(i64::from(*ts)).ok(),
        _ => None,
    }
}

/// A string field of an event's `content`.
pub fn content_str(event: &ruma::CanonicalJsonObject, name: &str) -> Option<String> {
    match event.get("content") {
        Some(ruma::CanonicalJsonValue::Object(content)) => match content.get(name) {
            Some(ruma::CanonicalJsonValue::String(value)) => Some(value.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests;
