//! Room upgrades: a replacement room in a new version, holding the old
//! room's transferable state, pointing back at it (`predecessor`); the
//! old room tombstoned and closed to messages and invites. Aliases and
//! the directory entry move in `directory.rs` (`move_to`), between the
//! two halves here. Spec: client-server-api "Room Upgrades".

use ruma::{
    events::{room::power_levels::RoomPowerLevelsEventContent, StateEventType},
    OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId,
};
use serde_json::{json, Map, Value};

use crate::{
    error::{Error, Result},
    rooms::{checks, RoomService},
};

/// State copied to the replacement room: the spec's recommendation.
/// Members are not (other servers' users cannot be impersonated), and
/// neither is state outside the `m.` namespace, whose readers may rely
/// on who sent it.
const TRANSFERRED: [&str; 8] = [
    "m.room.server_acl",
    "m.room.encryption",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.guest_access",
    "m.room.history_visibility",
    "m.room.join_rules",
];

impl RoomService {
    /// Creates the replacement of `room` in `version`, with the old room's
    /// transferable state and power levels; `additional_creators` for
    /// room versions that have them. The caller moves aliases, then calls
    /// [`Self::retire`].
    pub async fn upgrade(
        &self,
        room: &RoomId,
        user: &UserId,
        version: RoomVersionId,
        additional_creators: &[OwnedUserId],
    ) -> Result<OwnedRoomId> {
        let rules = checks::rules(&version).map_err(|e| {
            Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_UNSUPPORTED_ROOM_VERSION",
                e.0,
            )
        })?;
        if !self.is_known(room)? {
            return Err(Error::not_found(format!("unknown room {room}")));
        }
        if self.membership_of(room, user)?
            != Some(ruma::events::room::member::MembershipState::Join)
        {
            return Err(Error::forbidden(format!("{user} is not in {room}")));
        }
        if !self
            .power_levels(room)?
            .user_can_send_state(user, StateEventType::RoomTombstone)
        {
            return Err(Error::forbidden(format!("{user} may not upgrade {room}")));
        }
        let privileged = rules.authorization.explicitly_privilege_room_creators;
        if !additional_creators.is_empty() && !privileged {
            return Err(Error::invalid_param(format!(
                "room version {version} has no additional creators"
            )));
        }
        let mut creation = Map::new();
        let last = self.last_event_at(room, u64::MAX)?;
        let mut predecessor = json!({ "room_id": room });
        if let Some(last) = last {
            predecessor["event_id"] = json!(last);
        }
        creation.insert("predecessor".into(), predecessor);
        if let Some(kind) = self
            .state_of(room, "m.room.create")?
            .and_then(|c| c.get("type").cloned())
        {
            creation.insert("type".into(), kind);
        }
        if !additional_creators.is_empty() {
            creation.insert("additional_creators".into(), json!(additional_creators));
        }
        let new = self.create_room_with(user, Some(version), creation).await?;
        for kind in TRANSFERRED {
            if let Some(content) = self.state_of(room, kind)? {
                self.send(&new, user, kind, Some(""), content).await?;
            }
        }
        if let Some(mut power) = self.state_of(room, "m.room.power_levels")? {
            if privileged {
                // Creators hold unlimited power and may not be listed.
                if let Some(users) = power.get_mut("users").and_then(Value::as_object_mut) {
                    users.remove(user.as_str());
                    for creator in additional_creators {
                        users.remove(creator.as_str());
                    }
                }
            }
            self.send(&new, user, "m.room.power_levels", Some(""), power)
                .await?;
        }
        Ok(new)
    }

    /// The old half's end: a tombstone pointing at the replacement, then
    /// power levels that keep everyone below moderators from speaking or
    /// inviting there (the greater of 50 and one above `users_default`).
    pub async fn retire(&self, room: &RoomId, user: &UserId, replacement: &RoomId) -> Result<()> {
        let tombstone = json!({
            "body": "This room has been replaced",
            "replacement_room": replacement,
        });
        self.send(room, user, "m.room.tombstone", Some(""), tombstone)
            .await?;
        let Some(mut power) = self.state_of(room, "m.room.power_levels")? else {
            return Ok(());
        };
        let levels: RoomPowerLevelsEventContent = serde_json::from_value(power.clone())
            .map_err(|e| Error::internal(format!("power levels: {e}")))?;
        let closed = std::cmp::max(50, i64::from(levels.users_default) + 1);
        power["events_default"] = json!(closed);
        power["invite"] = json!(closed);
        if let Err(e) = self
            .send(room, user, "m.room.power_levels", Some(""), power)
            .await
        {
            // The tombstone is what matters; the user may lack the power
            // to change power levels even though they could tombstone.
            tracing::info!(%room, error = %e.message, "old room's power levels left as they were");
        }
        Ok(())
    }

    /// The room this one replaced, as its create event says.
    pub fn predecessor(&self, room: &RoomId) -> Result<Option<OwnedRoomId>> {
        Ok(self
            .state_of(room, "m.room.create")?
            .and_then(|c| c["predecessor"]["room_id"].as_str().map(str::to_owned))
            .and_then(|id| OwnedRoomId::try_from(id).ok()))
    }

    /// A current state event's content with an empty state key (`None`
    /// when the room has none).
    fn state_of(&self, room: &RoomId, kind: &str) -> Result<Option<Value>> {
        let content = self.current_content(room, &StateEventType::from(kind), "")?;
        Ok((!content.is_null()).then_some(content))
    }
}
