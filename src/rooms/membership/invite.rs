//! Invites across servers. Inviting: our user's invite is built and
//! checked against the room's current state, co-signed by the invited
//! user's server, then appended. Being invited: another server's invite
//! for one of our users is checked, signed and kept as a pending membership.
//! Spec: server-server-api.md "Inviting to a room"; invites-v2.yaml.

use ruma::{
    events::{StateEventType, TimelineEventType},
    CanonicalJsonObject, CanonicalJsonValue, EventId, RoomId, RoomVersionId, ServerName, UserId,
};
use serde::Deserialize;
use serde_json::Value;

use crate::rooms::{pipeline::Source, shorts::Shorts, RoomService};
use crate::{
    error::{Error, Result},
    rooms::{
        checks::{self, CheckedPdu},
        event::Pdu,
    },
    store::pending::Pending,
};

/// The body of `PUT /v2/invite`.
#[derive(Deserialize)]
pub struct InviteRequest {
    pub room_version: String,
    pub event: CanonicalJsonObject,
    #[serde(default)]
    pub invite_room_state: Vec<CanonicalJsonObject>,
}

/// The room state an invite or knock may carry: the spec's list is ten
/// event types (create, join rules, name, avatar, topic, encryption, …),
/// each a PDU of at most 64 KiB from room version 12, but usually small.
const MAX_ROOM_STATE_EVENTS: usize = 50;
const MAX_ROOM_STATE_BYTES: usize = 256 * 1024;

/// An invite of ours, signed by us, awaiting the invited server's signature.
pub struct PreparedInvite {
    pub event: CheckedPdu,
    pub room_version: String,
    pub room_state: Vec<CanonicalJsonObject>,
}

impl RoomService {
    /// Builds and signs `sender`'s invite of `target`, checked against the
    /// room's current state; nothing is stored yet.
    pub async fn prepare_invite(
        &self,
        room: &RoomId,
        sender: &UserId,
        target: &UserId,
        content: Value,
    ) -> Result<PreparedInvite> {
        self.ensure_local(sender)?;
        let _guard = self.lock(room).await?;
        let record = self.record(room)?;
        let rules = Self::rules_of(&record.version)?;
        let object = self.build(
            room,
            &record,
            &rules,
            sender,
            "m.room.member",
            Some(target.as_str()),
            content,
        )?;
        let event = self.sign(object, &rules)?;
        let pdu = Pdu::parse(event.event_id.clone(), &event.object, &rules)
            .map_err(|e| Error::internal(e.0))?;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let current = shorts.shared(record.current_state)?;
        self.auth_against_state(&rules, &pdu, &shorts, &current)
            .map_err(|reason| {
                Error::forbidden(format!("{sender} may not invite {target}: {reason}"))
            })?;
        let mut room_state = self.summary_state(room)?;
        // The inviter's membership tells the invitee who is asking.
        if let Some(id) = shorts.lookup(&current, &StateEventType::RoomMember, sender.as_str())? {
            room_state.extend(self.trees.event_json(id.as_str())?);
        }
        Ok(PreparedInvite {
            event,
            room_version: record.version,
            room_state,
        })
    }

    /// Appends our invite once the invited server has co-signed it: the
    /// same event, with a valid signature of `invited`.
    pub async fn append_invite(
        &self,
        room: &RoomId,
        ours: &EventId,
        invited: &ServerName,
        signed: CanonicalJsonObject,
    ) -> Result<()> {
        let record = self.record(room)?;
        let version = parse_version(&record.version)?;
        let rules = Self::rules_of(&record.version)?;
        let checked = checks::check(&self.keys, &version, signed)
            .await
            .map_err(|e| Error::remote(format!("{invited} returned a bad invite: {e}")))?;
        if checked.event_id != ours || checked.redacted_for_hash_mismatch {
            return Err(Error::remote(format!(
                "{invited} returned another event than our invite"
            )));
        }
        checks::check_signed_by(&self.keys, &rules, &checked.object, invited)
            .await
            .map_err(|e| Error::remote(format!("{invited} did not sign our invite: {e}")))?;
        let _guard = self.lock(room).await?;
        self.append(room, &record.version, checked, Source::Local, None)
            .await?;
        self.trees.flush().await?;
        self.outbound_ready.notify_one();
        Ok(())
    }

