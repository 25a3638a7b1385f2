//! A room's history for clients: its timeline, then what the room's other
//! servers hold from before we joined, fetched with `/backfill` when a
//! client pages past what is stored. Everything fetched goes through the
//! checks of [`RoomService::import_history`].
//! Spec: server-server-api.md "Backfilling and retrieving missing events";
//! client-server-api "Getting events for a room".

mod stored;

pub use stored::Page;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use ruma::{OwnedEventId, OwnedRoomId, RoomId, ServerName};

use crate::{
    error::Result,
    peers::Peers,
    rooms::{event::Checked, RoomService},
};

/// Most events asked of a server in one `/backfill`.
const MAX_BACKFILL: usize = 100;
/// Servers tried in turn for one page.
const MAX_SERVERS: usize = 3;
/// Rounds of fetching auth events the backfilled events name but we lack,
/// and how many per round.
const AUTH_ROUNDS: usize = 3;
const MAX_AUTH_FETCH: usize = 50;

pub struct HistoryService {
    rooms: Arc<RoomService>,
    peers: Arc<Peers>,
    /// Where fetching found nothing older: not asked again while the
    /// room's history still starts at the same event.
    exhausted: Mutex<HashMap<OwnedRoomId, OwnedEventId>>,
}

impl HistoryService {
    pub fn new(rooms: Arc<RoomService>, peers: Arc<Peers>) -> Self {
        Self {
            rooms,
            peers,
            exhausted: Mutex::default(),
        }
    }

    /// Up to `limit` events from `from` back in time (each with where the
    /// next page starts); fetches older history from other servers when
    /// what is stored runs out before `limit` (and no `to` bound is set).
    pub async fn page_back(
        &self,
        room: &RoomId,
        from: Page,
        to: Option<Page>,
        limit: usize,
    ) -> Result<Vec<(Page, OwnedEventId)>> {
        let mut events = self.rooms.page(room, from, to, limit, true)?;
        if events.len() >= limit || to.is_some() {
            return Ok(events);
        }
        if self.fetch_older(room, limit - events.len()).await > 0 {
            let next = events.last().map_or(from, |(page, _)| next_back(*page));
            let more = self
                .rooms
                .page(room, next, None, limit - events.len(), true)?;
            events.extend(more);
        }
        Ok(events)
    }

    /// Fetches up to about `want` events older than the room's known
    /// history from the room's servers; how many were added.
    pub(in crate::rooms) async fn fetch_older(&self, room: &RoomId, want: usize) -> usize {
        let Ok(Some(start)) = self.rooms.history_start(room) else {
            return 0;
        };
        if self.is_exhausted(room, &start) || self.is_create(&start) {
            return 0;
        }
        let own = self.rooms.server_name().to_owned();
        let servers: Vec<_> = match self.rooms.joined_servers(room) {
            Ok(servers) => servers.into_iter().filter(|s| *s != own).collect(),
            Err(_) => return 0,
        };
        for server in servers.iter().take(MAX_SERVERS) {
            match self.backfill_from(server, room, &start, want).await {
                Ok(0) => {}
                Ok(added) => return added,
                Err(e) => tracing::info!(%room, %server, error = %e, "backfill failed"),
            }
        }
        self.exhausted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(room.to_owned(), start);
        0
    }

    pub(in crate::rooms) fn is_exhausted(&self, room: &RoomId, start: &OwnedEventId) -> bool {
        self.exhausted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(room)
            == Some(start)
    }

    /// The room's first event: nothing is older.
    pub(in crate::rooms) fn is_create(&self, id: &OwnedEventId) -> bool {
        self.rooms
            .event_object(id)
            .is_ok_and(|e| e.get("type").and_then(|t| t.as_str()) == Some("m.room.create"))
    }

    /// One `/backfill` from `server` before `start`, with the auth events
    /// it names fetched, checked and stored; how many were added.
    pub(in crate::rooms) async fn backfill_from(
        &self,
        server: &ServerName,
        room: &RoomId,
        start: &OwnedEventId,
        want: usize,
    ) -> Result<usize> {
        let mut pdus = self
            .peers
            .backfill(server, room, start, (want + 1).min(MAX_BACKFILL))
            .await?;
        pdus.truncate(MAX_BACKFILL);
        let mut checked = self.rooms.verify_history(room, pdus).await?;
        let history: HashSet<OwnedEventId> = checked.keys().cloned().collect();
        self.fetch_auth_events(server, room, &mut checked).await?;
        self.rooms.import_history(room, &checked, &history).await
    }

    /// Fetches (`/event`) the auth events named but stored nowhere, a few
    /// rounds deep; what cannot be had leaves its dependants out.
    pub(in crate::rooms) async fn fetch_auth_events(
        &self,
        server: &ServerName,
        room: &RoomId,
        checked: &mut Checked,
    ) -> Result<()> {
        for _ in 0..AUTH_ROUNDS {
            let unknown = self.rooms.unknown_auth_events(checked)?;
            if unknown.is_empty() {
                break;
            }
            let mut fetched = Vec::new();
            for id in unknown.iter().take(MAX_AUTH_FETCH) {
                match self.peers.event(server, id).await {
                    Ok(event) => fetched.extend(event),
                    Err(e) => {
                        tracing::info!(%room, event = %id, error = %e, "auth event fetch failed")
                    }
                }
            }
            if fetched.is_empty() {
                break;
            }
            checked.extend(self.rooms.verify_history(room, fetched).await?);
        }
        Ok(())
    }
}

/// Where the page after an event starts, going back.
pub fn next_back(page: Page) -> Page {
    match page {
        Page::Stream(position) => Page::Stream(position.saturating_sub(1)),
        Page::Backfilled(seq) => Page::Backfilled(seq),
    }
}
