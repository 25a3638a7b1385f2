//! PDUs from other servers' transactions, with gaps filled: when a PDU's
//! prev events are not in our DAG, ask its origin for the missing events
//! (`get_missing_events`, bounded) and take them in oldest first. A gap
//! that is still open after that is bridged with the state before the
//! event, fetched from its origin (`/state_ids`, then `/event` or `/state`
//! for what we lack), so the event still joins the timeline on the right
//! state and the missing ancestors are kept as outliers.
//! Spec: server-server-api.md "Backfilling and retrieving missing events",
//! "Retrieving events".

mod gap;

use std::sync::Arc;

use futures_util::{future::join_all, stream, StreamExt};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, OwnedRoomId, ServerName};
use tokio::task::JoinHandle;

use crate::{
    error::{Error, Result},
    peers::Peers,
    rooms::{
        pipeline::{GapState, Verified},
        RoomService,
    },
};

/// Missing events asked for per gap.
const GAP_LIMIT: usize = 20;
/// Events we lack at a gap fetched one by one (`/event`); beyond this,
/// `/state` brings the whole state and auth chain at once.
const MAX_EVENT_FETCHES: usize = 50;
/// `/event` requests in flight at once.
const FETCH_CONCURRENCY: usize = 8;
/// Most state and auth chain IDs taken from a `/state_ids` answer.
const MAX_STATE_IDS: usize = 200_000;

pub struct IngestService {
    rooms: Arc<RoomService>,
    peers: Arc<Peers>,
}

impl IngestService {
    pub fn new(rooms: Arc<RoomService>, peers: Arc<Peers>) -> Self {
        Self { rooms, peers }
    }

    /// Signatures and hashes of a transaction's PDUs, checked all at once
    /// on every core; PDUs for rooms we are not in are left out.
    pub async fn verify_all(&self, pdus: Vec<CanonicalJsonObject>) -> Vec<Verified> {
        let checks: Vec<JoinHandle<Option<Verified>>> = pdus
            .into_iter()
            .map(|pdu| {
                let rooms = self.rooms.clone();
                tokio::spawn(async move { rooms.verify_pdu(pdu).await })
            })
            .collect();
        join_all(checks)
            .await
            .into_iter()
            .filter_map(|check| check.ok().flatten())
            .collect()
    }

    /// Verified PDUs taken in: each room takes its PDUs in the order sent,
    /// gaps filled first, rooms concurrently.
    pub async fn take_in(
        &self,
        origin: &ServerName,
        verified: Vec<Verified>,
    ) -> Vec<(OwnedEventId, Result<(), String>)> {
        let mut by_room: Vec<(OwnedRoomId, Vec<Verified>)> = Vec::new();
        for pdu in verified {
            match by_room.iter_mut().find(|(room, _)| *room == pdu.room) {
                Some((_, pdus)) => pdus.push(pdu),
                None => by_room.push((pdu.room.clone(), vec![pdu])),
            }
        }
        let rooms = by_room.into_iter().map(|(_, pdus)| async move {
            let mut results = Vec::new();
            for pdu in pdus {
                results.push(self.receive(origin, pdu).await);
            }
            results
        });
        join_all(rooms).await.into_iter().flatten().collect()
    }

    pub(in crate::rooms) async fn receive(
        &self,
        origin: &ServerName,
        verified: Verified,
    ) -> (OwnedEventId, Result<(), String>) {
        if let Some(extremities) = self.rooms.gap_before(&verified) {
            self.fill_gap(
                origin,
                &verified.room,
                extremities,
                verified.event_id.clone(),
            )
            .await;
            if self.rooms.gap_before(&verified).is_some() {
                return self.receive_over_gap(origin, verified).await;
            }
        }
        self.rooms.receive_verified(origin, verified).await
    }

