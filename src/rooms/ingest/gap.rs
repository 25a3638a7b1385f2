//! Receiving an event across a gap `get_missing_events` could not close:
//! the state before it comes from a server that has it (`/state_ids`,
//! with the events we lacked fetched and checked), is resolved with the
//! states after the prev events we do hold, and the event is appended on
//! it; everything fetched is kept as outliers.
//! Spec: server-server-api.md "Backfilling and retrieving missing events",
//! "Retrieving events"; events.yaml (`/state_ids`, `/state`).

use std::collections::HashSet;

use ruma::{EventId, OwnedEventId, RoomId, ServerName};

use crate::{
    error::{Error, Result},
    rooms::{
        event::Pdu,
        outliers::given_state,
        pipeline::{GapState, Source, Verified},
        shorts::Shorts,
        RoomService,
    },
    store::rooms::Status,
};

impl RoomService {
    /// Of `ids`, with the verified event's prev and auth events, those
    /// stored nowhere: what must be fetched to take it in over a gap.
    pub fn unknown_for(
        &self,
        verified: &Verified,
        ids: &[OwnedEventId],
    ) -> Result<Vec<OwnedEventId>> {
        let pdu = self.parse_verified(verified)?;
        let wanted: HashSet<&OwnedEventId> = ids
            .iter()
            .chain(&pdu.prev_events)
            .chain(&pdu.auth_events)
            .collect();
        let mut unknown = Vec::new();
        for id in wanted {
            if self.trees.event_meta(id.as_str())?.is_none() {
                unknown.push(id.clone());
            }
        }
        Ok(unknown)
    }

    pub(in crate::rooms) fn parse_verified(&self, verified: &Verified) -> Result<Pdu> {
        let checked = verified
            .checked
            .as_ref()
            .map_err(|reason| Error::forbidden(reason.clone()))?;
        let rules = Self::rules_of(&self.record(&verified.room)?.version)?;
        Pdu::parse(verified.event_id.clone(), &checked.object, &rules)
            .map_err(|e| Error::bad_json(e.0))
    }

    /// [`Self::receive_verified`] for an event whose prev events are
    /// missing: the ACL, then the checks against `gap`'s state.
    pub async fn receive_over_gap(
        &self,
        origin: &ServerName,
        verified: Verified,
        gap: GapState,
    ) -> (OwnedEventId, std::result::Result<(), String>) {
        self.take_verified(origin, verified, Some(gap)).await
    }

    /// Stores the fetched events as outliers, builds the state before the
    /// event and appends the event on it. The event's own auth events
    /// must be among what is stored or fetched.
    pub(in crate::rooms) async fn append_over_gap(
        &self,
        room: &RoomId,
        checked: crate::rooms::checks::CheckedPdu,
        gap: GapState,
    ) -> Result<Status> {
        let _guard = self.lock(room).await?;
        let record = self.record(room)?;
        let rules = Self::rules_of(&record.version)?;
        let (outcome, outliers) = self.authorize_outliers(room, &rules, &gap.fetched, |_| None)?;
        let fetch = |id: &EventId| outcome.get(id).cloned().or_else(|| self.pdu(id, &rules));
        let given = given_state(&gap.state_ids, fetch, "gap")?;
        let pdu = Pdu::parse(checked.event_id.clone(), &checked.object, &rules)
            .map_err(|e| Error::bad_json(e.0))?;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        // What the other server says is resolved with what we know: the
        // states after the prev events we hold in the DAG.
        let mut states = vec![given];
        for prev in &pdu.prev_events {
            if let Some(meta) = self.trees.event_meta(prev.as_str())?.filter(|m| !m.outlier) {
                states.push(shorts.state_of(meta.state_after)?);
            }
        }
        let before = match states.as_slice() {
            [one] => one.clone(),
            _ => self.resolve(&rules, &states, |id| outcome.get(id).cloned())?,
        };
        let group = self.save_given(&before, outliers)?;
        let (_, status) = self
            .append(room, &record.version, checked, Source::Remote, Some(group))
            .await?;
        Ok(status)
    }
}
