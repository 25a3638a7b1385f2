//! The append path: steps 4-6 of the receive checks (auth events, the
//! state before the event with forks resolved, soft failure against the
//! current state), then the event and all it changes stored in one commit
//! and queued for the room's other servers.
//! Spec: server-server-api.md "Checks performed on receipt of a PDU",
//! "Soft failure"; rooms/v* auth rules.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use ruma::{
    events::{StateEventType, TimelineEventType},
    room_version_rules::RoomVersionRules,
    state_res::{check_state_dependent_auth_rules, check_state_independent_auth_rules, StateMap},
    EventId, OwnedEventId, OwnedServerName, RoomId,
};

use crate::rooms::{activity::Indexed, checks::CheckedPdu, event::Pdu, shorts::Shorts, state_res};
use crate::{
    error::{Error, Result},
    store::rooms::{
        relations::Related, search::Searchable, Append, EventMeta, RoomRecord, ShortState, Status,
    },
};

use super::{RoomService, Source};

impl RoomService {
    /// Resolves forked states, reading events from `pending` (ones not
    /// stored yet) before the store, and the auth DAG through metadata
    /// and the `auth_children` index.
    pub fn resolve(
        &self,
        rules: &RoomVersionRules,
        states: &[StateMap<OwnedEventId>],
        pending: impl Fn(&EventId) -> Option<Pdu>,
    ) -> Result<StateMap<OwnedEventId>> {
        let graph = StoredGraph {
            rooms: self,
            rules,
            pending: &pending,
        };
        state_res::resolve_with(
            rules,
            states,
            &|id| pending(id).or_else(|| self.pdu(id, rules)),
            &graph,
        )
        .map_err(Error::internal)
    }

    /// Checks an event against the auth rules with state from `lookup`.
    pub(in crate::rooms) fn auth_against(
        &self,
        rules: &RoomVersionRules,
        pdu: &Pdu,
        lookup: impl Fn(&StateEventType, &str) -> Option<OwnedEventId>,
    ) -> std::result::Result<(), String> {
        check_state_dependent_auth_rules(
            &rules.authorization,
            pdu,
            |kind: &StateEventType, key: &str| {
                lookup(kind, key).and_then(|id| self.pdu(&id, rules))
            },
        )
    }

    /// `auth_against` a short-id state.
    pub(in crate::rooms) fn auth_against_state(
        &self,
        rules: &RoomVersionRules,
        pdu: &Pdu,
        shorts: &Shorts<'_>,
        state: &ShortState,
    ) -> std::result::Result<(), String> {
        self.auth_against(rules, pdu, |kind, key| {
            shorts.lookup(state, kind, key).ok().flatten()
        })
    }

