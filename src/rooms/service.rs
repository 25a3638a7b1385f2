//! The event pipeline: every event, ours or another server's, goes through
//! the same checks before it is stored, and each room is processed one
//! event at a time while rooms proceed concurrently.
//! Spec: server-server-api.md "Checks performed on receipt of a PDU"
//! (steps 4-6 here; 1-3 in `pdu`), "Soft failure"; rooms/v* auth rules.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use rand::{distributions::Alphanumeric, Rng};
use ruma::{
    events::{StateEventType, TimelineEventType},
    room_version_rules::{
        EventIdFormatVersion, EventsReferenceFormatVersion, RoomIdFormatVersion, RoomVersionRules,
    },
    state_res::{
        auth_types_for_event, check_pdu_format, check_state_dependent_auth_rules,
        check_state_independent_auth_rules, StateMap,
    },
    CanonicalJsonObject, CanonicalJsonValue, EventId, Int, OwnedEventId, OwnedRoomId,
    OwnedServerName, RoomId, RoomVersionId, ServerName, UserId,
};
use serde_json::{json, Value};

use super::{
    event::Pdu,
    pdu::{self, CheckedPdu},
    servers::JoinedServers,
    shorts::{GroupCache, PduCache, Shorts},
    state_res,
};
use crate::{
    error::{Error, Result},
    keys::KeyService,
    store::{
        partial::PartialTree,
        pending::PendingTree,
        rooms::{Append, EventMeta, RoomRecord, RoomTrees, ShortState, Status},
        Store,
    },
    time::now_ms,
};

mod backfill;
mod gap;
mod handshake;
mod invite;
mod join;
mod partial;
mod query;
mod redact;
mod restricted;
mod sharing;
mod summary;
mod views;

pub use backfill::{Checked, Page};
pub use gap::GapState;
pub use invite::{InviteRequest, PreparedInvite};
pub use join::JoinAnswer;
pub use partial::{CompletionLock, StateAnswer};
pub use query::{MAX_START_EVENTS, MAX_WALK};
pub use summary::Summary;

/// At most this many forward extremities are referenced by a new event.
const MAX_PREV_EVENTS: usize = 20;

pub struct RoomService {
    server_name: OwnedServerName,
    default_version: RoomVersionId,
    trees: RoomTrees,
    pending: PendingTree,
    /// Rooms joined with partial state, until their member events are in.
    partial: PartialTree,
    backfilled: crate::store::backfill::BackfillTree,
    /// Our users' profiles, copied into their join events.
    accounts: crate::store::accounts::AccountTrees,
    keys: Arc<KeyService>,
    locks: Mutex<HashMap<OwnedRoomId, Arc<tokio::sync::Mutex<()>>>>,
    groups: GroupCache,
    pdus: PduCache,
    servers: JoinedServers,
    /// Woken whenever an event is queued for other servers.
    outbound_ready: Arc<tokio::sync::Notify>,
}

/// Where an appended event comes from, which decides what happens when it
/// fails and who else must receive it.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// Ours: refused unless accepted; queued for every other server.
    Local,
    /// Another server's, through the resident-server endpoints (send_join,
    /// send_leave): refused unless accepted; queued for the other servers.
    Relayed(&'a ServerName),
    /// Another server's, from a transaction: stored whatever the outcome.
    Remote,
}

/// A PDU whose signatures and hashes were checked (or refused, with why).
pub struct Verified {
    pub room: OwnedRoomId,
    pub event_id: OwnedEventId,
    pub checked: std::result::Result<CheckedPdu, String>,
}

/// A room's state as the API shows it.
pub struct RoomView {
    pub version: String,
    pub state: StateMap<OwnedEventId>,
    pub extremities: Vec<OwnedEventId>,
    pub timeline: Vec<OwnedEventId>,
    /// Joined with partial state, its member events not fetched yet.
    pub partial: bool,
}

impl RoomService {
    pub fn new(
        server_name: OwnedServerName,
        default_version: RoomVersionId,
        store: &Store,
        keys: Arc<KeyService>,
        outbound_ready: Arc<tokio::sync::Notify>,
    ) -> Self {
        Self {
            server_name,
            default_version,
            trees: store.rooms.clone(),
            pending: store.pending.clone(),
            partial: store.partial.clone(),
            backfilled: store.backfill.clone(),
            accounts: store.accounts.clone(),
            keys,
            locks: Mutex::new(HashMap::new()),
            groups: GroupCache::default(),
            pdus: PduCache::default(),
            servers: JoinedServers::default(),
            outbound_ready,
        }
    }

