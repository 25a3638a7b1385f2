//! Who shares rooms with whom: the audience of a user's presence, device
//! list and key updates, and the scope of the user directory.

use std::collections::BTreeSet;

use ruma::{
    events::StateEventType, EventId, OwnedRoomId, OwnedServerName, OwnedUserId, RoomId, UserId,
};

use crate::error::Result;
use crate::rooms::RoomService;

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
        let event = self.event_object(id)?;
        let membership = event
            .get("content")
            .and_then(|c| c.as_object())
            .and_then(|c| c.get("membership"))
            .and_then(|m| m.as_str());
        Ok(membership.unwrap_or_default().to_owned())
    }

    /// Rooms `user` is joined to.
    pub fn rooms_joined_by(&self, user: &UserId) -> Result<Vec<OwnedRoomId>> {
        let mut rooms = self.room_ids()?;
        let mut joined = Vec::with_capacity(rooms.len());
        for room in rooms.drain(..) {
            if self.membership_of(&room, user)?
                == Some(ruma::events::room::member::MembershipState::Join)
            {
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

    /// Every server with a user in a room `user` is joined to.
    pub fn servers_sharing_rooms_with(&self, user: &UserId) -> Result<BTreeSet<OwnedServerName>> {
        let mut servers = BTreeSet::new();
        for room in self.rooms_joined_by(user)? {
            servers.extend(self.joined_servers(&room)?);
        }
        Ok(servers)
    }
}
