//! The event pipeline: every event, ours or another server's, goes through
//! the same checks before it is stored, and each room is processed one
//! event at a time while rooms proceed concurrently. `RoomService` is the
//! rooms' one handle on the store; the features (join, membership,
//! history, inbound, partial state, reads) add their methods to it from
//! their own folders.
//! Spec: server-server-api.md "Checks performed on receipt of a PDU"
//! (steps 4-6 here; 1-3 in `pdu`), "Soft failure"; rooms/v* auth rules.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use ruma::{
    events::TimelineEventType, room_version_rules::RoomVersionRules, state_res::StateMap, EventId,
    OwnedEventId, OwnedRoomId, OwnedServerName, RoomId, RoomVersionId, ServerName, UserId,
};

use super::{
    checks::{self, CheckedPdu},
    event::Pdu,
    servers::JoinedServers,
    shorts::{GroupCache, PduCache, Shorts},
};
use crate::{
    error::{Error, Result},
    keys::KeyService,
    store::{
        partial::PartialTree,
        pending::PendingTree,
        rooms::{EventMeta, RoomRecord, RoomTrees, ShortState, Status},
        Store,
    },
};

mod append;
mod local;
mod receive;

pub use receive::GapState;
mod redact;

pub(in crate::rooms) use append::{auth_by_own_events, citations};

pub struct RoomService {
    pub(in crate::rooms) server_name: OwnedServerName,
    pub(in crate::rooms) default_version: RoomVersionId,
    pub(in crate::rooms) trees: RoomTrees,
    pub(in crate::rooms) pending: PendingTree,
    /// Rooms joined with partial state, until their member events are in.
    pub(in crate::rooms) partial: PartialTree,
    pub(in crate::rooms) backfilled: crate::store::backfill::BackfillTree,
    /// Our users' profiles, copied into their join events.
    pub(in crate::rooms) accounts: crate::store::accounts::AccountTrees,
    pub(in crate::rooms) keys: Arc<KeyService>,
    pub(in crate::rooms) locks: Mutex<HashMap<OwnedRoomId, Arc<tokio::sync::Mutex<()>>>>,
    pub(in crate::rooms) groups: GroupCache,
    pub(in crate::rooms) pdus: PduCache,
    pub(in crate::rooms) servers: JoinedServers,
    /// Our users' parsed push rules.
    pub(in crate::rooms) rulesets: crate::rooms::notify::Rulesets,
    /// Woken whenever an event notified one of our users.
    pub(in crate::rooms) notified_ready: Arc<tokio::sync::Notify>,
    /// Woken whenever an event is queued for other servers.
    pub(in crate::rooms) outbound_ready: Arc<tokio::sync::Notify>,
    /// The application services events may be queued for.
    pub(in crate::rooms) appservices: Arc<crate::config::appservices::Appservices>,
    /// Each application service's sender, woken when something is
    /// queued for it.
    pub(in crate::rooms) appservices_ready: HashMap<Arc<str>, Arc<tokio::sync::Notify>>,
    /// Each user's rooms and each room's latest activity, for syncs.
    pub(in crate::rooms) index: crate::rooms::activity::RoomIndex,
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
            server_name: server_name.clone(),
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
            servers: JoinedServers::new(server_name.clone()),
            rulesets: Default::default(),
            notified_ready: Arc::default(),
            outbound_ready,
            appservices: Arc::default(),
            appservices_ready: HashMap::new(),
            index: Default::default(),
        }
    }

    /// The service, queuing events for these application services.
    pub fn with_appservices(
        mut self,
        appservices: Arc<crate::config::appservices::Appservices>,
    ) -> Self {
        self.appservices_ready = appservices
            .all()
            .iter()
            .map(|a| (a.id.clone(), Arc::default()))
            .collect();
        self.appservices = appservices;
        self
    }

    /// Notified whenever something is queued for the application service `id`.
    pub fn appservice_ready(&self, id: &str) -> Option<Arc<tokio::sync::Notify>> {
        self.appservices_ready.get(id).cloned()
    }

    /// Wakes the senders of these application services.
    pub fn appservices_queued(&self, ids: &[Arc<str>]) {
        for id in ids {
            if let Some(ready) = self.appservices_ready.get(id) {
                ready.notify_one();
            }
        }
    }

    pub fn server_name(&self) -> &ServerName {
        &self.server_name
    }

    /// Makes every event stored so far durable: call before acknowledging.
    pub async fn flush(&self) -> Result<()> {
        Ok(self.trees.flush().await?)
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
    pub(in crate::rooms) fn destinations(
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
    pub(in crate::rooms) async fn lock(
        &self,
        room: &RoomId,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>> {
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
    pub(in crate::rooms) async fn lock_any(
        &self,
        room: &RoomId,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(room.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    pub(in crate::rooms) fn record(&self, room: &RoomId) -> Result<RoomRecord> {
        self.trees
            .room(room.as_str())?
            .ok_or_else(|| Error::not_found(format!("unknown room {room}")))
    }

    pub(in crate::rooms) fn rules_of(version: &str) -> Result<RoomVersionRules> {
        let id = RoomVersionId::try_from(version)
            .map_err(|e| Error::internal(format!("stored room version: {e}")))?;
        checks::rules(&id).map_err(|e| Error::internal(e.0))
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
}

#[cfg(test)]
mod tests;
