//! PDUs from other servers' transactions, with gaps filled: when a PDU's
//! prev events are not in our DAG, ask its origin for the missing events
//! (`get_missing_events`, bounded) and take them in oldest first.
//! Spec: server-server-api.md "Backfilling and retrieving missing events".

use std::sync::Arc;

use futures_util::future::join_all;
use http::Method;
use ruma::{CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, ServerName};
use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinHandle;

use super::service::{RoomService, Verified};
use crate::{federation::requester::Requester, http_util::percent_encode};

/// A PDU's signature check, running on its own task.
type Check = JoinHandle<Option<Verified>>;

/// Missing events asked for per gap.
const GAP_LIMIT: usize = 20;

pub struct IngestService {
    rooms: Arc<RoomService>,
    requester: Arc<Requester>,
}

#[derive(Deserialize)]
struct MissingEvents {
    events: Vec<CanonicalJsonObject>,
}

impl IngestService {
    pub fn new(rooms: Arc<RoomService>, requester: Arc<Requester>) -> Self {
        Self { rooms, requester }
    }

    /// The PDUs of one transaction: signatures checked for all of them at
    /// once (spawned, on every core), while each room takes its PDUs in
    /// the order sent as soon as each is verified, rooms concurrently,
    /// gaps filled first.
    pub async fn receive_transaction(
        &self,
        origin: &ServerName,
        pdus: Vec<CanonicalJsonObject>,
    ) -> Vec<(OwnedEventId, Result<(), String>)> {
        // Grouped by the room the PDU names; verify_pdu checks that name.
        let mut by_room: Vec<(Option<String>, Vec<Check>)> = Vec::new();
        for pdu in pdus {
            let room = match pdu.get("room_id") {
                Some(CanonicalJsonValue::String(id)) => Some(id.clone()),
                _ => None,
            };
            let rooms = self.rooms.clone();
            let check = tokio::spawn(async move { rooms.verify_pdu(pdu).await });
            match by_room.iter_mut().find(|(r, _)| *r == room) {
                Some((_, checks)) => checks.push(check),
                None => by_room.push((room, vec![check])),
            }
        }
        let rooms = by_room.into_iter().map(|(_, checks)| async move {
            let mut results = Vec::new();
            for check in checks {
                if let Ok(Some(verified)) = check.await {
                    results.push(self.receive(origin, verified).await);
                }
            }
            results
        });
        join_all(rooms).await.into_iter().flatten().collect()
    }

    async fn receive(
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
        }
        self.rooms.receive_verified(origin, verified).await
    }

    /// Best effort: what cannot be fetched leaves the PDU to fail with
    /// "refers to unknown event".
    async fn fill_gap(
        &self,
        origin: &ServerName,
        room: &ruma::RoomId,
        earliest: Vec<OwnedEventId>,
        latest: OwnedEventId,
    ) {
        let uri = format!(
            "/_matrix/federation/v1/get_missing_events/{}",
            percent_encode(room.as_str())
        );
        let body = json!({
            "earliest_events": earliest,
            "latest_events": [latest],
            "limit": GAP_LIMIT,
            "min_depth": 0,
        });
        let answer: MissingEvents = match self
            .requester
            .call(origin, Method::POST, &uri, Some(&body))
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                tracing::info!(%room, %origin, error = %e, "get_missing_events failed");
                return;
            }
        };
        let mut events = answer.events;
        events.truncate(GAP_LIMIT);
        events.sort_by_key(|e| match e.get("depth") {
            Some(CanonicalJsonValue::Integer(d)) => i64::from(*d),
            _ => 0,
        });
        for event in events {
            if let Some((id, Err(reason))) = self.rooms.receive_pdu(origin, event).await {
                tracing::info!(%room, %id, %reason, "missing event not taken in");
            }
        }
    }
}
