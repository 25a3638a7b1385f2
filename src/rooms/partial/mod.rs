//! Completing a join made with partial state: the full state before our
//! join replaces the partial one, as the state around the join and the
//! room's current state. The room takes no other event while it is
//! partial, so nothing was built on the partial state but the join.
//! Spec: server-server-api.md "Joining Rooms" (`omit_members`).

pub mod fetch;

use std::future::Future;

use ruma::{events::StateEventType, CanonicalJsonObject, RoomId, RoomVersionId};

use crate::rooms::{
    outliers::{given_state, of_room},
    shorts::Shorts,
    RoomService,
};
use crate::{
    error::{Error, Result},
    rooms::checks,
    store::{
        partial::PartialJoin,
        rooms::{RoomRecord, Status},
    },
};

/// A `/state` answer: the state before an event and its auth chain.
pub type StateAnswer = (Vec<CanonicalJsonObject>, Vec<CanonicalJsonObject>);

/// A room's lock held for completing its partial join.
pub struct CompletionLock(tokio::sync::OwnedMutexGuard<()>);

impl RoomService {
    /// The partial join of `room` still to complete, if any.
    pub fn partial_join(&self, room: &RoomId) -> Result<Option<PartialJoin>> {
        Ok(self.partial.get(room)?)
    }

    /// The stream position at which `room`'s partial state was replaced
    /// by its full state (0 if it never was).
    pub fn state_completed_at(&self, room: &RoomId) -> Result<u64> {
        Ok(self.partial.completed_at(room)?)
    }

    /// Rooms whose partial joins are still to complete.
    pub fn partial_rooms(&self) -> Result<Vec<ruma::OwnedRoomId>> {
        Ok(self.partial.rooms()?)
    }

    /// The room's lock, taken before a partial join returns and handed to
    /// the first [`Self::complete_partial_state`], so that the events the
    /// joining user sends next wait for the full state instead of being
    /// refused because the fetch had not started yet.
    pub async fn hold_for_completion(&self, room: &RoomId) -> CompletionLock {
        CompletionLock(self.lock_any(room).await)
    }

    /// Fetches (with `fetch`) and stores the full state of a room joined
    /// with partial state. The room stays locked throughout (from `held`
    /// on, if given), so events arriving meanwhile wait for the full state
    /// rather than being refused.
    pub async fn complete_partial_state<F, Fut>(
        &self,
        room: &RoomId,
        held: Option<CompletionLock>,
        fetch: F,
    ) -> Result<()>
    where
        F: FnOnce(PartialJoin) -> Fut,
        Fut: Future<Output = Result<StateAnswer>>,
    {
        let _guard = match held {
            Some(CompletionLock(guard)) => guard,
            None => self.lock_any(room).await,
        };
        let Some(partial) = self.partial.get(room)? else {
            return Ok(());
        };
        let Some(mut meta) = self.trees.event_meta(partial.join.as_str())? else {
            // Killed between marking the room and storing the join.
            self.partial.remove(room)?;
            return Ok(());
        };
        let record = self.record(room)?;
        if record.current_state != meta.state_after {
            return Err(Error::internal(format!(
                "{room} changed after a partial join; its full state cannot replace it"
            )));
        }
        let join = partial.join.clone();
        let (state, auth_chain) = fetch(partial).await?;
        let version = RoomVersionId::try_from(record.version.as_str())
            .map_err(|e| Error::internal(e.to_string()))?;
        let rules = checks::rules(&version).map_err(|e| Error::internal(e.0))?;
        let (checked, state_ids) = self.verify_all(&version, state, auth_chain).await?;
        let pdus = of_room(checked, room, &rules);
        let (outcome, mut outliers) = self.authorize_outliers(room, &rules, &pdus, |_| {
            Some(Status::Rejected(
                "an auth event is missing from the state answer".into(),
            ))
        })?;
        let fetch = |id: &ruma::EventId| outcome.get(id).cloned();
        let before = given_state(&state_ids, fetch, "state answer")?;
        let own = self
            .pdu(&join, &rules)
            .ok_or_else(|| Error::internal(format!("our join {join} is unreadable")))?;
        let key = (
            StateEventType::RoomMember,
            own.state_key.unwrap_or_default(),
        );
        let mut after = before.clone();
        after.insert(key, join.clone());
        let mut shorts = Shorts::cached(&self.trees, &self.groups);
        meta.state_before = shorts.save(None, &before)?;
        meta.state_after = shorts.save(Some(meta.state_before), &after)?;
        let json = self
            .trees
            .event_bytes(join.as_str())?
            .ok_or_else(|| Error::internal(format!("our join {join} is unreadable")))?;
        let current = RoomRecord {
            version: record.version,
            current_state: meta.state_after,
        };
        outliers.also_stored.push((join, json, meta));
        outliers.room = Some((room.to_owned(), current));
        shorts.into_append(&mut outliers);
        self.trees.commit(outliers)?;
        // The state first: a crash in between leaves the room marked and
        // fetched again, never unmarked with its state missing.
        self.trees.flush().await?;
        // At a new stream position, so that syncing clients wake and are
        // given the room's whole state.
        self.trees.advance_with(|position| {
            self.index_touched(room, position);
            self.partial.complete(room, position)
        })?;
        self.trees.flush().await?;
        tracing::info!(%room, state = after.len(), "full state of a partial join stored");
        Ok(())
    }
}
