//! A room's summary for `/sync`: member counts and the "heroes" a client
//! names an unnamed room after (a DM is named after the other person).
//! With lazy-loaded members a client has no other way to know them.
//! Spec: client-server-api "GET /_matrix/client/v3/sync" (`summary`),
//! "Calculating the display name for a room".

use ruma::{
    events::StateEventType, CanonicalJsonObject, CanonicalJsonValue, OwnedUserId, RoomId, UserId,
};

use super::RoomService;
use crate::error::Result;

/// Heroes given at most: the spec's five.
const MAX_HEROES: usize = 5;

pub struct Summary {
    pub joined: usize,
    pub invited: usize,
    /// Empty when the room has a name or an alias to show instead.
    pub heroes: Vec<OwnedUserId>,
}

impl RoomService {
    /// Counts and heroes of `room` as `user` sees it now: the first five
    /// joined or invited members by stream order (left and banned ones
    /// when there are none), never `user`.
    pub fn summary(&self, room: &RoomId, user: &UserId) -> Result<Summary> {
        let mut present = Vec::new();
        let mut gone = Vec::new();
        let (mut joined, mut invited) = (0, 0);
        for ((kind, key), id) in self.current_state_ids(room)? {
            if kind != StateEventType::RoomMember {
                continue;
            }
            let membership = content_str(&self.event_object(&id)?, "membership");
            let Ok(member) = OwnedUserId::try_from(key) else {
                continue;
            };
            let into = match membership.as_deref() {
                Some("join") => {
                    joined += 1;
                    &mut present
                }
                Some("invite") => {
                    invited += 1;
                    &mut present
                }
                Some("leave" | "ban") => &mut gone,
                _ => continue,
            };
            if member != user {
                into.push((self.stream_of(&id)?, member));
            }
        }
        let mut heroes = if present.is_empty() { gone } else { present };
        heroes.sort();
        let heroes = if self.is_named(room)? {
            Vec::new()
        } else {
            heroes
                .into_iter()
                .take(MAX_HEROES)
                .map(|(_, u)| u)
                .collect()
        };
        Ok(Summary {
            joined,
            invited,
            heroes,
        })
    }

    /// Whether the room has a non-empty name or canonical alias.
    fn is_named(&self, room: &RoomId) -> Result<bool> {
        for (kind, field) in [
            (StateEventType::RoomName, "name"),
            (StateEventType::RoomCanonicalAlias, "alias"),
        ] {
            if let Some((_, event)) = self.state_event(room, &kind, "")? {
                if content_str(&event, field).is_some_and(|v| !v.is_empty()) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

fn content_str(event: &CanonicalJsonObject, field: &str) -> Option<String> {
    match event.get("content") {
        Some(CanonicalJsonValue::Object(content)) => match content.get(field) {
            Some(CanonicalJsonValue::String(value)) => Some(value.clone()),
            _ => None,
        },
        _ => None,
    }
}
