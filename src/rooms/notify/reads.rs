//! What the notifications written with events are read as: a room's
//! unread counts (moved on by the user's read receipts) and the user's
//! list for `GET /notifications`.
//! Spec: client-server-api "Receiving notifications", "Receipts",
//! "Threaded read receipts".

use ruma::{EventId, OwnedEventId, OwnedRoomId, RoomId, UserId};

use crate::{
    error::Result,
    rooms::RoomService,
    store::rooms::notifications::{Listed, Unread},
};

/// One notification as `GET /notifications` lists it.
pub struct Notification {
    pub stream: u64,
    pub room: OwnedRoomId,
    pub event_id: OwnedEventId,
    pub event: ruma::CanonicalJsonObject,
    pub actions: Vec<ruma::push::Action>,
    pub read: bool,
}

impl RoomService {
    /// Our user's read receipt (`m.read` or `m.read.private`; `thread`:
    /// `main`, a thread root, or none): what is unread starts after it.
    pub fn mark_read(
        &self,
        room: &RoomId,
        user: &UserId,
        event: &EventId,
        thread: Option<&str>,
    ) -> Result<()> {
        let stream = self.stream_of(event)?;
        Ok(self
            .trees
            .mark_read(user.as_str(), room.as_str(), thread, stream)?)
    }

    /// The user's unread notifications and highlights in `room`, counted
    /// from their join at the earliest (as Synapse does: what came before,
    /// their invite among it, was read before they were in).
    pub fn unread(&self, user: &UserId, room: &RoomId) -> Result<Unread> {
        let joined_at = self.member_position(room, user)?;
        Ok(self.trees.unread(user.as_str(), room.as_str(), joined_at)?)
    }

    /// Up to `limit` of the user's notifications before position
    /// `before`, newest first (only highlights when `highlights`), and
    /// the position to go on from when there may be more.
    pub fn notifications(
        &self,
        user: &UserId,
        before: Option<u64>,
        limit: usize,
        highlights: bool,
    ) -> Result<(Vec<Notification>, Option<u64>)> {
        let mut found = Vec::new();
        let mut last = None;
        self.trees.walk_notifications(
            user.as_str(),
            before,
            |listed| -> crate::store::error::Result<bool> {
                last = Some(listed.stream);
                if !highlights || listed.highlight {
                    found.push(listed);
                }
                Ok(found.len() < limit)
            },
        )?;
        let mut notifications = Vec::new();
        for listed in found {
            notifications.extend(self.notification(user, listed)?);
        }
        let more = notifications.len() >= limit;
        Ok((notifications, last.filter(|_| more)))
    }

    /// A listed notification with its event, if the event is still there.
    fn notification(&self, user: &UserId, listed: Listed) -> Result<Option<Notification>> {
        let at = self.trees.timeline_between(
            listed.room.as_str(),
            listed.stream.saturating_sub(1),
            listed.stream.saturating_add(1),
            1,
            false,
        )?;
        let Some((_, event_id)) = at.into_iter().next() else {
            return Ok(None);
        };
        let Some(event) = self.trees.event_json(event_id.as_str())? else {
            return Ok(None);
        };
        let read = self
            .trees
            .read_position(user.as_str(), listed.room.as_str())?
            >= listed.stream;
        let actions = serde_json::from_slice(&listed.actions).unwrap_or_default();
        Ok(Some(Notification {
            stream: listed.stream,
            room: listed.room,
            event_id,
            event,
            actions,
            read,
        }))
    }
}
