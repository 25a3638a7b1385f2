//! Filters as `/sync` applies them: ruma's `FilterDefinition`, parsed
//! strictly (a filter of the wrong shape is refused, as Synapse's schema
//! check does), and matched against rooms and events.
//! Spec: client-server-api "Filtering", "Lazy-loading room members".

use ruma::{
    api::client::filter::{
        EventFormat, FilterDefinition, LazyLoadOptions, RoomEventFilter, UrlFilter,
    },
    CanonicalJsonObject, RoomId,
};
use serde_json::Value;

use crate::error::{Error, Result};

/// Most timeline events per room in one response.
const MAX_TIMELINE: usize = 100;
const DEFAULT_TIMELINE: usize = 10;

#[derive(Debug, Clone, Default)]
pub struct Filter {
    definition: FilterDefinition,
}

impl Filter {
    /// A filter as a client wrote it, stored or inline; `M_BAD_JSON` when
    /// it is not one.
    pub fn parse(json: &Value) -> Result<Self> {
        let definition: FilterDefinition = serde_json::from_value(json.clone())
            .map_err(|e| Error::bad_json(format!("invalid filter: {e}")))?;
        if !matches!(
            definition.event_format,
            EventFormat::Client | EventFormat::Federation
        ) {
            return Err(Error::bad_json(
                "event_format is \"client\" or \"federation\"",
            ));
        }
        Ok(Self { definition })
    }

    pub fn timeline_limit(&self) -> usize {
        self.definition
            .room
            .timeline
            .limit
            .map_or(DEFAULT_TIMELINE, |n| {
                usize::try_from(u64::from(n)).map_or(MAX_TIMELINE, |n| n.clamp(1, MAX_TIMELINE))
            })
    }

    /// Lazy loading as the `state` filter asks for it (where Synapse and
    /// Element put it).
    pub fn lazy_members(&self) -> LazyLoadOptions {
        self.definition.room.state.lazy_load_options
    }

    /// Whether the client counts threads apart (`unread_thread_notifications`
    /// in the timeline filter). Spec: "Threaded read receipts".
    pub fn thread_counts(&self) -> bool {
        self.definition.room.timeline.unread_thread_notifications
    }

    /// Whether events go out as federation PDUs rather than client events.
    pub fn federation_format(&self) -> bool {
        self.definition.event_format == EventFormat::Federation
    }

    /// Whether rooms the user left are in an initial sync.
    pub fn include_leave(&self) -> bool {
        self.definition.room.include_leave
    }

    pub fn room_allowed(&self, room: &RoomId) -> bool {
        let room_filter = &self.definition.room;
        !room_filter.not_rooms.iter().any(|r| r == room)
            && room_filter
                .rooms
                .as_ref()
                .is_none_or(|rooms| rooms.iter().any(|r| r == room))
    }

    pub fn timeline_allows(&self, room: &RoomId, event: &CanonicalJsonObject) -> bool {
        event_allowed(&self.definition.room.timeline, room, event)
    }

    pub fn state_allows(&self, room: &RoomId, event: &CanonicalJsonObject) -> bool {
        event_allowed(&self.definition.room.state, room, event)
    }

    /// Whether an ephemeral event type (`m.typing`, `m.receipt`) of the
    /// room is wanted.
    pub fn ephemeral_allows(&self, room: &RoomId, kind: &str) -> bool {
        let filter = &self.definition.room.ephemeral;
        room_listed(filter, room) && type_listed(&filter.types, &filter.not_types, kind)
    }

    /// Whether a room's account data of this type is wanted.
    pub fn room_account_data_allows(&self, room: &RoomId, kind: &str) -> bool {
        let filter = &self.definition.room.account_data;
        room_listed(filter, room) && type_listed(&filter.types, &filter.not_types, kind)
    }

    /// Whether global account data of this type is wanted.
    pub fn account_data_allows(&self, kind: &str) -> bool {
        let filter = &self.definition.account_data;
        type_listed(&filter.types, &filter.not_types, kind)
    }

    /// Whether presence of `user` is wanted.
    pub fn presence_allows(&self, user: &str) -> bool {
        let filter = &self.definition.presence;
        type_listed(&filter.types, &filter.not_types, "m.presence")
            && !filter.not_senders.iter().any(|s| s == user)
            && filter
                .senders
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s == user))
    }
}

/// A filter on one room's events, as `/messages` and `/context` take it
/// (a `RoomEventFilter` as JSON in the query).
#[derive(Debug, Clone, Default)]
pub struct EventFilter(RoomEventFilter);

impl EventFilter {
    pub fn parse(text: &str) -> Result<Self> {
        let json: Value =
            serde_json::from_str(text).map_err(|e| Error::not_json(format!("filter: {e}")))?;
        serde_json::from_value(json)
            .map(Self)
            .map_err(|e| Error::bad_json(format!("invalid filter: {e}")))
    }

    /// A filter a request body already carries (`/search`'s).
    pub fn from_room_events(filter: RoomEventFilter) -> Self {
        Self(filter)
    }

    pub fn lazy_members(&self) -> bool {
        !self.0.lazy_load_options.is_disabled()
    }

    /// Whether the filter's `rooms` and `not_rooms` let a room through.
    pub fn room_allowed(&self, room: &RoomId) -> bool {
        room_listed(&self.0, room)
    }

    pub fn allows(&self, room: &RoomId, event: &CanonicalJsonObject) -> bool {
        event_allowed(&self.0, room, event)
    }
}

fn room_listed(filter: &RoomEventFilter, room: &RoomId) -> bool {
    !filter.not_rooms.iter().any(|r| r == room)
        && filter
            .rooms
            .as_ref()
            .is_none_or(|rooms| rooms.iter().any(|r| r == room))
}

/// `types` and `not_types`, where `*` matches any run of characters.
fn type_listed(types: &Option<Vec<String>>, not_types: &[String], kind: &str) -> bool {
    !not_types.iter().any(|t| glob(t, kind))
        && types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| glob(t, kind)))
}

fn event_allowed(filter: &RoomEventFilter, room: &RoomId, event: &CanonicalJsonObject) -> bool {
    let text = |key: &str| event.get(key).and_then(|v| v.as_str()).unwrap_or("");
    let sender = text("sender");
    let has_url = event
        .get("content")
        .and_then(|c| c.as_object())
        .is_some_and(|c| c.contains_key("url"));
    room_listed(filter, room)
        && type_listed(&filter.types, &filter.not_types, text("type"))
        && !filter.not_senders.iter().any(|s| s == sender)
        && filter
            .senders
            .as_ref()
            .is_none_or(|s| s.iter().any(|s| s == sender))
        && match filter.url_filter {
            None => true,
            Some(UrlFilter::EventsWithUrl) => has_url,
            Some(UrlFilter::EventsWithoutUrl) => !has_url,
        }
}

/// Matches `text` against `pattern`, where `*` stands for any run of
/// characters (the spec's wildcard for event types).
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests;
