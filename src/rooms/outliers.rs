//! Importing events another server gave us (a join answer, history, the
//! state at a gap) as outliers: signatures and hashes checked on every
//! core, the events of the room kept, each authorized against its own
//! auth events in auth order, and stored with the outcome, apart from the
//! timeline. What they make the room's state is the caller's to decide.
//! Spec: server-server-api.md "Checks performed on receipt of a PDU"
//! (steps 1-4), "Retrieving events".

use std::collections::{HashMap, HashSet};

use futures_util::{stream, StreamExt};
use ruma::{
    events::StateEventType, state_res::StateMap, CanonicalJsonObject, EventId, OwnedEventId,
    RoomId, RoomVersionId,
};

use crate::{
    error::{Error, Result},
    rooms::{
        checks::{self, CheckedPdu},
        event::{Checked, Pdu},
        pipeline::auth_by_own_events,
        pipeline::citations,
        shorts::Shorts,
        RoomService,
    },
    store::rooms::{relations::Related, Append, EventMeta, Status},
};

impl RoomService {
    /// Verifies fetched events of `room`; refused ones are dropped.
    pub async fn verify_history(
        &self,
        room: &RoomId,
        events: Vec<CanonicalJsonObject>,
    ) -> Result<Checked> {
        let version = self.version_of(room)?;
        let rules = Self::rules_of(version.as_str())?;
        let (checked, _) = self.verify_all(&version, events, Vec::new()).await?;
        Ok(of_room(checked, room, &rules))
    }

    /// Auth events the checked events name that are stored nowhere.
    pub fn unknown_auth_events(&self, checked: &Checked) -> Result<Vec<OwnedEventId>> {
        let mut unknown = HashSet::new();
        for (pdu, _) in checked.values() {
            for id in &pdu.auth_events {
                if !checked.contains_key(id) && self.trees.event_meta(id.as_str())?.is_none() {
                    unknown.insert(id.clone());
                }
            }
        }
        Ok(unknown.into_iter().collect())
    }

    /// Commits `outliers` with a state group for `state`; the group.
    pub(in crate::rooms) fn save_given(
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
    pub(in crate::rooms) fn authorize_outliers(
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
            outliers.cited.extend(citations(&pdu, &status));
            let meta = EventMeta {
                room_id: room.to_owned(),
                depth: u64::from(pdu.depth),
                stream: 0,
                status,
                state_before: 0,
                state_after: 0,
                outlier: true,
                auth_events: Some(pdu.auth_events.clone()),
            };
            outliers
                .related
                .extend(Related::of(&id, &event.object, &meta));
            outliers.also_stored.push((id, json, meta));
        }
        Ok((outcome, outliers))
    }

    /// Checks signatures and hashes of a join response's events, many at
    /// a time; refused events are dropped (and so never become state).
    pub(in crate::rooms) async fn verify_all(
        &self,
        version: &RoomVersionId,
        state: Vec<CanonicalJsonObject>,
        auth_chain: Vec<CanonicalJsonObject>,
    ) -> Result<(Vec<CheckedPdu>, HashSet<OwnedEventId>)> {
        let n_state = state.len();
        // Spawned, so the checks run on every core, not just this task's.
        let results: Vec<(usize, std::result::Result<CheckedPdu, checks::Refused>)> =
            stream::iter(state.into_iter().chain(auth_chain).enumerate())
                .map(|(i, object)| {
                    let (keys, version) = (self.keys.clone(), version.clone());
                    tokio::spawn(async move { (i, checks::check(&keys, &version, object).await) })
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
pub(in crate::rooms) fn given_state(
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
pub(in crate::rooms) fn of_room(
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

/// Signature checks in flight at once while importing a room (spread
/// over every core).
const VERIFY_CONCURRENCY: usize = 64;
