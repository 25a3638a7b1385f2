//! The user directory: users a client may look up by name, those sharing
//! a room with the searcher and those in public rooms, read from the
//! rooms' member events (the names people chose there).
//! Spec: client-server-api "User directory"; users.yaml.

use std::collections::BTreeMap;

use ruma::{events::StateEventType, OwnedUserId, UserId};
use serde_json::{json, Value};

use super::{directory::DirectoryService, RoomService};
use crate::error::Result;

/// Most results in one answer.
pub const MAX_RESULTS: usize = 50;

/// Up to `limit` users whose ID or display name contains `term` (case
/// folded), and whether more matched.
pub fn search(
    rooms: &RoomService,
    directory: &DirectoryService,
    searcher: &UserId,
    term: &str,
    limit: usize,
) -> Result<(Vec<Value>, bool)> {
    let term = term.to_lowercase();
    let mut found: BTreeMap<OwnedUserId, Value> = BTreeMap::new();
    for room in rooms.room_ids()? {
        let shared = rooms.membership_of(&room, searcher)?
            == Some(ruma::events::room::member::MembershipState::Join);
        if !shared && !directory.is_public(&room)? {
            continue;
        }
        for ((kind, key), id) in rooms.current_state_ids(&room)? {
            if kind != StateEventType::RoomMember {
                continue;
            }
            let Ok(user) = OwnedUserId::try_from(key) else {
                continue;
            };
            if found.contains_key(&user) {
                continue;
            }
            let event = rooms.event_object(&id)?;
            let field = |name: &str| super::event::content_str(&event, name);
            if field("membership").as_deref() != Some("join") {
                continue;
            }
            let name = field("displayname");
            let matches = user.as_str().to_lowercase().contains(&term)
                || name
                    .as_ref()
                    .is_some_and(|n| n.to_lowercase().contains(&term));
            if matches {
                let entry = json!({
                    "user_id": user,
                    "display_name": name,
                    "avatar_url": field("avatar_url"),
                });
                found.insert(user, entry);
            }
        }
    }
    let limited = found.len() > limit;
    Ok((found.into_values().take(limit).collect(), limited))
}