    /// `PUT /v2/invite` for one of our users: the spec's validation, then
    /// our signature; the invite is kept for the user until answered.
    pub async fn receive_invite(
        &self,
        origin: &ServerName,
        room: &RoomId,
        event_id: &EventId,
        request: InviteRequest,
    ) -> Result<CanonicalJsonObject> {
        let version = RoomVersionId::try_from(request.room_version.as_str())
            .ok()
            .filter(|v| v.rules().is_some())
            .ok_or_else(|| incompatible(&request.room_version))?;
        let rules = checks::rules(&version).map_err(|e| Error::internal(e.0))?;
        if self.trees.room(room.as_str())?.is_some() {
            self.check_acl(room, origin)?;
        }
        let checked = checks::check(&self.keys, &version, request.event)
            .await
            .map_err(|e| Error::invalid_param(format!("the invite: {e}")))?;
        if checked.redacted_for_hash_mismatch || checked.event_id != event_id {
            return Err(Error::invalid_param(format!(
                "the invite's hash or ID does not match {event_id}"
            )));
        }
        let invite = Pdu::parse(checked.event_id.clone(), &checked.object, &rules)
            .map_err(|e| Error::invalid_param(e.0))?;
        let target = invite
            .state_key
            .as_deref()
            .and_then(|key| <&UserId>::try_from(key).ok());
        let valid = invite.kind == TimelineEventType::RoomMember
            && invite.membership() == Some("invite")
            && invite.room_id.as_deref() == Some(room)
            && invite.sender.server_name() == origin;
        let Some(target) = target.filter(|t| valid && t.server_name() == self.server_name) else {
            return Err(Error::invalid_param(format!(
                "not an invite from a user of {origin} to a user of ours in {room}"
            )));
        };
        self.check_room_state(&version, room, &request.invite_room_state)
            .await?;
        let mut signed = checked.object;
        self.keys
            .hash_and_sign_event(&mut signed, &rules.redaction)?;
        self.record_pending(
            target,
            Pending {
                room_id: room.to_owned(),
                membership: "invite".into(),
                room_version: version.to_string(),
                event: signed.clone(),
                event_id: Some(event_id.to_string()),
                room_state: request.invite_room_state,
                position: 0,
            },
        )
        .await?;
        Ok(signed)
    }

    /// The room state sent with an invite: it must hold the room's create
    /// event, and every entry must be a valid PDU of the room. Enforced
    /// from room version 12; older versions are only warned about, as the
    /// spec asks while servers migrate (Matrix 1.16).
    pub(in crate::rooms) async fn check_room_state(
        &self,
        version: &RoomVersionId,
        room: &RoomId,
        state: &[CanonicalJsonObject],
    ) -> Result<()> {
        let size: usize = state
            .iter()
            .map(|event| CanonicalJsonValue::Object(event.clone()).to_string().len())
            .sum();
        if state.len() > MAX_ROOM_STATE_EVENTS || size > MAX_ROOM_STATE_BYTES {
            return Err(Error::too_large(format!(
                "the room state sent is {} events of {size} bytes; at most \
                 {MAX_ROOM_STATE_EVENTS} events of {MAX_ROOM_STATE_BYTES} bytes are kept",
                state.len()
            )));
        }
        let rules = checks::rules(version).map_err(|e| Error::internal(e.0))?;
        let enforce = rules.room_id_format == ruma::room_version_rules::RoomIdFormatVersion::V2;
        let mut problems = Vec::new();
        let mut has_create = false;
        for object in state {
            let is_create = matches!(object.get("type"), Some(CanonicalJsonValue::String(t)) if t == "m.room.create");
            match checks::check(&self.keys, version, object.clone()).await {
                Ok(checked) => {
                    let parsed = Pdu::parse(checked.event_id.clone(), &checked.object, &rules);
                    let in_room = parsed.is_ok_and(|p| match &p.room_id {
                        Some(id) => id == room,
                        None => checked.event_id.as_str().get(1..) == room.as_str().get(1..),
                    });
                    if !in_room {
                        problems.push(format!("{} is not of {room}", checked.event_id));
                    }
                    has_create |= is_create && in_room;
                }
                Err(e) => problems.push(format!("an entry is not a valid PDU: {e}")),
            }
        }
        if !has_create {
            problems.push("the room's create event is missing".into());
        }
        if problems.is_empty() {
            return Ok(());
        }
        let summary = problems.join("; ");
        if enforce {
            return Err(Error::invalid_param(format!(
                "invite_room_state: {summary}"
            )));
        }
        tracing::warn!(%room, problems = %summary, "accepting an invite with nonconforming invite_room_state");
        Ok(())
    }