    /// Best effort: the oldest fetched event whose own prev events are
    /// still missing is taken in over the gap; what fails is left out.
    pub(in crate::rooms) async fn fill_gap(
        &self,
        origin: &ServerName,
        room: &ruma::RoomId,
        earliest: Vec<OwnedEventId>,
        latest: OwnedEventId,
    ) {
        let answer = self
            .peers
            .get_missing_events(origin, room, &earliest, &latest, GAP_LIMIT)
            .await;
        let mut events = match answer {
            Ok(answer) => answer,
            Err(e) => {
                tracing::info!(%room, %origin, error = %e, "get_missing_events failed");
                return;
            }
        };
        events.truncate(GAP_LIMIT);
        events.sort_by_key(|e| match e.get("depth") {
            Some(CanonicalJsonValue::Integer(d)) => i64::from(*d),
            _ => 0,
        });
        let mut bridged = false;
        for event in events {
            let Some(verified) = self.rooms.verify_pdu(event).await else {
                continue;
            };
            let (id, taken) = if !bridged && self.rooms.gap_before(&verified).is_some() {
                bridged = true;
                self.receive_over_gap(origin, verified).await
            } else {
                self.rooms.receive_verified(origin, verified).await
            };
            if let Err(reason) = taken {
                tracing::info!(%room, %id, %reason, "missing event not taken in");
            }
        }
    }

    pub(in crate::rooms) async fn receive_over_gap(
        &self,
        origin: &ServerName,
        verified: Verified,
    ) -> (OwnedEventId, std::result::Result<(), String>) {
        match self.state_before(origin, &verified).await {
            Ok(gap) => self.rooms.receive_over_gap(origin, verified, gap).await,
            Err(e) => (
                verified.event_id,
                Err(format!("cannot fetch the state before it: {}", e.message)),
            ),
        }
    }

    /// The state before a verified event, from `origin`, with every event
    /// we lack for it (state, auth chain, its prev and auth events) fetched
    /// and checked.
    pub(in crate::rooms) async fn state_before(
        &self,
        origin: &ServerName,
        verified: &Verified,
    ) -> Result<GapState> {
        let (room, at) = (&verified.room, &verified.event_id);
        let ids = self.peers.state_ids(origin, room, at).await?;
        if ids.pdu_ids.len() + ids.auth_chain_ids.len() > MAX_STATE_IDS {
            return Err(Error::remote("the state at the gap is too large"));
        }
        let mut named = ids.auth_chain_ids;
        named.extend(ids.pdu_ids.iter().cloned());
        let unknown = self.rooms.unknown_for(verified, &named)?;
        let events = if unknown.len() > MAX_EVENT_FETCHES {
            let state = self.peers.state(origin, room, at).await?;
            // The event's prev events are not part of the state before it.
            let named: std::collections::HashSet<_> = named.iter().collect();
            let others: Vec<_> = unknown
                .into_iter()
                .filter(|id| !named.contains(id))
                .collect();
            let mut events = self.fetch_events(origin, &others).await;
            events.extend(state.pdus.into_iter().chain(state.auth_chain));
            events
        } else {
            self.fetch_events(origin, &unknown).await
        };
        let fetched = self.rooms.verify_history(&verified.room, events).await?;
        Ok(GapState {
            state_ids: ids.pdu_ids.into_iter().collect(),
            fetched,
        })
    }

    /// `/event` for each of `ids`, a few at a time; failures are left out.
    pub(in crate::rooms) async fn fetch_events(
        &self,
        origin: &ServerName,
        ids: &[OwnedEventId],
    ) -> Vec<CanonicalJsonObject> {
        // Owned: the futures must not borrow across the stream (Send bounds).
        let (peers, origin) = (self.peers.clone(), origin.to_owned());
        stream::iter(ids.to_vec())
            .map(move |id| {
                let (peers, origin) = (peers.clone(), origin.clone());
                async move {
                    match peers.event(&origin, &id).await {
                        Ok(event) => event,
                        Err(e) => {
                            tracing::info!(event = %id, error = %e, "event fetch failed");
                            None
                        }
                    }
                }
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .filter_map(|event| async move { event })
            .collect()
            .await
    }
}
