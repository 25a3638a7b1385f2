//! Reading a room's events from a server that holds them.
//! Spec: server-server-api.md "Retrieving events", "Backfilling and
//! retrieving missing events"; events.yaml, backfill.yaml.

use http::Method;
use ruma::{CanonicalJsonObject, EventId, OwnedEventId, RoomId, ServerName};
use serde::Deserialize;
use serde_json::json;

use super::Peers;
use crate::error::Result;
use crate::http_util::percent_encode;

/// The answer of `/event` and `/backfill`.
#[derive(Deserialize)]
struct Pdus {
    pdus: Vec<CanonicalJsonObject>,
}

#[derive(Deserialize)]
struct MissingEvents {
    events: Vec<CanonicalJsonObject>,
}

/// The answer of `/state_ids`: the state at an event, and its auth chain.
#[derive(Deserialize)]
pub struct StateIds {
    pub pdu_ids: Vec<OwnedEventId>,
    pub auth_chain_ids: Vec<OwnedEventId>,
}

/// The answer of `/state`: the state at an event, and its auth chain.
#[derive(Deserialize)]
pub struct State {
    pub pdus: Vec<CanonicalJsonObject>,
    pub auth_chain: Vec<CanonicalJsonObject>,
}

impl Peers {
    /// `GET /v1/event/{eventId}`: the event, if the server gave one.
    pub async fn event(
        &self,
        server: &ServerName,
        id: &EventId,
    ) -> Result<Option<CanonicalJsonObject>> {
        let uri = format!(
            "/_matrix/federation/v1/event/{}",
            percent_encode(id.as_str())
        );
        let answer: Pdus = self.call(server, Method::GET, &uri, None).await?;
        Ok(answer.pdus.into_iter().next())
    }

    /// `GET /v1/backfill/{roomId}`: up to `limit` events before `from`.
    pub async fn backfill(
        &self,
        server: &ServerName,
        room: &RoomId,
        from: &EventId,
        limit: usize,
    ) -> Result<Vec<CanonicalJsonObject>> {
        let uri = format!(
            "/_matrix/federation/v1/backfill/{}?v={}&limit={limit}",
            percent_encode(room.as_str()),
            percent_encode(from.as_str()),
        );
        let answer: Pdus = self.call(server, Method::GET, &uri, None).await?;
        Ok(answer.pdus)
    }

    /// `POST /v1/get_missing_events/{roomId}`: events between what we
    /// hold (`earliest`) and `latest`, at most `limit`.
    pub async fn get_missing_events(
        &self,
        server: &ServerName,
        room: &RoomId,
        earliest: &[OwnedEventId],
        latest: &EventId,
        limit: usize,
    ) -> Result<Vec<CanonicalJsonObject>> {
        let uri = format!(
            "/_matrix/federation/v1/get_missing_events/{}",
            percent_encode(room.as_str())
        );
        let body = json!({
            "earliest_events": earliest,
            "latest_events": [latest],
            "limit": limit,
            "min_depth": 0,
        });
        let answer: MissingEvents = self.call(server, Method::POST, &uri, Some(&body)).await?;
        Ok(answer.events)
    }

    /// `GET /v1/state_ids/{roomId}?event_id=`: the state before `at`.
    pub async fn state_ids(
        &self,
        server: &ServerName,
        room: &RoomId,
        at: &EventId,
    ) -> Result<StateIds> {
        let uri = format!(
            "/_matrix/federation/v1/state_ids/{}?event_id={}",
            percent_encode(room.as_str()),
            percent_encode(at.as_str())
        );
        self.call(server, Method::GET, &uri, None).await
    }

    /// `GET /v1/state/{roomId}?event_id=`: the state before `at`, whole.
    pub async fn state(&self, server: &ServerName, room: &RoomId, at: &EventId) -> Result<State> {
        let uri = format!(
            "/_matrix/federation/v1/state/{}?event_id={}",
            percent_encode(room.as_str()),
            percent_encode(at.as_str())
        );
        self.call(server, Method::GET, &uri, None).await
    }
}
