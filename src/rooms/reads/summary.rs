//! A room's summary for `/sync` (member counts, and the "heroes" a client
//! names an unnamed room after: a DM is named after the other person),
//! and the heroes whose member events a `send_join` with `omit_members`
//! keeps. With lazy-loaded members a client has no other way to know them.
//! Spec: client-server-api "GET /_matrix/client/v3/sync" (`summary`),
//! "Calculating the display name for a room"; server-server-api.md
//! "Joining Rooms" (`omit_members`).

use ruma::{
    events::StateEventType, CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, OwnedUserId,
    RoomId, UserId,
};

use crate::error::Result;
use crate::rooms::RoomService;

/// Heroes given at most: the spec's five.
const MAX_HEROES: usize = 5;

/// A room's state, as (type, state key) → event ID entries.
type StateEntries = [((StateEventType, String), OwnedEventId)];

pub struct Summary {
    pub joined: usize,
    pub invited: usize,
    /// Empty when the room has a name or an alias to show instead.
    pub heroes: Vec<OwnedUserId>,
}

/// A member event of a room's state.
pub(in crate::rooms) struct Member {
    stream: u64,
    pub id: OwnedEventId,
    user: OwnedUserId,
    membership: String,
}

impl RoomService {
    /// Counts and heroes of `room` now, as `user` sees it.
    pub fn summary(&self, room: &RoomId, user: &UserId) -> Result<Summary> {
        let state = self.current_state_ids(room)?;
        let members = self.members_in(&state)?;
        let count = |membership: &str| {
            members
                .iter()
                .filter(|m| m.membership == membership)
                .count()
        };
        let heroes = if self.names_room(&state)? {
            Vec::new()
        } else {
            heroes(&members, user).map(|m| m.user.clone()).collect()
        };
        Ok(Summary {
            joined: count("join"),
            invited: count("invite"),
            heroes,
        })
    }

    /// Whether `state` gives the room a non-empty name or canonical alias.
    pub(in crate::rooms) fn names_room(&self, state: &StateEntries) -> Result<bool> {
        for ((kind, key), id) in state {
            let field = match kind {
                StateEventType::RoomName => "name",
                StateEventType::RoomCanonicalAlias => "alias",
                _ => continue,
            };
            let value = content_str(&self.event_object(id)?, field);
            if key.is_empty() && value.is_some_and(|v| !v.is_empty()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The member events of `state`, with their stream order.
    pub(in crate::rooms) fn members_in(&self, state: &StateEntries) -> Result<Vec<Member>> {
        let mut members = Vec::new();
        for ((kind, key), id) in state {
            if *kind != StateEventType::RoomMember {
                continue;
            }
            let Ok(user) = OwnedUserId::try_from(key.as_str()) else {
                continue;
            };
            let membership = content_str(&self.event_object(id)?, "membership").unwrap_or_default();
            members.push(Member {
                stream: self.stream_of(id)?,
                id: id.clone(),
                user,
                membership,
            });
        }
        Ok(members)
    }
}

/// The spec's heroes: the first five joined or invited members by stream
/// order, or when there are none those who left or were banned; never
/// `except`.
pub(in crate::rooms) fn heroes<'m>(
    members: &'m [Member],
    except: &UserId,
) -> impl Iterator<Item = &'m Member> {
    let of = |memberships: &'static [&'static str]| {
        let mut chosen: Vec<&Member> = members
            .iter()
            .filter(|m| m.user != except && memberships.contains(&m.membership.as_str()))
            .collect();
        chosen.sort_by_key(|m| m.stream);
        chosen
    };
    let present = of(&["join", "invite"]);
    let chosen = if present.is_empty() {
        of(&["leave", "ban"])
    } else {
        present
    };
    chosen.into_iter().take(MAX_HEROES)
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