    /// Whether `user` is one of ours.
    pub(in crate::rooms) fn ensure_local(&self, user: &UserId) -> Result<()> {
        if user.server_name() == self.server_name {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "{user} is not a user of this server"
            )))
        }
    }

    /// Our users' open invites and knocks in rooms we may not be in.
    pub fn pending_of(&self, user: &UserId) -> Result<Vec<Pending>> {
        let mut records = self.pending_records_of(user)?;
        records.retain(|p| p.membership != "leave");
        Ok(records)
    }

    /// Every record of `user`, with the leaves that closed one: for a
    /// room invited to by several servers, the first invite (a later one
    /// from another server does not replace what the user was shown).
    pub fn pending_records_of(&self, user: &UserId) -> Result<Vec<Pending>> {
        let mut records = self.pending.of_user(user)?;
        records.sort_by_key(|p| p.position);
        let mut seen = std::collections::HashSet::new();
        records.retain(|p| seen.insert(p.room_id.clone()));
        Ok(records)
    }

    /// The servers that invited `user` to `room`, first first.
    pub fn inviting_servers(
        &self,
        user: &UserId,
        room: &RoomId,
    ) -> Result<Vec<ruma::OwnedServerName>> {
        let mut records = self.pending.of_room(user, room)?;
        records.retain(|p| p.membership == "invite");
        records.sort_by_key(|p| p.position);
        Ok(records
            .iter()
            .filter_map(|p| super::inviting_server(&p.event))
            .collect())
    }

    /// Replaces an invite or knock of `user` by the leave that rejected or
    /// retracted it, at a fresh position, so syncing clients see it go.
    pub async fn close_pending(
        &self,
        user: &UserId,
        room: &RoomId,
        leave_id: &ruma::EventId,
        leave: ruma::CanonicalJsonObject,
    ) -> Result<()> {
        let Some(first) = self.pending.of_room(user, room)?.into_iter().next() else {
            return Ok(());
        };
        let mut pending = Pending {
            membership: "leave".into(),
            event: leave,
            event_id: Some(leave_id.to_string()),
            room_state: Vec::new(),
            ..first
        };
        self.trees.advance_with(|position| {
            pending.position = position;
            self.pending.remove(user, room)?;
            self.pending.put(user, &pending)
        })?;
        Ok(self.trees.flush().await?)
    }

    /// Forgets a pending membership once the user joined, rejected or retracted.
    pub async fn settle_pending(&self, user: &UserId, room: &RoomId) -> Result<()> {
        self.pending.remove(user, room)?;
        Ok(self.trees.flush().await?)
    }

    /// Records an invite from, or a knock sent to, another server, at a
    /// fresh stream position so syncing clients see it.
    /// It replaces the user's own knock or leave there, and an invite from
    /// the same server, but not another server's invite.
    pub async fn record_pending(&self, user: &UserId, mut pending: Pending) -> Result<()> {
        let replaced: Vec<Pending> = self
            .pending
            .of_room(user, &pending.room_id)?
            .into_iter()
            .filter(|p| p.membership != "invite")
            .collect();
        self.trees.advance_with(|position| {
            pending.position = position;
            for old in &replaced {
                self.pending.remove_one(user, old)?;
            }
            self.pending.put(user, &pending)
        })?;
        Ok(self.trees.flush().await?)
    }
}

fn parse_version(version: &str) -> Result<RoomVersionId> {
    RoomVersionId::try_from(version).map_err(|e| Error::internal(e.to_string()))
}

fn incompatible(version: &str) -> Error {
    Error::new(
        http::StatusCode::BAD_REQUEST,
        "M_INCOMPATIBLE_ROOM_VERSION",
        format!("room version {version} is not supported here"),
    )
    .with_field("room_version", version.to_owned())
}
