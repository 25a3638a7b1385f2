//! The resident server's half of the membership handshakes (join, leave,
//! knock): a `make_*` template, then the signed `send_*` event checked and
//! appended; and the other half's signing of a resident's template.
//! Spec: server-server-api.md "Joining Rooms", "Knocking upon a room",
//! "Leaving Rooms (Rejecting Invites)".

use ruma::{
    events::{StateEventType, TimelineEventType},
    room_version_rules::EventIdFormatVersion,
    CanonicalJsonObject, CanonicalJsonValue, EventId, RoomId, RoomVersionId, ServerName, UserId,
};
use serde_json::json;

use crate::rooms::{pipeline::Source, shorts::Shorts, RoomService};
use crate::{
    error::{Error, Result},
    rooms::{
        checks::{self, CheckedPdu},
        event::Pdu,
    },
};

/// State that tells someone outside a room what it is (spec: client-server
/// API "Stripped state"); sent in full PDU form since Matrix 1.16.
const SUMMARY_STATE: &[StateEventType] = &[
    StateEventType::RoomCreate,
    StateEventType::RoomName,
    StateEventType::RoomAvatar,
    StateEventType::RoomTopic,
    StateEventType::RoomJoinRules,
    StateEventType::RoomCanonicalAlias,
    StateEventType::RoomEncryption,
];

impl RoomService {
    /// `make_join`/`make_leave`/`make_knock`: an unsigned `membership`
    /// event for `user` on our view of the room, after checking that the
    /// room's version is one the other server supports (when it names
    /// any: `supported`) and that the current state would allow it.
    pub async fn make_membership(
        &self,
        room: &RoomId,
        user: &UserId,
        origin: &ServerName,
        membership: &str,
        supported: Option<&[String]>,
    ) -> Result<(CanonicalJsonObject, String)> {
        if user.server_name() != origin {
            return Err(Error::forbidden(format!(
                "{origin} cannot make a {membership} for {user}"
            )));
        }
        self.check_acl(room, origin)?;
        let _guard = self.lock(room).await?;
        let record = self.record(room)?;
        // A server that has left a room can no longer vouch for its state
        // or reach its members: joins and knocks go to one still in it
        // (Synapse: "Not an active room on this server").
        if membership != "leave" && !self.joined_servers(room)?.contains(&self.server_name) {
            return Err(Error::not_found(format!(
                "{room} is not an active room on this server"
            )));
        }
        if let Some(supported) = supported {
            // Spec: without `ver` the other server supports only version 1.
            let compatible = supported.contains(&record.version)
                || (supported.is_empty() && record.version == "1");
            if !compatible {
                return Err(Error::new(
                    http::StatusCode::BAD_REQUEST,
                    "M_INCOMPATIBLE_ROOM_VERSION",
                    format!(
                        "the room is version {} which {origin} does not support",
                        record.version
                    ),
                )
                .with_field("room_version", record.version.clone()));
            }
        }
        let rules = Self::rules_of(&record.version)?;
        let mut content = json!({ "membership": membership });
        if membership == "join" {
            if let Some(authoriser) = self.restricted_join_authoriser(room, user)? {
                content["join_authorised_via_users_server"] = json!(authoriser);
            }
        }
        let mut object = self.build(
            room,
            &record,
            &rules,
            user,
            "m.room.member",
            Some(user.as_str()),
            content,
        )?;
        // Would the current state allow it? Checked on a provisional event
        // ID: the real one depends on the other server's signature.
        object.insert(
            "hashes".into(),
            CanonicalJsonValue::Object(Default::default()),
        );
        object.insert(
            "signatures".into(),
            CanonicalJsonValue::Object(Default::default()),
        );
        let id = checks::event_id(&object, &rules).map_err(|e| Error::internal(e.0))?;
        let pdu = Pdu::parse(id, &object, &rules).map_err(|e| Error::internal(e.0))?;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let current = shorts.shared(record.current_state)?;
        self.auth_against_state(&rules, &pdu, &shorts, &current)
            .map_err(|reason| Error::forbidden(format!("{user} may not {membership}: {reason}")))?;
        object.remove("hashes");
        object.remove("signatures");
        Ok((object, record.version))
    }

