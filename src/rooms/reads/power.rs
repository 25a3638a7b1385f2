//! The room's power levels as ruma reads them: the room version's rules,
//! and in rooms that privilege their creators (v12), the creators above
//! everyone.
//! Spec: client-server-api "Permissions"; rooms/v12.md.

use ruma::{
    events::{
        room::power_levels::{RoomPowerLevels, RoomPowerLevelsEventContent},
        StateEventType,
    },
    OwnedUserId, RoomId,
};

use crate::error::Result;
use crate::rooms::RoomService;

impl RoomService {
    /// The room's current power levels.
    pub fn power_levels(&self, room: &RoomId) -> Result<RoomPowerLevels> {
        let rules = Self::rules_of(&self.record(room)?.version)?;
        let content: Option<RoomPowerLevelsEventContent> = serde_json::from_value(
            self.current_content(room, &StateEventType::RoomPowerLevels, "")?,
        )
        .ok();
        let creators: Vec<OwnedUserId> = if rules.authorization.explicitly_privilege_room_creators {
            let create = self.current_content(room, &StateEventType::RoomCreate, "")?;
            let additional = create["additional_creators"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u.as_str().and_then(|u| OwnedUserId::try_from(u).ok()));
            OwnedUserId::try_from(self.creator_of(room)?)
                .into_iter()
                .chain(additional)
                .collect()
        } else {
            Vec::new()
        };
        Ok(RoomPowerLevels::new(
            content.into(),
            &rules.authorization,
            creators,
        ))
    }
}
