//! Who may read a room's state and history from outside it: a user who
//! left (or was banned) sees the room as it was when they left, and the
//! history their membership let them see; anyone may read a
//! `world_readable` room. Members read everything the history visibility
//! shows them.
//! Spec: client-server-api "History visibility", "Getting events for a
//! room" (state "as of the user's leave" for departed users, as Synapse).

use ruma::{
    events::{
        room::{
            history_visibility::{HistoryVisibility, RoomHistoryVisibilityEventContent},
            member::MembershipState,
        },
        StateEventType,
    },
    EventId, OwnedEventId, RoomId, UserId,
};

use super::sync_state::StateEntries;
use crate::error::{Error, Result};
use crate::rooms::{shorts::Shorts, RoomService};

/// How a user may read a room.
pub enum ReadAccess {
    /// Joined: the current state, and what the history visibility shows.
    Member,
    /// Left or banned: the state just after their leave, and the history
    /// they could see while in the room.
    Former { leave: OwnedEventId, position: u64 },
    /// A `world_readable` room read from outside: its current state.
    Anyone,
}

impl ReadAccess {
    /// Where reading history backwards starts by default.
    pub fn latest_position(&self, now: u64) -> u64 {
        match self {
            Self::Former { position, .. } => *position,
            _ => now,
        }
    }
}

impl RoomService {
    /// How `user` may read `room`; 403 when not at all (also for rooms
    /// this server does not know, which are not revealed).
    pub fn read_access(&self, room: &RoomId, user: &UserId) -> Result<ReadAccess> {
        let refused = || Error::forbidden(format!("{user} may not read {room}"));
        if !self.is_known(room)? {
            return Err(refused());
        }
        match self.membership_of(room, user)? {
            Some(MembershipState::Join) => return Ok(ReadAccess::Member),
            Some(MembershipState::Leave | MembershipState::Ban) => {
                let leave = self
                    .state_event_id(room, &StateEventType::RoomMember, user.as_str())?
                    .ok_or_else(refused)?;
                let position = self.stream_of(&leave)?;
                if position > 0 {
                    return Ok(ReadAccess::Former { leave, position });
                }
            }
            _ => {}
        }
        let visibility = self
            .state_event(room, &StateEventType::RoomHistoryVisibility, "")?
            .and_then(|(_, pdu)| pdu.get("content").cloned())
            .and_then(|c| {
                serde_json::from_value::<RoomHistoryVisibilityEventContent>(c.into()).ok()
            })
            .map(|c| c.history_visibility);
        match visibility {
            Some(HistoryVisibility::WorldReadable) => Ok(ReadAccess::Anyone),
            _ => Err(refused()),
        }
    }

    /// The state a reader sees: the current state, or for a former member
    /// the state just after their leave.
    pub fn readable_state_ids(&self, room: &RoomId, access: &ReadAccess) -> Result<StateEntries> {
        match access {
            ReadAccess::Former { leave, .. } => self.state_ids_after(leave),
            _ => self.current_state_ids(room),
        }
    }

    /// The state just after a timeline event.
    pub fn state_ids_after(&self, id: &EventId) -> Result<StateEntries> {
        let meta = self
            .trees
            .event_meta(id.as_str())?
            .filter(|meta| !meta.outlier)
            .ok_or_else(|| Error::not_found(format!("no known state at {id}")))?;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        Ok(shorts.state_of(meta.state_after)?.into_iter().collect())
    }

    /// The room's last timeline event at or before stream position `at`.
    pub fn last_event_at(&self, room: &RoomId, at: u64) -> Result<Option<OwnedEventId>> {
        Ok(self
            .timeline_between(room, 0, at.saturating_add(1), 1, true)?
            .pop()
            .map(|(_, id)| id))
    }

    /// Whether a reader may see an event of the room.
    pub fn readable_event(&self, id: &EventId, user: &UserId, access: &ReadAccess) -> Result<bool> {
        match access {
            ReadAccess::Member => self.visible_to(id, user),
            ReadAccess::Former { position, .. } => self.visible_to_outsider(id, user, *position),
            ReadAccess::Anyone => self.visible_to_outsider(id, user, 0),
        }
    }
}
