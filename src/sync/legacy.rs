//! The r0 reads that older clients, bots and test tools still call:
//! `GET /initialSync`, `GET /rooms/{roomId}/initialSync` and `GET /events`
//! (the event stream, also to peek into a `world_readable` room). Built
//! on the same access rules as `/messages`: a former member sees the room
//! as it was when they left, a reader from outside only what the room
//! shows everyone.
//! Spec: client-server-api old_sync.yaml, room_initial_sync.yaml,
//! peeking_events.yaml.

use std::{collections::HashMap, time::Duration};

use ruma::{events::StateEventType, OwnedEventId, OwnedRoomId, RoomId, RoomVersionId, UserId};
use serde_json::{json, Value};

use super::{SyncService, Token, MAX_TIMEOUT};
use crate::{
    error::Result,
    rooms::{checks, client_event::client_event, reads::access::ReadAccess},
    store::pending::Pending,
};

/// Events looked at, newest first, to find a room's latest readable ones.
const MAX_SCAN: usize = 1_000;
/// Most events one `/events` answer carries.
const MAX_STREAM_EVENTS: usize = 100;

/// A room as a legacy initial sync shows it, less what only the route
/// knows (its directory visibility).
pub struct RoomSnapshot {
    pub room_id: OwnedRoomId,
    pub body: Value,
}

impl SyncService {
    /// `GET /initialSync`: every room the user is in or invited to (and,
    /// when `archived`, has left), with up to `limit` recent events each.
    pub fn initial_sync(
        &self,
        user: &UserId,
        limit: usize,
        archived: bool,
    ) -> Result<(Value, Vec<RoomSnapshot>)> {
        let mut data = self.account_data_by_room(user)?;
        let mut rooms = Vec::new();
        for room in self.rooms.room_ids()? {
            let membership = self.rooms.membership_of(&room, user)?;
            let room_data = data.remove(room.as_str()).unwrap_or_default();
            let body = match membership.as_ref().map(|m| m.as_str()) {
                Some("join") => {
                    self.room_body(user, &room, &ReadAccess::Member, limit, room_data)?
                }
                Some("invite") => self.invite_body(user, &room)?,
                Some("leave" | "ban") if archived => {
                    let access = self.rooms.read_access(&room, user)?;
                    self.room_body(user, &room, &access, limit, room_data)?
                }
                _ => continue,
            };
            rooms.push(RoomSnapshot {
                room_id: room,
                body,
            });
        }
        for pending in self.rooms.pending_records_of(user)? {
            let known = rooms.iter().any(|r| r.room_id == pending.room_id);
            if pending.membership == "invite" && !known {
                let mut body = json!({"room_id": pending.room_id, "membership": "invite"});
                if let Some(id) = pending_event_id(&pending) {
                    body["invite"] = client_event(&id, &pending.event, true);
                }
                rooms.push(RoomSnapshot {
                    room_id: pending.room_id,
                    body,
                });
            }
        }
        let global = data.remove("").unwrap_or_default();
        let top = json!({
            "end": self.now().to_string(),
            "presence": self.edus.presence_events(user, None)?,
            "account_data": global,
        });
        Ok((top, rooms))
    }

    /// `GET /rooms/{roomId}/initialSync`: one room the user may read,
    /// with its members' presence and receipts.
    pub fn room_initial_sync(&self, user: &UserId, room: &RoomId, limit: usize) -> Result<Value> {
        let access = self.rooms.read_access(room, user)?;
        let room_data = self
            .account_data_by_room(user)?
            .remove(room.as_str())
            .unwrap_or_default();
        let mut body = self.room_body(user, room, &access, limit, room_data)?;
        let mut presence = Vec::new();
        for member in self.rooms.joined_members(room)? {
            if let Some(content) = self.edus.known_presence(&member) {
                presence.push(json!({"type": "m.presence", "sender": member, "content": content}));
            }
        }
        body["presence"] = json!(presence);
        body["receipts"] = json!([]);
        Ok(body)
    }

    /// `GET /events`: events after `from` (now, if none) in the user's
    /// joined rooms, or in `room` when peeking, waiting up to `timeout`
    /// for one.
    pub async fn events(
        &self,
        user: &UserId,
        from: Option<Token>,
        timeout: Duration,
        room: Option<&RoomId>,
    ) -> Result<Value> {
        let rooms: Vec<(OwnedRoomId, ReadAccess)> = match room {
            Some(room) => vec![(room.to_owned(), self.rooms.read_access(room, user)?)],
            None => self
                .rooms
                .rooms_joined_by(user)?
                .into_iter()
                .map(|room| (room, ReadAccess::Member))
                .collect(),
        };
        let start = from.map_or_else(|| self.rooms.position(), |t| t.position);
        let deadline = tokio::time::Instant::now() + timeout.min(MAX_TIMEOUT);
        let mut positions = self.rooms.watch_position();
        loop {
            positions.borrow_and_update();
            let now = self.rooms.position();
            let (chunk, end) = self.stream(user, &rooms, start, now)?;
            let answer = json!({
                "start": Token::at(start).to_string(),
                "end": Token::at(end).to_string(),
                "chunk": chunk,
            });
            if !chunk.is_empty() {
                return Ok(answer);
            }
            tokio::select! {
                _ = positions.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(answer),
            }
        }
    }

