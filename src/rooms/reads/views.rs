//! Reads the client API needs: which rooms exist, a room's current state
//! as events, timeline ranges by stream position.

use ruma::{
    events::StateEventType, CanonicalJsonObject, OwnedEventId, OwnedRoomId, RoomId, RoomVersionId,
};

use crate::error::{Error, Result};
use crate::rooms::{shorts::Shorts, RoomService};

impl RoomService {
    /// The version of rooms created without one.
    pub fn default_version(&self) -> &ruma::RoomVersionId {
        &self.default_version
    }

    /// Every room this server holds state for.
    pub fn room_ids(&self) -> Result<Vec<OwnedRoomId>> {
        Ok(self.trees.room_ids()?)
    }

    /// A fresh id from the database's generator (ordering outbound queues).
    pub fn next_id(&self) -> Result<u64> {
        Ok(self.trees.new_id()?)
    }

    /// The highest stream position readable now.
    pub fn position(&self) -> u64 {
        self.trees.position()
    }

    /// Changes when a new event becomes readable.
    pub fn watch_position(&self) -> tokio::sync::watch::Receiver<u64> {
        self.trees.watch_position()
    }

    /// Writes something clients sync outside any timeline at a new position.
    pub fn publish_with<T>(&self, write: impl FnOnce(u64) -> Result<T>) -> Result<T> {
        self.trees.advance_with(write)
    }

    /// The room's current state: (type, state key) → event ID.
    pub fn current_state_ids(
        &self,
        room: &RoomId,
    ) -> Result<Vec<((StateEventType, String), OwnedEventId)>> {
        let record = self.record(room)?;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        Ok(shorts.state_of(record.current_state)?.into_iter().collect())
    }

    /// The ID of one event of the room's current state.
    pub fn state_event_id(
        &self,
        room: &RoomId,
        kind: &StateEventType,
        key: &str,
    ) -> Result<Option<OwnedEventId>> {
        let record = self.record(room)?;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let state = shorts.shared(record.current_state)?;
        shorts.lookup(&state, kind, key)
    }

    /// One event of the room's current state.
    pub fn state_event(
        &self,
        room: &RoomId,
        kind: &StateEventType,
        key: &str,
    ) -> Result<Option<(OwnedEventId, CanonicalJsonObject)>> {
        match self.state_event_id(room, kind, key)? {
            Some(id) => Ok(self.trees.event_json(id.as_str())?.map(|pdu| (id, pdu))),
            None => Ok(None),
        }
    }

    /// The stored event, or a clear error when it is missing.
    pub fn event_object(&self, id: &ruma::EventId) -> Result<CanonicalJsonObject> {
        self.trees
            .event_json(id.as_str())?
            .ok_or_else(|| Error::not_found(format!("unknown event {id}")))
    }

    /// The stream position of a timeline event (0 for outliers).
    pub fn stream_of(&self, id: &ruma::EventId) -> Result<u64> {
        Ok(self
            .trees
            .event_meta(id.as_str())?
            .map_or(0, |meta| meta.stream))
    }

    /// Up to `limit` timeline events with positions in `(after, before)`,
    /// oldest first; the newest of them when `newest`.
    pub fn timeline_between(
        &self,
        room: &RoomId,
        after: u64,
        before: u64,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<(u64, OwnedEventId)>> {
        Ok(self
            .trees
            .timeline_between(room.as_str(), after, before, limit, newest)?)
    }

    /// Whether the room is stored here (joined now or before).
    pub fn is_known(&self, room: &RoomId) -> Result<bool> {
        Ok(self.trees.room(room.as_str())?.is_some())
    }

    /// The room's version, parsed.
    pub fn version_of(&self, room: &RoomId) -> Result<RoomVersionId> {
        RoomVersionId::try_from(self.record(room)?.version.as_str())
            .map_err(|e| Error::internal(format!("stored room version: {e}")))
    }
}
