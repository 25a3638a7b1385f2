//! PDUs from other servers' transactions, with gaps filled: when a PDU's
//! prev events are not in our DAG, ask its origin for the missing events
//! (`get_missing_events`, bounded) and take them in oldest first.
//! Spec: server-server-api.md "Backfilling and retrieving missing events".

use std::sync::Arc;

use http::Method;
use ruma::{CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, ServerName};
use serde::Deserialize;
use serde_json::json;

use super::service::RoomService;
use crate::{federation::requester::Requester, http_util::percent_encode};

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

    /// Receives one PDU from `origin`; see [`RoomService::receive_pdu`].
    pub async fn receive(
        &self,
        origin: &ServerName,
        object: CanonicalJsonObject,
    ) -> Option<(OwnedEventId, Result<(), String>)> {
        if let Some((room, _, extremities)) = self.rooms.missing_prevs(&object) {
            let latest = self.rooms.event_id_of(&room, &object);
            if let Some(latest) = latest {
                self.fill_gap(origin, &room, extremities, latest).await;
            }
        }
        self.rooms.receive_pdu(origin, object).await
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
