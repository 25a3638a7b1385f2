//! The joining server's half: the room imported from a `send_join`
//! answer (state and auth chain as outliers, see `outliers`), and our
//! join appended on that state.
//! Spec: server-server-api.md "Joining Rooms"; joins-v2.yaml.

use ruma::{
    events::StateEventType, CanonicalJsonObject, EventId, OwnedEventId, OwnedServerName, RoomId,
    RoomVersionId,
};

use crate::{
    error::{Error, Result},
    rooms::{
        checks::{self, CheckedPdu},
        event::Pdu,
        outliers::given_state,
        outliers::of_room,
        pipeline::Source,
        RoomService,
    },
    store::{partial::PartialJoin, rooms::Status},
};

impl RoomService {
    /// Takes in a room we just joined: every event of the resident's
    /// state and auth chain is verified and authorized against its own
    /// auth events (stored as outliers with the outcome), the accepted
    /// state becomes the state before our join, and the join is appended
    /// on it: the room's first timeline event and forward extremity.
    /// `partial` when the resident omitted member events: the join's own
    /// auth events stand in for the members it needs (the resident vouches
    /// for them), and the room is marked partial until
    /// [`Self::complete_partial_state`].
    pub async fn import_join(
        &self,
        room: &RoomId,
        version: &RoomVersionId,
        join: CheckedPdu,
        answer: (Vec<CanonicalJsonObject>, Vec<CanonicalJsonObject>),
        partial: Option<Vec<OwnedServerName>>,
    ) -> Result<OwnedEventId> {
        let rules = checks::rules(version).map_err(|e| Error::invalid_param(e.0))?;
        let (checked, state_ids) = self.verify_all(version, answer.0, answer.1).await?;
        let pdus = of_room(checked, room, &rules);
        let _guard = self.lock_any(room).await;
        let (outcome, outliers) = self.authorize_outliers(room, &rules, &pdus, |_| {
            Some(Status::Rejected(
                "an auth event is missing from the join response".into(),
            ))
        })?;
        let fetch = |id: &EventId| outcome.get(id).cloned();
        let mut room_state = given_state(&state_ids, fetch, "join response")?;
        if let Some(servers) = partial {
            let own = Pdu::parse(join.event_id.clone(), &join.object, &rules)
                .map_err(|e| Error::invalid_param(e.to_string()))?;
            for pdu in own.auth_events.iter().filter_map(|id| fetch(id)) {
                if let (Some(key), false) = (&pdu.state_key, pdu.rejected) {
                    let kind = StateEventType::from(pdu.kind.to_string());
                    room_state
                        .entry((kind, key.clone()))
                        .or_insert(pdu.event_id);
                }
            }
            let marker = PartialJoin {
                join: join.event_id.clone(),
                servers,
            };
            self.partial.put(room, &marker)?;
        }
        let group = self.save_given(&room_state, outliers)?;
        let (event_id, status) = self
            .append(room, version.as_str(), join, Source::Remote, Some(group))
            .await?;
        self.trees.flush().await?;
        match status {
            Status::Accepted => Ok(event_id),
            Status::Rejected(reason) | Status::SoftFailed(reason) => {
                self.partial.remove(room)?;
                Err(Error::forbidden(format!(
                    "our join is not allowed by the room's state: {reason}"
                )))
            }
        }
    }
}
