//! Other servers' events: signatures and hashes checked (steps 1-3, in
//! `checks`), then appended when their prev events are held; the gap
//! before them is filled by `ingest`.
//! Spec: server-server-api.md "Checks performed on receipt of a PDU".

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, OwnedRoomId, RoomId, RoomVersionId,
    ServerName,
};

use std::collections::HashSet;

use crate::rooms::{
    checks::{self, CheckedPdu},
    event::Checked,
    event::Pdu,
};
use crate::{
    error::{Error, Result},
    store::rooms::Status,
};

use super::{RoomService, Source, Verified};

impl RoomService {
    /// Runs a PDU from another server through every check (signatures and
    /// hashes first, then authorization and soft-failure) and stores the
    /// outcome. Refused PDUs (bad format or signatures) are not stored.
    /// Durable once [`Self::flush`] returns.
    pub async fn receive(
        &self,
        room: &RoomId,
        object: CanonicalJsonObject,
    ) -> Result<(OwnedEventId, Status)> {
        let record = self.record(room)?;
        let version = RoomVersionId::try_from(record.version.as_str())
            .map_err(|e| Error::internal(e.to_string()))?;
        let checked = checks::check(&self.keys, &version, object)
            .await
            .map_err(|e| Error::forbidden(e.0))?;
        let _guard = self.lock(room).await?;
        self.append(room, &record.version, checked, Source::Remote, None)
            .await
    }

    /// When some prev events of a verified PDU are not in our DAG
    /// (unknown, or known only as outliers): the room's forward
    /// extremities, which a gap fill asks for what lies between.
    pub fn gap_before(&self, verified: &Verified) -> Option<Vec<OwnedEventId>> {
        let checked = verified.checked.as_ref().ok()?;
        let record = self.trees.room(verified.room.as_str()).ok()??;
        let rules = Self::rules_of(&record.version).ok()?;
        let pdu = Pdu::parse(verified.event_id.clone(), &checked.object, &rules).ok()?;
        let missing = pdu.prev_events.iter().any(|prev| {
            self.trees
                .event_meta(prev.as_str())
                .ok()
                .flatten()
                .is_none_or(|m| m.outlier)
        });
        if !missing {
            return None;
        }
        self.trees.extremities(verified.room.as_str()).ok()
    }

    /// The first half of receiving a PDU, safe to run for many PDUs at
    /// once: names its room and ID and checks format, signatures and hashes.
    /// `None` when it is for a room we are not in (dropped, as the spec
    /// says) or cannot be named.
    pub async fn verify_pdu(&self, object: CanonicalJsonObject) -> Option<Verified> {
        let room = match object.get("room_id") {
            Some(CanonicalJsonValue::String(id)) => OwnedRoomId::try_from(id.as_str()).ok()?,
            _ => return None,
        };
        let record = self.trees.room(room.as_str()).ok()??;
        let rules = Self::rules_of(&record.version).ok()?;
        let version = RoomVersionId::try_from(record.version.as_str()).ok()?;
        let event_id = checks::event_id(&object, &rules).ok()?;
        let checked = checks::check_as(&self.keys, &version, object, Some(event_id.clone()))
            .await
            .map_err(|e| e.0);
        Some(Verified {
            room,
            event_id,
            checked,
        })
    }

    /// The second half, one room at a time: the server ACL, then
    /// authorization and soft-failure; the outcome is stored (durable once
    /// [`Self::flush`] returns). The result is `Err(reason)` when refused
    /// or rejected.
    /// Spec: server-server-api.md "Transactions", "Server ACLs".
    pub async fn receive_verified(
        &self,
        origin: &ServerName,
        verified: Verified,
    ) -> (OwnedEventId, std::result::Result<(), String>) {
        self.take_verified(origin, verified, None).await
    }

    /// The second half, on the state before the event from its prev
    /// events or, over a gap, from `gap`.
    pub(in crate::rooms) async fn take_verified(
        &self,
        origin: &ServerName,
        verified: Verified,
        gap: Option<GapState>,
    ) -> (OwnedEventId, std::result::Result<(), String>) {
        let Verified {
            room,
            event_id,
            checked,
        } = verified;
        let outcome = match (self.acl_allows(&room, origin), checked) {
            (Ok(false), _) => Err(format!("the room's server ACL denies {origin}")),
            (Err(e), _) => Err(e.message),
            (Ok(true), Err(refused)) => Err(refused),
            (Ok(true), Ok(checked)) => {
                let appended = match gap {
                    None => self.append_remote(&room, checked).await,
                    Some(gap) => self.append_over_gap(&room, checked, gap).await,
                };
                match appended {
                    Ok(Status::Accepted | Status::SoftFailed(_)) => Ok(()),
                    Ok(Status::Rejected(reason)) => Err(reason),
                    Err(e) => Err(e.message),
                }
            }
        };
        (event_id, outcome)
    }

    /// Both halves, for one PDU.
    pub async fn receive_pdu(
        &self,
        origin: &ServerName,
        object: CanonicalJsonObject,
    ) -> Option<(OwnedEventId, std::result::Result<(), String>)> {
        let verified = self.verify_pdu(object).await?;
        Some(self.receive_verified(origin, verified).await)
    }

    pub(in crate::rooms) async fn append_remote(
        &self,
        room: &RoomId,
        checked: CheckedPdu,
    ) -> Result<Status> {
        let _guard = self.lock(room).await?;
        let record = self.record(room)?;
        self.append(room, &record.version, checked, Source::Remote, None)
            .await
            .map(|(_, status)| status)
    }
}

/// The state before an event as another server gave it: the IDs of its
/// state events, and every event fetched for it, checked.
pub struct GapState {
    pub state_ids: HashSet<OwnedEventId>,
    pub fetched: Checked,
}
