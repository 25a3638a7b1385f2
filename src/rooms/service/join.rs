//! Joins, from both sides. As the resident server: answering a
//! `send_join` with the room's state. As the joining server: importing
//! the room from a `send_join` answer (state and auth chain verified and
//! stored as outliers, then our join appended on that state).
//! Spec: server-server-api.md "Joining Rooms"; joins-v1.yaml, joins-v2.yaml.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures_util::{stream, StreamExt};
use ruma::{
    events::StateEventType, room_version_rules::RoomVersionRules, state_res::StateMap,
    CanonicalJsonObject, EventId, OwnedEventId, OwnedServerName, RoomId, RoomVersionId, ServerName,
};
use serde_json::value::RawValue;

use super::{auth_by_own_events, backfill::Checked, RoomService, Shorts, Source};
use crate::{
    error::{Error, Result},
    rooms::{
        event::Pdu,
        pdu::{self, CheckedPdu},
    },
    store::{
        partial::PartialJoin,
        rooms::{Append, EventMeta, Status},
    },
};

/// Signature checks in flight at once while importing a room (spread
/// over every core).
const VERIFY_CONCURRENCY: usize = 64;

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
    fn join_answer(
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
    fn state_without_members(
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
            let chosen = super::summary::heroes(&members, &joining).map(|m| m.id.clone());
            kept.extend(chosen);
        }
        Ok(kept)
    }

    /// Takes in a room we just joined: every event of the resident's
    /// state and auth chain is verified and authorized against its own
    /// auth events (stored as outliers with the outcome), the accepted
    /// state becomes the state before our join, and the join is appended
    /// on it: the room's first timeline event and forward extremity.
    /// `partial` when the resident omitted member events: the join's own
    /// auth events stand in for the members it needs (the resident vouches
    /// for them), and the room is marked partial until
    /// [`Self::complete_partial_state`].
    pub async fn import_join(
        &self,
        room: &RoomId,
        version: &RoomVersionId,
        join: CheckedPdu,
        answer: (Vec<CanonicalJsonObject>, Vec<CanonicalJsonObject>),
        partial: Option<Vec<OwnedServerName>>,
    ) -> Result<OwnedEventId> {
        let rules = pdu::rules(version).map_err(|e| Error::invalid_param(e.0))?;
        let (checked, state_ids) = self.verify_all(version, answer.0, answer.1).await?;
        let pdus = of_room(checked, room, &rules);
        let _guard = self.lock_any(room).await;
        let (outcome, outliers) = self.authorize_outliers(room, &rules, &pdus, |_| {
            Some(Status::Rejected(
                "an auth event is missing from the join response".into(),
            ))
        })?;
        let fetch = |id: &EventId| outcome.get(id).cloned();
        let mut room_state = given_state(&state_ids, fetch, "join response")?;
        if let Some(servers) = partial {
            let own = Pdu::parse(join.event_id.clone(), &join.object, &rules)
                .map_err(|e| Error::invalid_param(e.to_string()))?;
            for pdu in own.auth_events.iter().filter_map(|id| fetch(id)) {
                if let (Some(key), false) = (&pdu.state_key, pdu.rejected) {
                    let kind = StateEventType::from(pdu.kind.to_string());
                    room_state
                        .entry((kind, key.clone()))
                        .or_insert(pdu.event_id);
                }
            }
            let marker = PartialJoin {
                join: join.event_id.clone(),
                servers,
            };
            self.partial.put(room, &marker)?;
        }
        let group = self.save_given(&room_state, outliers)?;
        let (event_id, status) = self
            .append(room, version.as_str(), join, Source::Remote, Some(group))
            .await?;
        self.trees.flush().await?;
        match status {
            Status::Accepted => Ok(event_id),
            Status::Rejected(reason) | Status::SoftFailed(reason) => {
                self.partial.remove(room)?;
                Err(Error::forbidden(format!(
                    "our join is not allowed by the room's state: {reason}"
                )))
            }
        }
    }

    /// Commits `outliers` with a state group for `state`; the group.
    pub(super) fn save_given(
        &self,
        state: &StateMap<OwnedEventId>,
        mut outliers: Append,
    ) -> Result<u64> {
        let mut shorts = Shorts::cached(&self.trees, &self.groups);
        let group = shorts.save(None, state)?;
        shorts.into_append(&mut outliers);
        self.trees.commit(outliers)?;
        Ok(group)
    }

    /// Authorizes each of `pdus` against its own auth events, in auth
    /// order: the outcome of every one (accepted or rejected), and the
    /// outliers to store for those not stored yet (as an append, with the
    /// auth edges of their state events). An event with an auth
    /// event known nowhere gets `missing(event)`: a status, or none to
    /// leave it out entirely.
    pub(super) fn authorize_outliers(
        &self,
        room: &RoomId,
        rules: &ruma::room_version_rules::RoomVersionRules,
        pdus: &Checked,
        missing: impl Fn(&Pdu) -> Option<Status>,
    ) -> Result<(HashMap<OwnedEventId, Pdu>, Append)> {
        let mut outcome: HashMap<OwnedEventId, Pdu> = HashMap::new();
        let mut outliers = Append::default();
        for id in auth_order(pdus) {
            let (pdu, event) = &pdus[&id];
            let unknown_auth = pdu.auth_events.iter().any(|a| {
                !pdus.contains_key(a) && !outcome.contains_key(a) && self.pdu(a, rules).is_none()
            });
            let status = if unknown_auth {
                match missing(pdu) {
                    Some(status) => status,
                    None => continue,
                }
            } else {
                let fetch = |id: &EventId| outcome.get(id).cloned().or_else(|| self.pdu(id, rules));
                auth_by_own_events(room, rules, pdu, fetch)
            };
            let mut pdu = pdu.clone();
            pdu.rejected = status != Status::Accepted;
            outcome.insert(id.clone(), pdu.clone());
            if self.trees.event_meta(id.as_str())?.is_some() {
                continue;
            }
            let json =
                serde_json::to_vec(&event.object).map_err(|e| Error::internal(e.to_string()))?;
            outliers.cited.extend(super::citations(&pdu, &status));
            outliers.also_stored.push((
                id,
                json,
                EventMeta {
                    room_id: room.to_owned(),
                    depth: u64::from(pdu.depth),
                    stream: 0,
                    status,
                    state_before: 0,
                    state_after: 0,
                    outlier: true,
                    auth_events: Some(pdu.auth_events.clone()),
                },
            ));
        }
        Ok((outcome, outliers))
    }

    /// Checks signatures and hashes of a join response's events, many at
    /// a time; refused events are dropped (and so never become state).
    pub(super) async fn verify_all(
        &self,
        version: &RoomVersionId,
        state: Vec<CanonicalJsonObject>,
        auth_chain: Vec<CanonicalJsonObject>,
    ) -> Result<(Vec<CheckedPdu>, HashSet<OwnedEventId>)> {
        let n_state = state.len();
        // Spawned, so the checks run on every core, not just this task's.
        let results: Vec<(usize, std::result::Result<CheckedPdu, pdu::Refused>)> =
            stream::iter(state.into_iter().chain(auth_chain).enumerate())
                .map(|(i, object)| {
                    let (keys, version) = (self.keys.clone(), version.clone());
                    tokio::spawn(async move { (i, pdu::check(&keys, &version, object).await) })
                })
                .buffer_unordered(VERIFY_CONCURRENCY)
                .filter_map(|joined| async move { joined.ok() })
                .collect()
                .await;
        let mut seen = HashSet::new();
        let mut state_ids = HashSet::new();
        let mut checked = Vec::new();
        for (i, result) in results {
            match result {
                Ok(event) => {
                    if i < n_state {
                        state_ids.insert(event.event_id.clone());
                    }
                    if seen.insert(event.event_id.clone()) {
                        checked.push(event);
                    }
                }
                Err(e) => tracing::debug!(reason = %e.0, "join response event refused"),
            }
        }
        Ok((checked, state_ids))
    }
}

