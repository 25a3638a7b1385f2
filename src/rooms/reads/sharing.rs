//! Who shares rooms with whom: the audience of a user's presence, device
//! list and key updates, and the scope of the user directory.

use std::collections::BTreeSet;

use ruma::{
    events::{room::member::MembershipState, StateEventType},
    EventId, OwnedRoomId, OwnedServerName, OwnedUserId, RoomId, UserId,
};

use crate::error::Result;
use crate::rooms::RoomService;

/// Events of one room read to find who started or stopped sharing it.
const SCAN_LIMIT: usize = 10_000;

impl RoomService {
    /// Users joined to `room` now.
    pub fn joined_members(&self, room: &RoomId) -> Result<Vec<OwnedUserId>> {
        let mut joined = Vec::new();
        for ((kind, key), id) in self.current_state_ids(room)? {
            if kind == StateEventType::RoomMember && self.membership_in(&id)? == "join" {
                joined.extend(OwnedUserId::try_from(key).ok());
            }
        }
        Ok(joined)
    }

    /// The members whose current membership was set at a stream position in
    /// `(from, to]`, with that membership: who started or stopped sharing
    /// the room with its other members in that range.
    pub fn membership_changes(
        &self,
        room: &RoomId,
        from: u64,
        to: u64,
    ) -> Result<Vec<(OwnedUserId, String)>> {
        let mut changes = Vec::new();
        for ((kind, key), id) in self.current_state_ids(room)? {
            if kind != StateEventType::RoomMember {
                continue;
            }
            let position = self.stream_of(&id)?;
            if position <= from || position > to {
                continue;
            }
            if let Ok(user) = OwnedUserId::try_from(key) {
                changes.push((user, self.membership_in(&id)?));
            }
        }
        Ok(changes)
    }

    /// The `membership` of a stored member event.
    fn membership_in(&self, id: &EventId) -> Result<String> {
        Ok(membership_field(&self.event_object(id)?))
    }

    /// The stream position of `user`'s current membership of `room` (0 if
    /// none).
    pub fn member_position(&self, room: &RoomId, user: &UserId) -> Result<u64> {
        match self.state_event_id(room, &StateEventType::RoomMember, user.as_str())? {
            Some(id) => self.stream_of(&id),
            None => Ok(0),
        }
    }

    /// Who started and who stopped sharing a room with `user` at stream
    /// positions in `(from, to]`, read from the member events of that
    /// range (the current state cannot say what happened between two
    /// past tokens): all members of a room `user` joined or left then, and
    /// the others' joins and leaves in `user`'s rooms. Someone who stopped
    /// may still share another room. A room with more than
    /// [`SCAN_LIMIT`] events in the range counts all its members as
    /// started: being listed only makes a client ask for keys again.
    pub fn sharing_changes(
        &self,
        user: &UserId,
        from: u64,
        to: u64,
    ) -> Result<(BTreeSet<OwnedUserId>, BTreeSet<OwnedUserId>)> {
        let (mut started, mut stopped) = (BTreeSet::new(), BTreeSet::new());
        for room in self.rooms_with_events_after(user, from)? {
            let range =
                self.timeline_between(&room, from, to.saturating_add(1), SCAN_LIMIT + 1, false)?;
            if range.len() > SCAN_LIMIT {
                started.extend(self.joined_members(&room)?);
                continue;
            }
            for (_, id) in range {
                let Some((member, membership)) = self.member_change(&id)? else {
                    continue;
                };
                let joined = membership == "join";
                let into = if joined { &mut started } else { &mut stopped };
                if member == user {
                    into.extend(self.joined_members(&room)?);
                } else if joined || membership == "leave" || membership == "ban" {
                    into.insert(member);
                }
            }
        }
        Ok((started, stopped))
    }

    /// The user and `membership` of a member event (None for others).
    fn member_change(&self, id: &EventId) -> Result<Option<(OwnedUserId, String)>> {
        let event = self.event_object(id)?;
        let field = |name: &str| event.get(name).and_then(|v| v.as_str());
        if field("type") != Some("m.room.member") {
            return Ok(None);
        }
        let Some(Ok(member)) = field("state_key").map(OwnedUserId::try_from) else {
            return Ok(None);
        };
        Ok(Some((member, membership_field(&event))))
    }

    /// The rooms `user` (one of ours) is or was joined to with events
    /// after `from`, from the room index.
    fn rooms_with_events_after(&self, user: &UserId, from: u64) -> Result<Vec<OwnedRoomId>> {
        let rooms: Vec<OwnedRoomId> = self
            .rooms_of(user)?
            .into_iter()
            .filter(|entry| {
                matches!(
                    entry.membership,
                    MembershipState::Join | MembershipState::Leave | MembershipState::Ban
                )
            })
            .map(|entry| entry.room)
            .collect();
        let ids: Vec<&RoomId> = rooms.iter().map(|room| room.as_ref()).collect();
        let activities = self.activities(&ids)?;
        Ok(rooms
            .into_iter()
            .zip(activities)
            .filter(|(_, activity)| activity.last > from)
            .map(|(room, _)| room)
            .collect())
    }

    /// Whether `user` (one of ours) and `other` are joined to a same room.
    pub fn shares_a_room(&self, user: &UserId, other: &UserId) -> Result<bool> {
        for room in self.rooms_joined_by(user)? {
            if self.membership_of(&room, other)? == Some(MembershipState::Join) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Rooms `user` is joined to: from the room index for our users.
    pub fn rooms_joined_by(&self, user: &UserId) -> Result<Vec<OwnedRoomId>> {
        if user.server_name() == self.server_name() {
            return Ok(self
                .rooms_of(user)?
                .into_iter()
                .filter(|e| e.membership == MembershipState::Join)
                .map(|e| e.room)
                .collect());
        }
        let mut rooms = self.room_ids()?;
        let mut joined = Vec::with_capacity(rooms.len());
        for room in rooms.drain(..) {
            if self.membership_of(&room, user)? == Some(MembershipState::Join) {
                joined.push(room);
            }
        }
        Ok(joined)
    }

    /// Every user with whom `user` shares a joined room (and `user`).
    pub fn users_sharing_rooms_with(&self, user: &UserId) -> Result<BTreeSet<OwnedUserId>> {
        let mut users = BTreeSet::from([user.to_owned()]);
        for room in self.rooms_joined_by(user)? {
            users.extend(self.joined_members(&room)?);
        }
        Ok(users)
    }

    /// Whether `user` is joined to a room one of our users is joined to.
    pub fn shares_room_with_us(&self, user: &UserId) -> Result<bool> {
        for room in self.rooms_joined_by(user)? {
            if self.joined_servers(&room)?.contains(self.server_name()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every server with a user in a room `user` is joined to.
    pub fn servers_sharing_rooms_with(&self, user: &UserId) -> Result<BTreeSet<OwnedServerName>> {
        let mut servers = BTreeSet::new();
        for room in self.rooms_joined_by(user)? {
            servers.extend(self.joined_servers(&room)?);
        }
        Ok(servers)
    }
}

/// The `content.membership` of a member event ("" if it has none).
fn membership_field(event: &ruma::CanonicalJsonObject) -> String {
    let membership = event
        .get("content")
        .and_then(|c| c.as_object())
        .and_then(|c| c.get("membership"))
        .and_then(|m| m.as_str());
    membership.unwrap_or_default().to_owned()
}
