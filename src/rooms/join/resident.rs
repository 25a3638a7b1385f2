//! Joins, from both sides. As the resident server: answering a
//! `send_join` with the room's state. As the joining server: importing
//! the room from a `send_join` answer (state and auth chain verified and
//! stored as outliers, then our join appended on that state).
//! Spec: server-server-api.md "Joining Rooms"; joins-v1.yaml, joins-v2.yaml.

use std::collections::{BTreeSet, HashSet};

use ruma::{
    events::StateEventType, room_version_rules::RoomVersionRules, CanonicalJsonObject, EventId,
    OwnedEventId, OwnedServerName, RoomId, ServerName,
};
use serde_json::value::RawValue;

use crate::{
    error::{Error, Result},
    rooms::{shorts::Shorts, RoomService},
    store::rooms::EventMeta,
};

/// What the resident server answers a `send_join` with.
/// Events go out as stored (canonical JSON), never parsed: a 10,000
/// member room's state is most of the answer.
pub struct JoinAnswer {
    pub state: Vec<Box<RawValue>>,
    pub auth_chain: Vec<Box<RawValue>>,
    pub servers_in_room: Vec<String>,
    pub members_omitted: bool,
    /// The join as we co-signed it, when one of our users vouched for it.
    pub event: Option<CanonicalJsonObject>,
}

impl RoomService {
    /// `send_join`: checks the joining server's signed join, appends it and
    /// returns the state before it with the auth chain.
    pub async fn send_join(
        &self,
        room: &RoomId,
        event_id: &EventId,
        origin: &ServerName,
        object: CanonicalJsonObject,
        omit_members: bool,
    ) -> Result<JoinAnswer> {
        let servers_in_room = self.joined_servers(room)?;
        let cosigned = self
            .accept_membership(room, event_id, origin, object, "join")
            .await?;
        crate::blocking::reading_much(|| {
            self.join_answer(room, event_id, omit_members, servers_in_room, cosigned)
        })
    }

    /// The state before the join `event_id` and its auth chain, as stored.
    pub(in crate::rooms) fn join_answer(
        &self,
        room: &RoomId,
        event_id: &EventId,
        omit_members: bool,
        servers_in_room: BTreeSet<OwnedServerName>,
        cosigned: Option<CanonicalJsonObject>,
    ) -> Result<JoinAnswer> {
        let rules = Self::rules_of(&self.record(room)?.version)?;
        let meta = self
            .trees
            .event_meta(event_id.as_str())?
            .ok_or_else(|| Error::internal("join vanished"))?;
        let state = if omit_members {
            self.state_without_members(&meta, event_id, &rules)?
        } else {
            self.state_ids_before(&meta)?
        };
        let mut roots = state.clone();
        roots.push(event_id.to_owned());
        let mut chain = self.auth_chain(room, &roots)?;
        if omit_members {
            // Allowed, and most of a large room's answer otherwise.
            let given: HashSet<&OwnedEventId> = state.iter().collect();
            chain.retain(|id| !given.contains(id));
        }
        let load = |ids: Vec<OwnedEventId>| -> Result<Vec<Box<RawValue>>> {
            ids.iter().map(|id| self.event_raw(id)).collect()
        };
        Ok(JoinAnswer {
            state: load(state)?,
            auth_chain: load(chain)?,
            servers_in_room: servers_in_room.iter().map(|s| s.to_string()).collect(),
            members_omitted: omit_members,
            event: cosigned,
        })
    }

    /// The state before `join` for an `omit_members` answer: no member
    /// events but those of the room's heroes, whom the joining user's
    /// client names the room after when it has no name or alias.
    pub(in crate::rooms) fn state_without_members(
        &self,
        meta: &EventMeta,
        join: &EventId,
        rules: &RoomVersionRules,
    ) -> Result<Vec<OwnedEventId>> {
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let before = shorts.state_of(meta.state_before)?;
        let (members, state): (Vec<_>, Vec<_>) = before
            .into_iter()
            .partition(|((kind, _), _)| *kind == StateEventType::RoomMember);
        let named = self.names_room(&state)?;
        let mut kept: Vec<OwnedEventId> = state.into_iter().map(|(_, id)| id).collect();
        if !named {
            let joining = self
                .pdu(join, rules)
                .and_then(|p| p.state_key)
                .and_then(|key| ruma::OwnedUserId::try_from(key).ok())
                .ok_or_else(|| Error::internal("the join has no user as state key"))?;
            let members = self.members_in(&members)?;
            let chosen =
                crate::rooms::reads::summary::heroes(&members, &joining).map(|m| m.id.clone());
            kept.extend(chosen);
        }
        Ok(kept)
    }
}