/// The state another server gave (a join response's, or the state at a
/// gap): its accepted state events by type and key. Without a valid create
/// event it is no room's state.
pub(super) fn given_state(
    ids: &HashSet<OwnedEventId>,
    fetch: impl Fn(&EventId) -> Option<Pdu>,
    source: &str,
) -> Result<StateMap<OwnedEventId>> {
    let mut state = StateMap::new();
    for id in ids {
        let Some(pdu) = fetch(id).filter(|p| !p.rejected) else {
            continue;
        };
        if let Some(key) = &pdu.state_key {
            state.insert(
                (StateEventType::from(pdu.kind.to_string()), key.clone()),
                id.clone(),
            );
        }
    }
    if !state.contains_key(&(StateEventType::RoomCreate, String::new())) {
        return Err(Error::remote(format!(
            "the {source}'s state has no valid create event"
        )));
    }
    Ok(state)
}

/// The checked events that parse and belong to `room`, by ID; a server
/// answering with another room's events gets them ignored.
pub(super) fn of_room(
    checked: Vec<CheckedPdu>,
    room: &RoomId,
    rules: &ruma::room_version_rules::RoomVersionRules,
) -> Checked {
    let mut pdus = HashMap::new();
    for event in checked {
        match Pdu::parse(event.event_id.clone(), &event.object, rules) {
            Ok(pdu) if in_room(&pdu, room) => {
                pdus.insert(event.event_id.clone(), (pdu, event));
            }
            _ => tracing::debug!(event = %event.event_id, "event not of {room}, ignored"),
        }
    }
    pdus
}

/// Whether a join response event belongs to `room`; a v12 create event
/// names no room, its ID is the room's.
fn in_room(pdu: &Pdu, room: &RoomId) -> bool {
    match &pdu.room_id {
        Some(id) => id == room,
        None => pdu.event_id.as_str().get(1..) == room.as_str().get(1..),
    }
}

/// The events ordered so that each comes after its auth events.
fn auth_order(pdus: &HashMap<OwnedEventId, (Pdu, CheckedPdu)>) -> Vec<OwnedEventId> {
    let mut order = Vec::with_capacity(pdus.len());
    let mut done: HashSet<&OwnedEventId> = HashSet::new();
    let mut roots: Vec<&OwnedEventId> = pdus.keys().collect();
    // Deterministic: oldest first where the auth graph leaves a choice.
    roots.sort_by_key(|id| (pdus[*id].0.depth, (*id).clone()));
    for root in roots {
        let mut stack: Vec<(&OwnedEventId, bool)> = vec![(root, false)];
        while let Some((id, expanded)) = stack.pop() {
            if done.contains(id) {
                continue;
            }
            if expanded {
                done.insert(id);
                order.push(id.clone());
                continue;
            }
            stack.push((id, true));
            for auth in &pdus[id].0.auth_events {
                if let Some((key, _)) = pdus.get_key_value(auth) {
                    if !done.contains(key) {
                        stack.push((key, false));
                    }
                }
            }
        }
    }
    order
}