    pub fn server_name(&self) -> &ServerName {
        &self.server_name
    }

    /// Makes every event stored so far durable: call before acknowledging.
    pub async fn flush(&self) -> Result<()> {
        self.trees.flush().await
    }

    /// The servers with joined members in the room's current state; while
    /// the room's member events are still being fetched, also the servers
    /// the join answer said are in the room.
    pub fn joined_servers(&self, room: &RoomId) -> Result<BTreeSet<OwnedServerName>> {
        let record = self.record(room)?;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let state = shorts.shared(record.current_state)?;
        let mut servers = self.servers.in_state(&self.trees, room, &state)?;
        if let Some(partial) = self.partial.get(room)? {
            servers.extend(partial.servers);
        }
        Ok(servers)
    }

    /// Where a local event goes: every other server in the room before or
    /// after it (so a leaving server still hears of its own leave).
    fn destinations(
        &self,
        room: &RoomId,
        pdu: &Pdu,
        before: &Arc<ShortState>,
    ) -> Result<Vec<OwnedServerName>> {
        let mut servers = self.servers.in_state(&self.trees, room, before)?;
        // The event changes at most one membership: a join adds its server.
        if pdu.kind == TimelineEventType::RoomMember && pdu.membership() == Some("join") {
            if let Some(user) = pdu
                .state_key
                .as_deref()
                .and_then(|k| <&UserId>::try_from(k).ok())
            {
                servers.insert(user.server_name().to_owned());
            }
        }
        servers.remove(&self.server_name);
        Ok(servers.into_iter().collect())
    }

