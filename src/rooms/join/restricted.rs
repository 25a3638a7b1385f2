//! Restricted rooms: a user may join without an invite when they are
//! joined to one of the rooms the join rules allow; a user of the resident
//! server with the power to invite vouches for them in the join event
//! (`join_authorised_via_users_server`), and that server co-signs it.
//! Spec: server-server-api.md "Restricted rooms"; client-server-api
//! "Restricted rooms".

use ruma::{
    events::{room::member::MembershipState, StateEventType},
    CanonicalJsonValue, OwnedUserId, RoomId, UserId,
};
use serde_json::Value;

use crate::{
    error::{Error, Result},
    rooms::RoomService,
};

impl RoomService {
    /// For a join of `user` to a restricted room they are neither invited
    /// to nor in: one of our users who may vouch for them, once an allowed
    /// room has them joined. `None` when no vouching is needed. Refusals
    /// use the spec's errcodes: 400 `M_UNABLE_TO_AUTHORISE_JOIN` when we
    /// hold none of the allowed rooms, 403 when the user is in none, 400
    /// `M_UNABLE_TO_GRANT_JOIN` when none of our users may invite.
    pub fn restricted_join_authoriser(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Option<OwnedUserId>> {
        let rules = Self::rules_of(&self.record(room)?.version)?;
        if !rules.authorization.restricted_join_rule {
            return Ok(None);
        }
        let join_rules = self.current_content(room, &StateEventType::RoomJoinRules, "")?;
        let restricted = matches!(
            join_rules["join_rule"].as_str(),
            Some("restricted" | "knock_restricted")
        );
        let in_or_invited = matches!(
            self.membership_of(room, user)?,
            Some(MembershipState::Join | MembershipState::Invite)
        );
        if !restricted || in_or_invited {
            return Ok(None);
        }
        let mut known = false;
        let mut satisfied = false;
        for allowed in join_rules["allow"].as_array().into_iter().flatten() {
            let Some(Ok(other)) = (allowed["type"] == "m.room_membership")
                .then(|| allowed["room_id"].as_str().map(<&RoomId>::try_from))
                .flatten()
            else {
                continue;
            };
            if self.record(other).is_err() {
                continue;
            }
            known = true;
            if self.membership_of(other, user)? == Some(MembershipState::Join) {
                satisfied = true;
                break;
            }
        }
        if !known {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_UNABLE_TO_AUTHORISE_JOIN",
                "this server holds none of the rooms that would let you in",
            ));
        }
        if !satisfied {
            return Err(Error::forbidden(format!(
                "{user} is in none of the rooms that give access to {room}"
            )));
        }
        self.local_inviter(room)?.map(Some).ok_or_else(|| {
            Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_UNABLE_TO_GRANT_JOIN",
                "no user of this server may let you in; try another server",
            )
        })
    }

    /// One of our users joined to `room` with the power to invite.
    pub(in crate::rooms) fn local_inviter(&self, room: &RoomId) -> Result<Option<OwnedUserId>> {
        let power = self.power_levels(room)?;
        Ok(self.joined_members(room)?.into_iter().find(|member| {
            member.server_name() == self.server_name && power.user_can_invite(member)
        }))
    }

    /// The sender of the room's create event.
    pub(in crate::rooms) fn creator_of(&self, room: &RoomId) -> Result<String> {
        Ok(self
            .state_event(room, &StateEventType::RoomCreate, "")?
            .and_then(|(_, event)| match event.get("sender") {
                Some(CanonicalJsonValue::String(sender)) => Some(sender.clone()),
                _ => None,
            })
            .unwrap_or_default())
    }

    /// The content of one current state event (`null` when absent).
    pub(in crate::rooms) fn current_content(
        &self,
        room: &RoomId,
        kind: &StateEventType,
        key: &str,
    ) -> Result<Value> {
        Ok(self
            .state_event(room, kind, key)?
            .and_then(|(_, event)| event.get("content").cloned())
            .map_or(Value::Null, Value::from))
    }
}
