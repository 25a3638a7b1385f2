//! The `state` block of a `/sync` room entry: the state at the start of
//! the timeline, less what the client already holds.
//! Spec: client-server-api "Syncing" (`state` is "updates to the state,
//! between the time indicated by the `since` parameter, and the start of
//! the `timeline`"; everything with `full_state`).

use ruma::{
    events::{room::member::MembershipState, StateEventType},
    EventId, OwnedEventId, RoomId, UserId,
};

use crate::error::Result;
use crate::rooms::{shorts::Shorts, RoomService};
use crate::store::rooms::ShortState;

/// State entries as `/sync` sends them: (type, state key) → event ID.
pub type StateEntries = Vec<((StateEventType, String), OwnedEventId)>;

impl RoomService {
    /// The state before `first` (the timeline's first event; the current
    /// state when the timeline is empty), less the entries the client
    /// already held at stream position `since` (the state after the room's
    /// last event there). Without `since`: all of it.
    pub fn sync_state(
        &self,
        room: &RoomId,
        first: Option<&EventId>,
        since: Option<u64>,
    ) -> Result<StateEntries> {
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let start_group = self.start_group(room, first)?;
        let start = shorts.shared(start_group)?;
        let held = match since.map(|p| self.state_group_at(room, p)).transpose()? {
            Some(Some(group)) if group == start_group => return Ok(Vec::new()),
            Some(Some(group)) => Some(shorts.shared(group)?),
            _ => None,
        };
        let changed: ShortState = match held {
            Some(held) => start
                .iter()
                .filter(|(key, event)| held.get(key) != Some(event))
                .map(|(k, e)| (*k, *e))
                .collect(),
            None => start.as_ref().clone(),
        };
        Ok(shorts.decode(&changed)?.into_iter().collect())
    }

    /// One entry of the state before `first` (the current state when
    /// there is no timeline): a lazy-loading client's member events.
    pub fn state_at_start(
        &self,
        room: &RoomId,
        first: Option<&EventId>,
        kind: &StateEventType,
        key: &str,
    ) -> Result<Option<OwnedEventId>> {
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let state = shorts.shared(self.start_group(room, first)?)?;
        shorts.lookup(&state, kind, key)
    }

    /// `user`'s membership after the room's last timeline event at or
    /// before stream position `at`.
    pub fn membership_at(
        &self,
        room: &RoomId,
        user: &UserId,
        at: u64,
    ) -> Result<Option<MembershipState>> {
        let Some(group) = self.state_group_at(room, at)? else {
            return Ok(None);
        };
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let state = shorts.shared(group)?;
        #[derive(serde::Deserialize)]
        struct Member {
            membership: MembershipState,
        }
        Ok(self
            .state_content::<Member>(&shorts, &state, &StateEventType::RoomMember, user.as_str())?
            .map(|m| m.membership))
    }

    fn start_group(&self, room: &RoomId, first: Option<&EventId>) -> Result<u64> {
        Ok(
            match first
                .map(|id| self.trees.event_meta(id.as_str()))
                .transpose()?
            {
                Some(Some(meta)) if !meta.outlier => meta.state_before,
                _ => self.record(room)?.current_state,
            },
        )
    }

    /// The state group after the room's last timeline event at or before
    /// stream position `at`, if it had one.
    fn state_group_at(&self, room: &RoomId, at: u64) -> Result<Option<u64>> {
        let last = self
            .trees
            .timeline_between(room.as_str(), 0, at.saturating_add(1), 1, true)?;
        let Some((_, id)) = last.first() else {
            return Ok(None);
        };
        Ok(self
            .trees
            .event_meta(id.as_str())?
            .map(|meta| meta.state_after))
    }
}