    /// Steps 4-6 of the receive checks and persistence, for an event whose
    /// auth and prev events we hold. The caller holds the room's lock.
    /// Local events that fail are refused without being stored.
    pub(in crate::rooms) async fn append(
        &self,
        room: &RoomId,
        version: &str,
        checked: CheckedPdu,
        source: Source<'_>,
        given_before: Option<u64>,
    ) -> Result<(OwnedEventId, Status)> {
        if let Some(meta) = self.trees.event_meta(checked.event_id.as_str())? {
            return Ok((checked.event_id, meta.status));
        }
        let rules = Self::rules_of(version)?;
        let pdu = Pdu::parse(checked.event_id.clone(), &checked.object, &rules)
            .map_err(|e| Error::bad_json(e.0))?;
        let fetch = |id: &EventId| self.pdu(id, &rules);
        let prevs = pdu.prev_events.iter().filter(|_| given_before.is_none());
        for (id, is_prev) in pdu
            .auth_events
            .iter()
            .map(|id| (id, false))
            .chain(prevs.map(|id| (id, true)))
        {
            let meta = self.trees.event_meta(id.as_str())?;
            // An outlier has no known state: as a prev event it is a gap.
            if meta.is_none_or(|m| is_prev && m.outlier) {
                return Err(Error::not_found(format!(
                    "{} refers to unknown event {id}",
                    pdu.event_id
                )));
            }
        }
        // Step 4: the event's own auth events must allow it.
        let mut status = auth_by_own_events(room, &rules, &pdu, fetch);
        // Step 5: the state before the event must allow it.
        let mut shorts = Shorts::cached(&self.trees, &self.groups);
        let (before_group, before) = match given_before {
            Some(group) => (Some(group), shorts.shared(group)?),
            None => self.state_before(&pdu, &rules, &mut shorts)?,
        };
        if status == Status::Accepted {
            if let Err(reason) = self.auth_against_state(&rules, &pdu, &shorts, &before) {
                status = Status::Rejected(format!("not allowed by the state before it: {reason}"));
            }
        }
        // Step 6: soft-fail against the room's current state (when that
        // differs from the state before, which was just checked).
        let record = self.trees.room(room.as_str())?;
        if status == Status::Accepted {
            if let Some(record) = record.filter(|r| Some(r.current_state) != before_group) {
                let current = shorts.shared(record.current_state)?;
                if let Err(reason) = self.auth_against_state(&rules, &pdu, &shorts, &current) {
                    status =
                        Status::SoftFailed(format!("not allowed by the current state: {reason}"));
                }
            }
        }
        if let (
            Status::Rejected(reason) | Status::SoftFailed(reason),
            Source::Local | Source::Relayed(_),
        ) = (&status, source)
        {
            return Err(Error::forbidden(reason.clone()));
        }
        let event_id = pdu.event_id.clone();
        let destinations = match source {
            Source::Local => self.destinations(room, &pdu, &before)?,
            Source::Relayed(origin) => {
                let mut all = self.destinations(room, &pdu, &before)?;
                all.retain(|d| d != origin);
                all
            }
            Source::Remote => Vec::new(),
        };
        self.persist(
            room,
            version,
            &rules,
            pdu,
            checked,
            status.clone(),
            (before_group, before),
            shorts,
            destinations,
        )?;
        Ok((event_id, status))
    }

    /// The state before `pdu`: empty for the create event, the state after
    /// its single prev event, or the resolution of its prev events' states.
    pub(in crate::rooms) fn state_before(
        &self,
        pdu: &Pdu,
        rules: &RoomVersionRules,
        shorts: &mut Shorts<'_>,
    ) -> Result<(Option<u64>, Arc<ShortState>)> {
        let mut groups = Vec::new();
        for prev in &pdu.prev_events {
            let meta = self
                .trees
                .event_meta(prev.as_str())?
                .ok_or_else(|| Error::not_found(format!("unknown prev event {prev}")))?;
            groups.push(meta.state_after);
        }
        groups.sort_unstable();
        groups.dedup();
        match groups.as_slice() {
            [] => Ok((None, Arc::default())),
            [one] => Ok((Some(*one), shorts.shared(*one)?)),
            many => {
                let states = many
                    .iter()
                    .map(|g| shorts.state_of(*g))
                    .collect::<Result<Vec<_>>>()?;
                let resolved = self.resolve(rules, &states, |_| None)?;
                let group = shorts.save(Some(many[0]), &resolved)?;
                Ok((Some(group), shorts.shared(group)?))
            }
        }
    }

