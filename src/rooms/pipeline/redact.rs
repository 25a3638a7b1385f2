//! Redactions: an accepted `m.room.redaction` rewrites its target in the
//! room version's redacted form, in the same commit, when the spec allows
//! it (the redacter has the `redact` power level, or shares the target's
//! sender's server, since room version 3). The stored copy keeps the
//! redaction under `unsigned.redacted_because` for clients.
//! Spec: client-server-api "Redactions"; rooms/v3.md "Handling redactions".

use ruma::{
    canonical_json::{redact, RedactedBecause},
    room_version_rules::RoomVersionRules,
    CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, RoomId, UserId,
};
use serde_json::json;

use super::RoomService;
use crate::{
    error::{Error, Result},
    rooms::event::Pdu,
    store::rooms::{relations::Related, Append, Status},
};

impl RoomService {
    /// `sender` (ours) redacts `target` in `room`.
    pub async fn redact(
        &self,
        room: &RoomId,
        sender: &UserId,
        target: &ruma::EventId,
        reason: Option<&str>,
    ) -> Result<OwnedEventId> {
        let (meta, object) = self.event(Some(room), target)?;
        if meta.outlier {
            return Err(Error::not_found(format!("unknown event {target}")));
        }
        // One's own events, or others' with the redact power (as Synapse
        // checks before sending; the auth rules of v3+ rooms leave it to
        // the servers applying the redaction).
        let text = |field: &str| object.get(field).and_then(|v| v.as_str());
        if text("sender") != Some(sender.as_str()) && !self.may_redact_others(room, sender)? {
            return Err(Error::forbidden(
                "redacting others' events needs the room's redact power level",
            ));
        }
        if text("type") == Some("m.room.server_acl") {
            return Err(Error::forbidden("server ACL events cannot be redacted"));
        }
        let mut content = json!({});
        if let Some(reason) = reason {
            content["reason"] = json!(reason);
        }
        let rules = Self::rules_of(&self.record(room)?.version)?;
        if rules.redaction.content_field_redacts {
            content["redacts"] = json!(target);
            return self
                .send(room, sender, "m.room.redaction", None, content)
                .await;
        }
        self.send_with(
            room,
            sender,
            ("m.room.redaction", None, content),
            |object| {
                object.insert("redacts".into(), target.as_str().into());
            },
            |_| Ok(()),
        )
        .await
    }

    /// Rewrites the target of an accepted redaction redacted (stored
    /// with the redaction), and drops its relation to another event, when
    /// the redaction may take effect.
    pub(in crate::rooms) fn redact_target(
        &self,
        room: &RoomId,
        rules: &RoomVersionRules,
        redaction: &Pdu,
        redaction_object: &CanonicalJsonObject,
        append: &mut Append,
    ) -> Result<()> {
        let Some(target) = &redaction.redacts else {
            return Ok(());
        };
        let (Some(meta), Some(object)) = (
            self.trees.event_meta(target.as_str())?,
            self.trees.event_json(target.as_str())?,
        ) else {
            return Ok(());
        };
        if meta.room_id != room || matches!(meta.status, Status::Rejected(_)) {
            return Ok(());
        }
        let target_sender = match object.get("sender") {
            Some(CanonicalJsonValue::String(s)) => {
                <&UserId>::try_from(s.as_str()).ok().map(ToOwned::to_owned)
            }
            _ => None,
        };
        let same_server = target_sender
            .as_ref()
            .is_some_and(|s| s.server_name() == redaction.sender.server_name());
        if !same_server && !self.may_redact_others(room, &redaction.sender)? {
            return Ok(());
        }
        append.unrelated.extend(Related::of(target, &object, &meta));
        let because = RedactedBecause::from_json(redaction_object.clone());
        let redacted = redact(object, &rules.redaction, Some(because))
            .map_err(|e| Error::internal(format!("redacting {target}: {e}")))?;
        let json = serde_json::to_vec(&redacted).map_err(|e| Error::internal(e.to_string()))?;
        append.also_stored.push((target.clone(), json, meta));
        Ok(())
    }

    /// Whether `user`'s power level reaches the room's `redact` level.
    pub(in crate::rooms) fn may_redact_others(&self, room: &RoomId, user: &UserId) -> Result<bool> {
        Ok(self
            .power_levels(room)?
            .user_can_redact_event_of_other(user))
    }
}