    /// The readable events of `rooms` in `(after, now]`, oldest first, at
    /// most [`MAX_STREAM_EVENTS`], and the position they reach.
    fn stream(
        &self,
        user: &UserId,
        rooms: &[(OwnedRoomId, ReadAccess)],
        after: u64,
        now: u64,
    ) -> Result<(Vec<Value>, u64)> {
        let mut found = Vec::new();
        for (room, access) in rooms {
            let until = access.latest_position(now).min(now);
            let ids = self.rooms.timeline_between(
                room,
                after,
                until.saturating_add(1),
                MAX_STREAM_EVENTS,
                false,
            )?;
            found.extend(ids.into_iter().map(|(position, id)| (position, id, access)));
        }
        found.sort_by_key(|(position, _, _)| *position);
        let full = found.len() > MAX_STREAM_EVENTS;
        found.truncate(MAX_STREAM_EVENTS);
        let end = match found.last() {
            Some((position, _, _)) if full => *position,
            _ => now.max(after),
        };
        let mut chunk = Vec::new();
        for (_, id, access) in found {
            if self.rooms.readable_event(&id, user, access)? {
                chunk.push(client_event(&id, &self.rooms.event_object(&id)?, true));
            }
        }
        Ok((chunk, end))
    }

    /// A room the user may read: membership, latest events, the state
    /// they see, and its `account_data` events.
    fn room_body(
        &self,
        user: &UserId,
        room: &RoomId,
        access: &ReadAccess,
        limit: usize,
        account_data: Vec<Value>,
    ) -> Result<Value> {
        let latest = access.latest_position(self.rooms.position());
        let recent =
            self.rooms
                .timeline_between(room, 0, latest.saturating_add(1), MAX_SCAN, true)?;
        let mut readable = Vec::new();
        for (position, id) in recent.into_iter().rev() {
            if readable.len() == limit {
                break;
            }
            if self.rooms.readable_event(&id, user, access)? {
                readable.push((position, id));
            }
        }
        readable.reverse();
        let chunk = readable
            .iter()
            .map(|(_, id)| Ok(client_event(id, &self.rooms.event_object(id)?, true)))
            .collect::<Result<Vec<_>>>()?;
        let first = readable
            .first()
            .map_or(latest, |(p, _)| p.saturating_sub(1));
        let mut state = Vec::new();
        for (_, id) in self.rooms.readable_state_ids(room, access)? {
            state.push(client_event(&id, &self.rooms.event_object(&id)?, true));
        }
        let membership = self
            .rooms
            .membership_of(room, user)?
            .map_or_else(|| "leave".to_owned(), |m| m.to_string());
        Ok(json!({
            "room_id": room,
            "membership": membership,
            "messages": {
                "start": Token::at(first).to_string(),
                "end": Token::at(latest).to_string(),
                "chunk": chunk,
            },
            "state": state,
            "account_data": account_data,
        }))
    }

    /// A room the user is invited to and this server holds: the invite.
    fn invite_body(&self, user: &UserId, room: &RoomId) -> Result<Value> {
        let mut body = json!({"room_id": room, "membership": "invite"});
        if let Some((id, pdu)) =
            self.rooms
                .state_event(room, &StateEventType::RoomMember, user.as_str())?
        {
            body["invite"] = client_event(&id, &pdu, true);
        }
        Ok(body)
    }

    /// The user's account data as events, read once: room ID ("" for
    /// the global ones) → events.
    fn account_data_by_room(&self, user: &UserId) -> Result<HashMap<String, Vec<Value>>> {
        let mut by_room: HashMap<String, Vec<Value>> = HashMap::new();
        for (room, kind, data) in self.accounts.account_data_of(user)? {
            let event = json!({"type": kind, "content": data.content});
            by_room.entry(room).or_default().push(event);
        }
        Ok(by_room)
    }

    fn now(&self) -> Token {
        Token::at(self.rooms.position())
    }
}

/// The ID of a remote invite held for the user: recorded, or (from room
/// version 3) its reference hash.
fn pending_event_id(pending: &Pending) -> Option<OwnedEventId> {
    if let Some(id) = &pending.event_id {
        return OwnedEventId::try_from(id.as_str()).ok();
    }
    let version = RoomVersionId::try_from(pending.room_version.as_str()).ok()?;
    let rules = checks::rules(&version).ok()?;
    checks::event_id(&pending.event, &rules).ok()
}