    /// Records the event, its state groups, and for an accepted event the
    /// new extremities, timeline entry and current state, in one commit.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::rooms) fn persist(
        &self,
        room: &RoomId,
        version: &str,
        rules: &RoomVersionRules,
        pdu: Pdu,
        checked: CheckedPdu,
        status: Status,
        (before_group, before): (Option<u64>, Arc<ShortState>),
        mut shorts: Shorts<'_>,
        destinations: Vec<OwnedServerName>,
    ) -> Result<()> {
        // Judged at the state before the event, as its auth was.
        let (notified, appservices) = match status {
            Status::Accepted => (
                self.notified_by(room, &pdu, &checked.object, &before)?,
                self.interested_appservices(room, &pdu, &before)?,
            ),
            _ => (None, Vec::new()),
        };
        let before_group = match before_group {
            Some(group) => group,
            None => shorts.save_short(None, ShortState::clone(&before))?,
        };
        // The state after a state event, kept to seed the cache once committed.
        let mut after_state = None;
        let after_group = match (&status, &pdu.state_key) {
            (Status::Rejected(_), _) | (_, None) => before_group,
            (_, Some(key)) => {
                let short_key = shorts.key(&StateEventType::from(pdu.kind.to_string()), key)?;
                let short_event = shorts.event(&pdu.event_id)?;
                // The state is shared with the group cache: copied only here,
                // for a state event, never for a message.
                let mut after = Arc::unwrap_or_clone(before);
                after.insert(short_key, short_event);
                let group = shorts.save_change(before_group, short_key, short_event)?;
                after_state = Some(after);
                group
            }
        };
        // Only state events get a short id: nothing refers to a message by one.
        let mut append = Append::default();
        let accepted = status == Status::Accepted;
        let record = self.trees.room(room.as_str())?;
        if accepted {
            let mut extremities: HashSet<OwnedEventId> =
                self.trees.extremities(room.as_str())?.into_iter().collect();
            for prev in &pdu.prev_events {
                extremities.remove(prev);
            }
            let current = if extremities.is_empty() {
                after_group
            } else {
                let mut states = vec![shorts.state_of(after_group)?];
                for id in &extremities {
                    let group = self
                        .trees
                        .event_meta(id.as_str())?
                        .map(|m| m.state_after)
                        .ok_or_else(|| Error::internal("extremity without metadata"))?;
                    states.push(shorts.state_of(group)?);
                }
                // The new event is not stored yet: resolution must still see it.
                let resolved = self.resolve(rules, &states, |id| {
                    (*id == pdu.event_id).then(|| pdu.clone())
                })?;
                shorts.save(Some(after_group), &resolved)?
            };
            append.extremities_removed = pdu.prev_events.clone();
            append.extremity_added = Some(pdu.event_id.clone());
            // The position (and the queue sequence) is assigned by commit.
            append.timeline = Some(0);
            append.outbound = destinations.into_iter().map(|d| (d, 0)).collect();
            append.room = Some((
                room.to_owned(),
                RoomRecord {
                    version: version.to_owned(),
                    current_state: current,
                },
            ));
        } else if record.is_none() {
            return Err(Error::forbidden("the room's create event was not accepted"));
        }
        let meta = EventMeta {
            room_id: room.to_owned(),
            depth: u64::from(pdu.depth),
            stream: append.timeline.unwrap_or(0),
            status,
            state_before: before_group,
            state_after: after_group,
            outlier: false,
            auth_events: Some(pdu.auth_events.clone()),
        };
        if accepted && pdu.kind == TimelineEventType::RoomRedaction {
            self.redact_target(room, rules, &pdu, &checked.object, &mut append)?;
        }
        let json =
            serde_json::to_vec(&checked.object).map_err(|e| Error::internal(e.to_string()))?;
        append.cited = citations(&pdu, &meta.status);
        // An outlier taken into the timeline moves in the index too.
        if let Some(outlier) = self.trees.event_meta(pdu.event_id.as_str())? {
            append
                .unrelated
                .extend(Related::of(&pdu.event_id, &checked.object, &outlier));
        }
        append
            .related
            .extend(Related::of(&pdu.event_id, &checked.object, &meta));
        if append.timeline.is_some() {
            append.searchable = Searchable::of(&checked.object, &meta);
            append.notified = notified;
            append.appservices = appservices;
        }
        let indexed = Indexed::of(&pdu, &self.server_name);
        append.event = Some((pdu.event_id, json, meta));
        shorts.into_append(&mut append);
        let notifies = append.notified.is_some();
        let queued_for = append.appservices.clone();
        self.trees.commit_with(append, |position| {
            self.index_appended(room, position, &indexed)
        })?;
        if notifies {
            self.notified_ready.notify_one();
        }
        self.appservices_queued(&queued_for);
        if let Some(state) = after_state {
            self.groups.put(after_group, Arc::new(state));
        }
        Ok(())
    }
}