    /// `send_join`/`send_leave`/`send_knock`: checks that `object` is the
    /// signed `membership` of a user of `origin` for themselves, then
    /// appends it and relays it to the room's other servers. A join one of
    /// our users vouches for (restricted rooms) is co-signed first, and
    /// returned so signed.
    pub async fn accept_membership(
        &self,
        room: &RoomId,
        event_id: &EventId,
        origin: &ServerName,
        mut object: CanonicalJsonObject,
        membership: &str,
    ) -> Result<Option<CanonicalJsonObject>> {
        self.check_acl(room, origin)?;
        let record = self.record(room)?;
        let version = RoomVersionId::try_from(record.version.as_str())
            .map_err(|e| Error::internal(e.to_string()))?;
        let rules = Self::rules_of(&record.version)?;
        let cosigned = membership == "join" && self.vouch(room, &object)?;
        if cosigned {
            self.keys
                .hash_and_sign_event(&mut object, &rules.redaction)?;
        }
        let signed = cosigned.then(|| object.clone());
        let checked = checks::check(&self.keys, &version, object)
            .await
            .map_err(|e| Error::invalid_param(e.0))?;
        if checked.redacted_for_hash_mismatch {
            return Err(Error::invalid_param("the event's content hash is wrong"));
        }
        if checked.event_id != event_id {
            return Err(Error::invalid_param(format!(
                "the event's ID is {}, not {event_id}",
                checked.event_id
            )));
        }
        let pdu = Pdu::parse(checked.event_id.clone(), &checked.object, &rules)
            .map_err(|e| Error::invalid_param(e.0))?;
        if pdu.room_id.as_deref() != Some(room) {
            return Err(Error::invalid_param(format!("the event is not for {room}")));
        }
        let sender_ok = pdu.sender.server_name() == origin
            && pdu.state_key.as_deref() == Some(pdu.sender.as_str());
        if pdu.kind != TimelineEventType::RoomMember
            || pdu.membership() != Some(membership)
            || !sender_ok
        {
            return Err(Error::invalid_param(format!(
                "not a {membership} of a user of {origin} for themselves"
            )));
        }
        let _guard = self.lock(room).await?;
        self.append(
            room,
            &record.version,
            checked,
            Source::Relayed(origin),
            None,
        )
        .await?;
        self.trees.flush().await?;
        self.outbound_ready.notify_one();
        Ok(signed)
    }

    /// Whether a join names one of our users as vouching for it; if so,
    /// the room's conditions must still let its sender in.
    pub(in crate::rooms) fn vouch(
        &self,
        room: &RoomId,
        object: &CanonicalJsonObject,
    ) -> Result<bool> {
        let field = |name: &str| match object.get(name) {
            Some(CanonicalJsonValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        let authoriser = match object.get("content") {
            Some(CanonicalJsonValue::Object(content)) => {
                match content.get("join_authorised_via_users_server") {
                    Some(CanonicalJsonValue::String(user)) => user.clone(),
                    _ => return Ok(false),
                }
            }
            _ => return Ok(false),
        };
        let ours = <&UserId>::try_from(authoriser.as_str())
            .is_ok_and(|u| u.server_name() == self.server_name);
        if !ours {
            return Ok(false);
        }
        let sender = field("sender").unwrap_or_default();
        let sender = <&UserId>::try_from(sender.as_str())
            .map_err(|_| Error::invalid_param("the join has no valid sender"))?;
        self.restricted_join_authoriser(room, sender)?;
        Ok(true)
    }

    /// The room's summary state (create, name, join rules, …) as full
    /// PDUs: `knock_room_state`, `invite_room_state`.
    pub fn summary_state(&self, room: &RoomId) -> Result<Vec<CanonicalJsonObject>> {
        let record = self.record(room)?;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let current = shorts.shared(record.current_state)?;
        let mut events = Vec::new();
        for kind in SUMMARY_STATE {
            if let Some(id) = shorts.lookup(&current, kind, "")? {
                events.extend(self.trees.event_json(id.as_str())?);
            }
        }
        Ok(events)
    }

    /// The resident's co-signed copy of our join: the same event (same
    /// ID), with every signature the room version needs valid.
    pub async fn check_cosigned(
        &self,
        ours: &CheckedPdu,
        signed: CanonicalJsonObject,
        version: &RoomVersionId,
    ) -> Result<CheckedPdu> {
        let checked = checks::check(&self.keys, version, signed)
            .await
            .map_err(|e| Error::remote(format!("the co-signed join: {}", e.0)))?;
        if checked.event_id != ours.event_id || checked.redacted_for_hash_mismatch {
            return Err(Error::remote("the co-signed join is not our join"));
        }
        Ok(checked)
    }

    /// Signs a membership event built from a resident server's template.
    pub fn sign_template(
        &self,
        template: CanonicalJsonObject,
        version: &RoomVersionId,
    ) -> Result<CheckedPdu> {
        let rules = checks::rules(version).map_err(|e| {
            Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_UNSUPPORTED_ROOM_VERSION",
                e.0,
            )
        })?;
        let mut object = template;
        object.insert("origin".into(), self.server_name.as_str().into());
        object.insert(
            "origin_server_ts".into(),
            CanonicalJsonValue::Integer(
                ruma::Int::try_from(crate::time::now_ms()).unwrap_or(ruma::Int::MAX),
            ),
        );
        object.remove("hashes");
        object.remove("signatures");
        if rules.event_id_format == EventIdFormatVersion::V1 {
            // The template's ID names the resident server, which will not
            // sign our event: we name it ourselves, as Synapse does.
            object.insert("event_id".into(), self.new_event_id());
        }
        self.sign(object, &rules)
    }
}
