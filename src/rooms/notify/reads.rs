//! What the notifications written with events are read as: a room's
//! unread counts (moved on by the user's read receipts) and the user's
//! list for `GET /notifications`.
//! Spec: client-server-api "Receiving notifications", "Receipts",
//! "Threaded read receipts".

use ruma::{events::StateEventType, EventId, OwnedEventId, OwnedRoomId, RoomId, UserId};

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

/// What a push tells of an event besides its ID (not for `event_id_only`).
pub struct PushDetails {
    pub event_type: Option<ruma::events::TimelineEventType>,
    pub sender: Option<ruma::OwnedUserId>,
    pub sender_display_name: Option<String>,
    pub room_name: Option<String>,
    pub state_key: Option<String>,
    pub content: Option<Box<serde_json::value::RawValue>>,
}

impl RoomService {
    /// An event's type, sender (and their display name), state key and
    /// content, and its room's name, for a push.
    pub fn push_details(
        &self,
        room: &RoomId,
        event: &ruma::CanonicalJsonObject,
    ) -> Result<PushDetails> {
        let text = |key: &str| match event.get(key) {
            Some(ruma::CanonicalJsonValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        let sender = text("sender").and_then(|s| ruma::OwnedUserId::try_from(s).ok());
        let sender_display_name = match &sender {
            Some(sender) => {
                self.current_content(room, &StateEventType::RoomMember, sender.as_str())?
                    ["displayname"]
                    .as_str()
                    .map(str::to_owned)
            }
            None => None,
        };
        let room_name = self.current_content(room, &StateEventType::RoomName, "")?["name"]
            .as_str()
            .map(str::to_owned);
        let content = event
            .get("content")
            .and_then(|c| serde_json::value::to_raw_value(c).ok());
        Ok(PushDetails {
            event_type: text("type").map(Into::into),
            sender,
            sender_display_name,
            room_name,
            state_key: text("state_key"),
            content,
        })
    }

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
        let stopped = self.trees.walk_notifications(
            user.as_str(),
            before,
            true,
            |listed| -> crate::store::error::Result<bool> {
                last = Some(listed.stream);
                if !highlights || listed.highlight {
                    found.push(listed);
                }
                Ok(found.len() < limit)
            },
        )?;
        let full = found.len() >= limit;
        let mut notifications = Vec::new();
        for listed in found {
            notifications.extend(self.notification(user, listed)?);
        }
        // A full page goes on after its last; a walk that stopped at its
        // bound, from where it stopped.
        let next = if full { last } else { stopped };
        Ok((notifications, next))
    }

    /// Up to `limit` of the user's notifications after position `after`,
    /// oldest first: what a pusher has still to deliver; and the position
    /// of the last one read (past those whose event is gone too).
    pub fn notifications_after(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<Notification>, u64)> {
        let mut found = Vec::new();
        let stopped =
            self.trees
                .walk_notifications(user.as_str(), Some(after), false, |listed| {
                    found.push(listed);
                    Ok(found.len() < limit)
                })?;
        let last = match found.last() {
            Some(listed) => listed.stream,
            None => stopped.unwrap_or(after),
        };
        let mut notifications = Vec::new();
        for listed in found {
            notifications.extend(self.notification(user, listed)?);
        }
        Ok((notifications, last))
    }

    /// How many rooms hold unread notifications for the user: a push's
    /// `counts.unread`.
    pub fn rooms_with_unread(&self, user: &UserId) -> Result<u64> {
        let mut rooms = 0;
        for room in self.rooms_joined_by(user)? {
            let unread = self.unread(user, &room)?;
            if unread.main.0 > 0 || !unread.threads.is_empty() {
                rooms += 1;
            }
        }
        Ok(rooms)
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