/// Step 4 of the receive checks: whether the event's own `auth_events`
/// (read through `fetch`, stored or about to be) allow it.
pub(in crate::rooms) fn auth_by_own_events(
    room: &RoomId,
    rules: &RoomVersionRules,
    pdu: &Pdu,
    fetch: impl Fn(&EventId) -> Option<Pdu>,
) -> Status {
    let mut auth_map: HashMap<(StateEventType, String), Pdu> = HashMap::new();
    for event in pdu.auth_events.iter().filter_map(|id| fetch(id)) {
        if let Some(key) = event.state_key.clone() {
            auth_map.insert((StateEventType::from(event.kind.to_string()), key), event);
        }
    }
    if rules.authorization.room_create_event_id_as_room_id {
        // v12: the create event is implied by the room ID, never listed.
        if let Some(create) = OwnedEventId::try_from(format!("${}", &room.as_str()[1..]))
            .ok()
            .and_then(|id| fetch(&id))
        {
            auth_map.insert((StateEventType::RoomCreate, String::new()), create);
        }
    }
    let result =
        check_state_independent_auth_rules(&rules.authorization, pdu, &fetch).and_then(|()| {
            check_state_dependent_auth_rules(&rules.authorization, pdu, |kind, key| {
                auth_map.get(&(kind.clone(), key.to_owned())).cloned()
            })
        });
    match result {
        Ok(()) => Status::Accepted,
        Err(reason) => Status::Rejected(format!("not allowed by its auth events: {reason}")),
    }
}

/// (auth event, event) for each auth event of a state event that is not
/// rejected: the edges of the auth DAG that state resolution walks up.
/// No accepted event cites a rejected one (auth rules, "rejected auth
/// events"), so no walk from a state's events passes through one, and
/// junk a server sends to be rejected never grows the index.
pub(in crate::rooms) fn citations(pdu: &Pdu, status: &Status) -> Vec<(OwnedEventId, OwnedEventId)> {
    match (&pdu.state_key, status) {
        (None, _) | (_, Status::Rejected(_)) => Vec::new(),
        (Some(_), _) => pdu
            .auth_events
            .iter()
            .map(|auth| (auth.clone(), pdu.event_id.clone()))
            .collect(),
    }
}

/// The auth DAG as stored: auth events from event metadata, the events
/// citing one from the `auth_children` index. `pending` holds events not
/// stored yet, which the index does not know. That changes no answer: the
/// walk up looks for a path from a state's event down to a stored one,
/// and a stored event cites a pending one only if it was stored without
/// it, and so rejected and in no state.
struct StoredGraph<'a, P> {
    rooms: &'a RoomService,
    rules: &'a RoomVersionRules,
    pending: &'a P,
}

impl<P: Fn(&EventId) -> Option<Pdu>> state_res::AuthGraph for StoredGraph<'_, P> {
    fn auth_events(&self, id: &EventId) -> Option<Vec<OwnedEventId>> {
        match (self.pending)(id) {
            Some(pdu) => Some(pdu.auth_events),
            None => self.rooms.auth_events_of(id, self.rules),
        }
    }

    fn find_citing(&self, id: &EventId, visit: &mut dyn FnMut(&EventId) -> bool) -> bool {
        let found = self.rooms.trees.find_citing(id.as_str(), |child| {
            <&EventId>::try_from(child).is_ok_and(&mut *visit)
        });
        found.unwrap_or_else(|e| {
            tracing::error!(event = %id, error = %e, "cannot read the auth index");
            false
        })
    }
}
