//! Taking in history fetched with `/backfill`: every event verified
//! (signatures, hashes) and authorized against its own auth events, stored
//! as an outlier with the outcome (history never changes current state),
//! and the accepted ones indexed as the room's history before its
//! timeline. Spec: server-server-api.md "Backfilling and retrieving
//! missing events".

use std::collections::HashSet;

use ruma::{OwnedEventId, RoomId};

use crate::{
    error::Result,
    rooms::{event::Checked, RoomService},
    store::rooms::Status,
};

/// Where a client pages from: the timeline (a stream position) or the
/// history fetched from other servers (a backfill seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Stream(u64),
    Backfilled(u64),
}

impl RoomService {
    /// Stores fetched history (events whose auth events are known nowhere
    /// are left out) and indexes the accepted events among `history` that
    /// are not in the timeline yet, newest first; returns how many.
    pub async fn import_history(
        &self,
        room: &RoomId,
        checked: &Checked,
        history: &HashSet<OwnedEventId>,
    ) -> Result<usize> {
        let rules = Self::rules_of(&self.record(room)?.version)?;
        // History is judged by its own auth events only, never by the
        // room's current state, so a partial-state room can take it too.
        let _guard = self.lock_any(room).await;
        let (_, outliers) = self.authorize_outliers(room, &rules, checked, |_| None)?;
        if !outliers.also_stored.is_empty() {
            self.trees.commit(outliers)?;
            self.trees.flush().await?;
        }
        let mut new = Vec::new();
        for id in history {
            let Some(meta) = self.trees.event_meta(id.as_str())? else {
                continue;
            };
            let in_timeline = meta.stream > 0;
            if meta.status == Status::Accepted && !in_timeline && !self.backfilled.contains(id)? {
                let ts = checked
                    .get(id)
                    .map_or(0, |(pdu, _)| u64::from(pdu.origin_server_ts.get()));
                new.push((meta.depth, ts, id.clone()));
            }
        }
        // Newest first: the index grows towards the past.
        new.sort_by(|a, b| b.cmp(a));
        let ids: Vec<OwnedEventId> = new.into_iter().map(|(_, _, id)| id).collect();
        self.backfilled.append(room, &ids).await?;
        Ok(ids.len())
    }

    /// Where the room's known history starts: the oldest backfilled
    /// event, else the oldest timeline event.
    pub fn history_start(&self, room: &RoomId) -> Result<Option<OwnedEventId>> {
        if let Some((_, id)) = self.backfilled.oldest(room)? {
            return Ok(Some(id));
        }
        Ok(self
            .trees
            .timeline_between(room.as_str(), 0, u64::MAX, 1, false)?
            .into_iter()
            .next()
            .map(|(_, id)| id))
    }

    /// Up to `limit` event IDs from `from` going back (or forward) in
    /// time, the timeline then the backfilled history, with the page after
    /// the last one given; `to` bounds the walk.
    pub fn page(
        &self,
        room: &RoomId,
        from: Page,
        to: Option<Page>,
        limit: usize,
        backwards: bool,
    ) -> Result<Vec<(Page, OwnedEventId)>> {
        let mut events = Vec::new();
        if backwards {
            if let Page::Stream(position) = from {
                let after = match to {
                    Some(Page::Stream(to)) => to,
                    _ => 0,
                };
                let mut found =
                    self.timeline_between(room, after, position.saturating_add(1), limit, true)?;
                found.reverse();
                events.extend(found.into_iter().map(|(p, id)| (Page::Stream(p), id)));
                if after > 0 {
                    return Ok(events);
                }
            }
            let seq = match from {
                Page::Backfilled(seq) => seq,
                Page::Stream(_) => 0,
            };
            let until = match to {
                Some(Page::Backfilled(to)) => to,
                _ => u64::MAX,
            };
            let more = self.backfilled.older(room, seq, limit - events.len())?;
            events.extend(
                more.into_iter()
                    .take_while(|(s, _)| *s < until)
                    .map(|(s, id)| (Page::Backfilled(s), id)),
            );
            return Ok(events);
        }
        if let Page::Backfilled(seq) = from {
            let until = match to {
                Some(Page::Backfilled(to)) => to,
                _ => 0,
            };
            let found = self.backfilled.newer(room, seq, limit)?;
            events.extend(
                found
                    .into_iter()
                    .take_while(|(s, _)| *s > until)
                    .map(|(s, id)| (Page::Backfilled(s), id)),
            );
            if until > 0 || events.len() == limit {
                return Ok(events);
            }
        }
        let after = match from {
            Page::Stream(p) => p,
            Page::Backfilled(_) => 0,
        };
        let before = match to {
            Some(Page::Stream(t)) => t.saturating_add(1),
            _ => u64::MAX,
        };
        let found = self.timeline_between(room, after, before, limit - events.len(), false)?;
        events.extend(found.into_iter().map(|(p, id)| (Page::Stream(p), id)));
        Ok(events)
    }
}