    /// Takes the room's lock for a change; refused while the room's state
    /// is partial: an event checked against a state missing most members
    /// would be judged wrongly.
    async fn lock(&self, room: &RoomId) -> Result<tokio::sync::OwnedMutexGuard<()>> {
        let guard = self.lock_any(room).await;
        if self.partial.contains(room)? {
            return Err(Error::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "M_UNKNOWN",
                format!("{room}'s member events are still being fetched; try again shortly"),
            ));
        }
        Ok(guard)
    }

    /// The room's lock, whatever its state.
    async fn lock_any(&self, room: &RoomId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(room.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    fn record(&self, room: &RoomId) -> Result<RoomRecord> {
        self.trees
            .room(room.as_str())?
            .ok_or_else(|| Error::not_found(format!("unknown room {room}")))
    }

    fn rules_of(version: &str) -> Result<RoomVersionRules> {
        let id = RoomVersionId::try_from(version)
            .map_err(|e| Error::internal(format!("stored room version: {e}")))?;
        pdu::rules(&id).map_err(|e| Error::internal(e.0))
    }

    /// A stored event as the pipeline reads it.
    /// Stored events never change, so parsed ones are kept in [`PduCache`]:
    /// auth checks read the same few events (create, power levels, the
    /// sender's membership) for every event of a room.
    pub fn pdu(&self, id: &EventId, rules: &RoomVersionRules) -> Option<Pdu> {
        if let Some(pdu) = self.pdus.get(id) {
            return Some(pdu);
        }
        let object = self.trees.event_json(id.as_str()).ok()??;
        let meta = self.trees.event_meta(id.as_str()).ok()??;
        let mut pdu = Pdu::parse(id.to_owned(), &object, rules).ok()?;
        pdu.rejected = matches!(meta.status, Status::Rejected(_));
        self.pdus.put(pdu.clone());
        Some(pdu)
    }

    /// An event's `auth_events`, from its metadata where recorded (no
    /// event to parse), else from the event.
    pub fn auth_events_of(
        &self,
        id: &EventId,
        rules: &RoomVersionRules,
    ) -> Option<Vec<OwnedEventId>> {
        match self.trees.event_meta(id.as_str()).ok()? {
            Some(EventMeta {
                auth_events: Some(auth),
                ..
            }) => Some(auth),
            _ => self.pdu(id, rules).map(|pdu| pdu.auth_events),
        }
    }

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

    /// The current state of a room, with its extremities and timeline.
    pub fn view(&self, room: &RoomId) -> Result<RoomView> {
        let record = self.record(room)?;
        let shorts = Shorts::new(&self.trees);
        Ok(RoomView {
            state: shorts.state_of(record.current_state)?,
            version: record.version,
            extremities: self.trees.extremities(room.as_str())?,
            timeline: self.trees.timeline(room.as_str())?,
            partial: self.partial.contains(room)?,
        })
    }

    /// Checks an event against the auth rules with state from `lookup`.
    fn auth_against(
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
    fn auth_against_state(
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
    async fn append(
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
    fn state_before(
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
    fn persist(
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
                let group = shorts.save_change(before_group, &after, short_key, short_event)?;
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
            append
                .also_stored
                .extend(self.redacted_target(room, rules, &pdu, &checked.object)?);
        }
        let json =
            serde_json::to_vec(&checked.object).map_err(|e| Error::internal(e.to_string()))?;
        append.cited = citations(&pdu, &meta.status);
        append.event = Some((pdu.event_id, json, meta));
        shorts.into_append(&mut append);
        self.trees.commit(append)?;
        if let Some(state) = after_state {
            self.groups.put(after_group, Arc::new(state));
        }
        Ok(())
    }

    /// Builds, signs and appends an event from one of our users.
    pub async fn send(
        &self,
        room: &RoomId,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
    ) -> Result<OwnedEventId> {
        self.send_with(room, sender, kind, state_key, content, |_| {})
            .await
    }

    /// [`Self::send`] with a last touch to the event before it is signed
    /// (a top-level `redacts` before room version 11).
    async fn send_with(
        &self,
        room: &RoomId,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
        finish: impl FnOnce(&mut CanonicalJsonObject),
    ) -> Result<OwnedEventId> {
        self.ensure_local(sender)?;
        let mut content = content;
        if kind == "m.room.member"
            && state_key == Some(sender.as_str())
            && content["membership"] == "join"
        {
            self.add_profile(sender, &mut content)?;
            if let Some(authoriser) = self.restricted_join_authoriser(room, sender)? {
                content["join_authorised_via_users_server"] = json!(authoriser);
            }
        }
        let _guard = self.lock(room).await?;
        let record = self.record(room)?;
        let rules = Self::rules_of(&record.version)?;
        let mut object = self.build(room, &record, &rules, sender, kind, state_key, content)?;
        finish(&mut object);
        let checked = self.sign(object, &rules)?;
        let (event_id, _) = self
            .append(room, &record.version, checked, Source::Local, None)
            .await?;
        self.trees.flush().await?;
        self.outbound_ready.notify_one();
        Ok(event_id)
    }

    /// Adds one of our users' display name and avatar to the content of
    /// their join (where clients read names from), unless already set.
    pub fn add_profile(&self, user: &UserId, content: &mut Value) -> Result<()> {
        let Some(record) = self.accounts.user(user)? else {
            return Ok(());
        };
        for (field, value) in [
            ("displayname", record.displayname),
            ("avatar_url", record.avatar_url),
        ] {
            if let (Some(value), Some(content)) = (value, content.as_object_mut()) {
                content.entry(field).or_insert(Value::String(value));
            }
        }
        Ok(())
    }

    /// An unsigned event on top of the room's forward extremities, with
    /// `auth_events` and depth chosen from the current state. The caller
    /// holds the room's lock.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        room: &RoomId,
        record: &RoomRecord,
        rules: &RoomVersionRules,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
    ) -> Result<CanonicalJsonObject> {
        let mut prev: Vec<OwnedEventId> = self.trees.extremities(room.as_str())?;
        prev.sort_by_key(|id| {
            std::cmp::Reverse(
                self.trees
                    .event_meta(id.as_str())
                    .ok()
                    .flatten()
                    .map_or(0, |m| m.depth),
            )
        });
        prev.truncate(MAX_PREV_EVENTS);
        let depth = prev
            .iter()
            .filter_map(|id| self.trees.event_meta(id.as_str()).ok().flatten())
            .map(|m| m.depth)
            .max()
            .unwrap_or(0)
            + 1;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let current = shorts.shared(record.current_state)?;
        let raw_content = serde_json::value::to_raw_value(&content)
            .map_err(|e| Error::bad_json(e.to_string()))?;
        let auth_types = auth_types_for_event(
            &kind.into(),
            sender,
            state_key,
            &raw_content,
            &rules.authorization,
        )
        .map_err(Error::bad_json)?;
        let mut auth = Vec::new();
        for (kind, key) in &auth_types {
            auth.extend(shorts.lookup(&current, kind, key)?);
        }
        let mut object = self.base_event(rules, sender, kind, state_key, content, depth)?;
        object.insert("room_id".into(), room.as_str().into());
        object.insert("prev_events".into(), self.references(&prev, rules)?);
        object.insert("auth_events".into(), self.references(&auth, rules)?);
        Ok(object)
    }

    /// `prev_events` / `auth_events`: bare IDs, or in room versions 1 and
    /// 2 `[id, {"sha256": reference hash}]` pairs, hashed from the stored
    /// events. Spec: rooms/v1 "Event format".
    fn references(
        &self,
        ids: &[OwnedEventId],
        rules: &RoomVersionRules,
    ) -> Result<CanonicalJsonValue> {
        if rules.events_reference_format != EventsReferenceFormatVersion::V1 {
            return Ok(CanonicalJsonValue::Array(
                ids.iter().map(|id| id.as_str().into()).collect(),
            ));
        }
        let mut pairs = Vec::with_capacity(ids.len());
        for id in ids {
            let object = self
                .trees
                .event_json(id.as_str())?
                .ok_or_else(|| Error::internal(format!("{id} is referenced but not stored")))?;
            let hash = ruma::signatures::reference_hash(&object, rules)
                .map_err(|e| Error::internal(e.to_string()))?;
            let hashes = CanonicalJsonObject::from([("sha256".to_owned(), hash.into())]);
            pairs.push(CanonicalJsonValue::Array(vec![
                id.as_str().into(),
                CanonicalJsonValue::Object(hashes),
            ]));
        }
        Ok(CanonicalJsonValue::Array(pairs))
    }

    /// Runs a PDU from another server through every check (signatures and
    /// hashes first, then authorization and soft-failure) and stores the
    /// outcome. Refused PDUs (bad format or signatures) are not stored.
    /// Durable once [`Self::flush`] returns.
    pub async fn receive(
        &self,
        room: &RoomId,
        object: CanonicalJsonObject,
    ) -> Result<(OwnedEventId, Status)> {
        let record = self.record(room)?;
        let version = RoomVersionId::try_from(record.version.as_str())
            .map_err(|e| Error::internal(e.to_string()))?;
        let checked = pdu::check(&self.keys, &version, object)
            .await
            .map_err(|e| Error::forbidden(e.0))?;
        let _guard = self.lock(room).await?;
        self.append(room, &record.version, checked, Source::Remote, None)
            .await
    }

    /// When some prev events of a verified PDU are not in our DAG
    /// (unknown, or known only as outliers): the room's forward
    /// extremities, which a gap fill asks for what lies between.
    pub fn gap_before(&self, verified: &Verified) -> Option<Vec<OwnedEventId>> {
        let checked = verified.checked.as_ref().ok()?;
        let record = self.trees.room(verified.room.as_str()).ok()??;
        let rules = Self::rules_of(&record.version).ok()?;
        let pdu = Pdu::parse(verified.event_id.clone(), &checked.object, &rules).ok()?;
        let missing = pdu.prev_events.iter().any(|prev| {
            self.trees
                .event_meta(prev.as_str())
                .ok()
                .flatten()
                .is_none_or(|m| m.outlier)
        });
        if !missing {
            return None;
        }
        self.trees.extremities(verified.room.as_str()).ok()
    }

    /// The first half of receiving a PDU, safe to run for many PDUs at
    /// once: names its room and ID and checks format, signatures and hashes.
    /// `None` when it is for a room we are not in (dropped, as the spec
    /// says) or cannot be named.
    pub async fn verify_pdu(&self, object: CanonicalJsonObject) -> Option<Verified> {
        let room = match object.get("room_id") {
            Some(CanonicalJsonValue::String(id)) => OwnedRoomId::try_from(id.as_str()).ok()?,
            _ => return None,
        };
        let record = self.trees.room(room.as_str()).ok()??;
        let rules = Self::rules_of(&record.version).ok()?;
        let version = RoomVersionId::try_from(record.version.as_str()).ok()?;
        let event_id = pdu::event_id(&object, &rules).ok()?;
        let checked = pdu::check_as(&self.keys, &version, object, Some(event_id.clone()))
            .await
            .map_err(|e| e.0);
        Some(Verified {
            room,
            event_id,
            checked,
        })
    }

    /// The second half, one room at a time: the server ACL, then
    /// authorization and soft-failure; the outcome is stored (durable once
    /// [`Self::flush`] returns). The result is `Err(reason)` when refused
    /// or rejected.
    /// Spec: server-server-api.md "Transactions", "Server ACLs".
    pub async fn receive_verified(
        &self,
        origin: &ServerName,
        verified: Verified,
    ) -> (OwnedEventId, std::result::Result<(), String>) {
        self.take_verified(origin, verified, None).await
    }

    /// The second half, on the state before the event from its prev
    /// events or, over a gap, from `gap`.
    async fn take_verified(
        &self,
        origin: &ServerName,
        verified: Verified,
        gap: Option<GapState>,
    ) -> (OwnedEventId, std::result::Result<(), String>) {
        let Verified {
            room,
            event_id,
            checked,
        } = verified;
        let outcome = match (self.acl_allows(&room, origin), checked) {
            (Ok(false), _) => Err(format!("the room's server ACL denies {origin}")),
            (Err(e), _) => Err(e.message),
            (Ok(true), Err(refused)) => Err(refused),
            (Ok(true), Ok(checked)) => {
                let appended = match gap {
                    None => self.append_remote(&room, checked).await,
                    Some(gap) => self.append_over_gap(&room, checked, gap).await,
                };
                match appended {
                    Ok(Status::Accepted | Status::SoftFailed(_)) => Ok(()),
                    Ok(Status::Rejected(reason)) => Err(reason),
                    Err(e) => Err(e.message),
                }
            }
        };
        (event_id, outcome)
    }

    /// Both halves, for one PDU.
    pub async fn receive_pdu(
        &self,
        origin: &ServerName,
        object: CanonicalJsonObject,
    ) -> Option<(OwnedEventId, std::result::Result<(), String>)> {
        let verified = self.verify_pdu(object).await?;
        Some(self.receive_verified(origin, verified).await)
    }

    async fn append_remote(&self, room: &RoomId, checked: CheckedPdu) -> Result<Status> {
        let _guard = self.lock(room).await?;
        let record = self.record(room)?;
        self.append(room, &record.version, checked, Source::Remote, None)
            .await
            .map(|(_, status)| status)
    }

    /// The fields every event has; in room versions 1 and 2 also an ID of
    /// ours (`$random:our.name`), which the spec leaves to the creator.
    fn base_event(
        &self,
        rules: &RoomVersionRules,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
        depth: u64,
    ) -> Result<CanonicalJsonObject> {
        let content: CanonicalJsonValue = content
            .try_into()
            .map_err(|e| Error::bad_json(format!("content: {e}")))?;
        let mut object = CanonicalJsonObject::from([
            ("sender".to_owned(), sender.as_str().into()),
            ("origin".to_owned(), sender.server_name().as_str().into()),
            (
                "origin_server_ts".to_owned(),
                CanonicalJsonValue::Integer(Int::try_from(now_ms()).unwrap_or(Int::MAX)),
            ),
            ("type".to_owned(), kind.into()),
            ("content".to_owned(), content),
            (
                "depth".to_owned(),
                CanonicalJsonValue::Integer(Int::try_from(depth).unwrap_or(Int::MAX)),
            ),
        ]);
        if let Some(key) = state_key {
            object.insert("state_key".into(), key.into());
        }
        if rules.event_id_format == EventIdFormatVersion::V1 {
            object.insert("event_id".into(), self.new_event_id());
        }
        Ok(object)
    }

    /// A fresh v1/v2 event ID of ours. The server it names must sign the
    /// event. Spec: server-server-api.md "Validating hashes and signatures".
    fn new_event_id(&self) -> CanonicalJsonValue {
        format!("${}:{}", random_local(), self.server_name).into()
    }

    fn sign(
        &self,
        mut object: CanonicalJsonObject,
        rules: &RoomVersionRules,
    ) -> Result<CheckedPdu> {
        self.keys
            .hash_and_sign_event(&mut object, &rules.redaction)?;
        check_pdu_format(&object, &rules.event_format)
            .map_err(|e| Error::too_large(format!("event: {e}")))?;
        let event_id = pdu::event_id(&object, rules).map_err(|e| Error::internal(e.0))?;
        Ok(CheckedPdu {
            event_id,
            object,
            redacted_for_hash_mismatch: false,
        })
    }

    /// Creates a room on this server: create event, the creator's join,
    /// power levels, invite-only join rules and shared history.
    pub async fn create_room(
        &self,
        creator: &UserId,
        version: Option<RoomVersionId>,
    ) -> Result<OwnedRoomId> {
        self.create_room_with(creator, version, serde_json::Map::new())
            .await
    }

    /// [`Self::create_room`] with extra create event content (a client's
    /// `creation_content`, e.g. `m.federate` or `type`).
    pub async fn create_room_with(
        &self,
        creator: &UserId,
        version: Option<RoomVersionId>,
        creation_content: serde_json::Map<String, Value>,
    ) -> Result<OwnedRoomId> {
        self.ensure_local(creator)?;
        let version = version.unwrap_or_else(|| self.default_version.clone());
        let rules = pdu::rules(&version).map_err(|e| {
            Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_UNSUPPORTED_ROOM_VERSION",
                e.0,
            )
        })?;
        // v11 dropped `creator`: the sender of the create event is the creator.
        let mut content = Value::Object(creation_content);
        content["room_version"] = json!(version.as_str());
        if !rules.authorization.use_room_create_sender {
            content["creator"] = json!(creator.as_str());
        }
        let mut create = self.base_event(&rules, creator, "m.room.create", Some(""), content, 1)?;
        create.insert("prev_events".into(), CanonicalJsonValue::Array(vec![]));
        create.insert("auth_events".into(), CanonicalJsonValue::Array(vec![]));
        let room_id = if rules.room_id_format == RoomIdFormatVersion::V2 {
            // v12: the room ID is the create event's reference hash.
            let id = self.sign(create.clone(), &rules)?.event_id;
            OwnedRoomId::try_from(format!("!{}", &id.as_str()[1..]))
                .map_err(|e| Error::internal(e.to_string()))?
        } else {
            let id = OwnedRoomId::try_from(format!("!{}:{}", random_local(), self.server_name))
                .map_err(|e| Error::internal(e.to_string()))?;
            create.insert("room_id".into(), id.as_str().into());
            id
        };
        {
            let _guard = self.lock_any(&room_id).await;
            let checked = self.sign(create, &rules)?;
            self.append(&room_id, version.as_str(), checked, Source::Local, None)
                .await?;
            self.trees.flush().await?;
        }
        let mut users = serde_json::Map::new();
        if !rules.authorization.explicitly_privilege_room_creators {
            users.insert(creator.to_string(), json!(100));
        }
        let power = json!({"users": users, "users_default": 0, "events_default": 0, "state_default": 50,
            "ban": 50, "kick": 50, "redact": 50, "invite": 0,
            "events": {"m.room.power_levels": 100, "m.room.history_visibility": 100, "m.room.tombstone": 100}});
        self.send(
            &room_id,
            creator,
            "m.room.member",
            Some(creator.as_str()),
            json!({"membership": "join"}),
        )
        .await?;
        self.send(&room_id, creator, "m.room.power_levels", Some(""), power)
            .await?;
        self.send(
            &room_id,
            creator,
            "m.room.join_rules",
            Some(""),
            json!({"join_rule": "invite"}),
        )
        .await?;
        self.send(
            &room_id,
            creator,
            "m.room.history_visibility",
            Some(""),
            json!({"history_visibility": "shared"}),
        )
        .await?;
        Ok(room_id)
    }
}

/// Step 4 of the receive checks: whether the event's own `auth_events`
/// (read through `fetch`, stored or about to be) allow it.
fn auth_by_own_events(
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

/// The random local part of a room ID (before v12) or event ID (v1, v2).
fn random_local() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(18)
        .map(char::from)
        .collect()
}

/// (auth event, event) for each auth event of a state event that is not
/// rejected: the edges of the auth DAG that state resolution walks up.
/// No accepted event cites a rejected one (auth rules, "rejected auth
/// events"), so no walk from a state's events passes through one, and
/// junk a server sends to be rejected never grows the index.
fn citations(pdu: &Pdu, status: &Status) -> Vec<(OwnedEventId, OwnedEventId)> {
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

#[cfg(test)]
mod tests;
