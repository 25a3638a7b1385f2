//! Our own events: built from the room's extremities and state, signed,
//! and appended; rooms created with their initial events.
//! Spec: client-server-api "Creation", "Sending events";
//! server-server-api.md "PDUs".

use rand::{distributions::Alphanumeric, Rng};
use ruma::{
    room_version_rules::{
        EventIdFormatVersion, EventsReferenceFormatVersion, RoomIdFormatVersion, RoomVersionRules,
    },
    state_res::{auth_types_for_event, check_pdu_format},
    CanonicalJsonObject, CanonicalJsonValue, Int, OwnedEventId, OwnedRoomId, RoomId, RoomVersionId,
    UserId,
};
use serde_json::{json, Value};

use crate::rooms::{
    checks::{self, CheckedPdu},
    shorts::Shorts,
};
use crate::{
    error::{Error, Result},
    store::rooms::RoomRecord,
    time::now_ms,
};

use super::{RoomService, Source};

impl RoomService {
    /// Builds, signs and appends an event from one of our users.
    pub async fn send(
        &self,
        room: &RoomId,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
    ) -> Result<OwnedEventId> {
        self.send_at(room, sender, (kind, state_key, content), None)
            .await
    }

    /// [`Self::send`] with the `origin_server_ts` an application service
    /// asked for (`?ts=`, to bridge messages at the time they were sent).
    pub async fn send_at(
        &self,
        room: &RoomId,
        sender: &UserId,
        event: (&str, Option<&str>, Value),
        ts: Option<u64>,
    ) -> Result<OwnedEventId> {
        self.send_with(room, sender, event, |o| set_ts(o, ts), |_| Ok(()))
            .await
    }

    /// [`Self::send`] for a client's transaction: `record` notes the
    /// transaction's event ID before the event is written. sled makes
    /// writes durable in order (one log), so after a crash the event
    /// exists only if its record does: a retry finds the record, and sends
    /// again only when the event is missing ([`Self::has_event`]). Either
    /// way the transaction makes one event.
    pub async fn send_once(
        &self,
        room: &RoomId,
        sender: &UserId,
        kind: &str,
        content: Value,
        ts: Option<u64>,
        record: impl FnOnce(&ruma::EventId) -> Result<()>,
    ) -> Result<OwnedEventId> {
        self.send_with(
            room,
            sender,
            (kind, None, content),
            |o| set_ts(o, ts),
            record,
        )
        .await
    }

    /// Whether the event is stored (not only referred to).
    pub fn has_event(&self, id: &str) -> Result<bool> {
        Ok(self.trees.event_meta(id)?.is_some())
    }

    /// The current state event of `(kind, key)` when it is this one again
    /// (same sender, same content): sending it twice (the same topic, a
    /// second join) changes nothing and makes no event, as with Synapse
    /// (`deduplicate_state_event`); the spec is silent.
    fn same_state(
        &self,
        room: &RoomId,
        sender: &UserId,
        kind: &str,
        key: &str,
        content: &Value,
    ) -> Result<Option<OwnedEventId>> {
        let Some((id, event)) = self.state_event(room, &kind.into(), key)? else {
            return Ok(None);
        };
        let same_sender = matches!(
            event.get("sender"),
            Some(CanonicalJsonValue::String(s)) if s == sender.as_str()
        );
        let same_content = event
            .get("content")
            .is_some_and(|existing| Value::from(existing.clone()) == *content);
        Ok((same_sender && same_content).then_some(id))
    }

    /// [`Self::send`] with a last touch to the event before it is signed
    /// (a top-level `redacts` before room version 11), and a step run with
    /// its ID before it is written.
    pub(in crate::rooms) async fn send_with(
        &self,
        room: &RoomId,
        sender: &UserId,
        (kind, state_key, content): (&str, Option<&str>, Value),
        finish: impl FnOnce(&mut CanonicalJsonObject),
        before_append: impl FnOnce(&ruma::EventId) -> Result<()>,
    ) -> Result<OwnedEventId> {
        self.ensure_local(sender)?;
        let mut content = content;
        if kind == "m.room.member"
            && state_key == Some(sender.as_str())
            && content["membership"] == "join"
        {
            self.add_profile(sender, &mut content)?;
            if let Some(authoriser) = self.restricted_join_authoriser(room, sender)? {
                content["join_authorised_via_users_server"] = json!(authoriser);
            }
        }
        let _guard = self.lock(room).await?;
        if let Some(key) = state_key {
            if let Some(same) = self.same_state(room, sender, kind, key, &content)? {
                return Ok(same);
            }
        }
        let record = self.record(room)?;
        let rules = Self::rules_of(&record.version)?;
        let mut object = self.build(room, &record, &rules, sender, kind, state_key, content)?;
        finish(&mut object);
        let checked = self.sign(object, &rules)?;
        before_append(&checked.event_id)?;
        let (event_id, _) = self
            .append(room, &record.version, checked, Source::Local, None)
            .await?;
        self.trees.flush().await?;
        self.outbound_ready.notify_one();
        Ok(event_id)
    }

    /// Adds one of our users' display name and avatar to the content of
    /// their join (where clients read names from), unless already set.
    pub fn add_profile(&self, user: &UserId, content: &mut Value) -> Result<()> {
        let Some(record) = self.accounts.user(user)? else {
            return Ok(());
        };
        for (field, value) in [
            ("displayname", record.displayname),
            ("avatar_url", record.avatar_url),
        ] {
            if let (Some(value), Some(content)) = (value, content.as_object_mut()) {
                content.entry(field).or_insert(Value::String(value));
            }
        }
        Ok(())
    }

    /// An unsigned event on top of the room's forward extremities, with
    /// `auth_events` and depth chosen from the current state. The caller
    /// holds the room's lock.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::rooms) fn build(
        &self,
        room: &RoomId,
        record: &RoomRecord,
        rules: &RoomVersionRules,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
    ) -> Result<CanonicalJsonObject> {
        let mut prev: Vec<OwnedEventId> = self.trees.extremities(room.as_str())?;
        prev.sort_by_key(|id| {
            std::cmp::Reverse(
                self.trees
                    .event_meta(id.as_str())
                    .ok()
                    .flatten()
                    .map_or(0, |m| m.depth),
            )
        });
        prev.truncate(MAX_PREV_EVENTS);
        let depth = prev
            .iter()
            .filter_map(|id| self.trees.event_meta(id.as_str()).ok().flatten())
            .map(|m| m.depth)
            .max()
            .unwrap_or(0)
            + 1;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let current = shorts.shared(record.current_state)?;
        let raw_content = serde_json::value::to_raw_value(&content)
            .map_err(|e| Error::bad_json(e.to_string()))?;
        let auth_types = auth_types_for_event(
            &kind.into(),
            sender,
            state_key,
            &raw_content,
            &rules.authorization,
        )
        .map_err(Error::bad_json)?;
        let mut auth = Vec::new();
        for (kind, key) in &auth_types {
            auth.extend(shorts.lookup(&current, kind, key)?);
        }
        let mut object = self.base_event(rules, sender, kind, state_key, content, depth)?;
        object.insert("room_id".into(), room.as_str().into());
        object.insert("prev_events".into(), self.references(&prev, rules)?);
        object.insert("auth_events".into(), self.references(&auth, rules)?);
        Ok(object)
    }

    /// `prev_events` / `auth_events`: bare IDs, or in room versions 1 and
    /// 2 `[id, {"sha256": reference hash}]` pairs, hashed from the stored
    /// events. Spec: rooms/v1 "Event format".
    pub(in crate::rooms) fn references(
        &self,
        ids: &[OwnedEventId],
        rules: &RoomVersionRules,
    ) -> Result<CanonicalJsonValue> {
        if rules.events_reference_format != EventsReferenceFormatVersion::V1 {
            return Ok(CanonicalJsonValue::Array(
                ids.iter().map(|id| id.as_str().into()).collect(),
            ));
        }
        let mut pairs = Vec::with_capacity(ids.len());
        for id in ids {
            let object = self
                .trees
                .event_json(id.as_str())?
                .ok_or_else(|| Error::internal(format!("{id} is referenced but not stored")))?;
            let hash = ruma::signatures::reference_hash(&object, rules)
                .map_err(|e| Error::internal(e.to_string()))?;
            let hashes = CanonicalJsonObject::from([("sha256".to_owned(), hash.into())]);
            pairs.push(CanonicalJsonValue::Array(vec![
                id.as_str().into(),
                CanonicalJsonValue::Object(hashes),
            ]));
        }
        Ok(CanonicalJsonValue::Array(pairs))
    }

    /// The fields every event has; in room versions 1 and 2 also an ID of
    /// ours (`$random:our.name`), which the spec leaves to the creator.
    pub(in crate::rooms) fn base_event(
        &self,
        rules: &RoomVersionRules,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
        depth: u64,
    ) -> Result<CanonicalJsonObject> {
        let content: CanonicalJsonValue = content
            .try_into()
            .map_err(|e| Error::bad_json(format!("content: {e}")))?;
        let mut object = CanonicalJsonObject::from([
            ("sender".to_owned(), sender.as_str().into()),
            ("origin".to_owned(), sender.server_name().as_str().into()),
            (
                "origin_server_ts".to_owned(),
                CanonicalJsonValue::Integer(Int::try_from(now_ms()).unwrap_or(Int::MAX)),
            ),
            ("type".to_owned(), kind.into()),
            ("content".to_owned(), content),
            (
                "depth".to_owned(),
                CanonicalJsonValue::Integer(Int::try_from(depth).unwrap_or(Int::MAX)),
            ),
        ]);
        if let Some(key) = state_key {
            object.insert("state_key".into(), key.into());
        }
        if rules.event_id_format == EventIdFormatVersion::V1 {
            object.insert("event_id".into(), self.new_event_id());
        }
        Ok(object)
    }

    /// A fresh v1/v2 event ID of ours. The server it names must sign the
    /// event. Spec: server-server-api.md "Validating hashes and signatures".
    pub(in crate::rooms) fn new_event_id(&self) -> CanonicalJsonValue {
        format!("${}:{}", random_local(), self.server_name).into()
    }

    pub(in crate::rooms) fn sign(
        &self,
        mut object: CanonicalJsonObject,
        rules: &RoomVersionRules,
    ) -> Result<CheckedPdu> {
        self.keys
            .hash_and_sign_event(&mut object, &rules.redaction)?;
        check_pdu_format(&object, &rules.event_format)
            .map_err(|e| Error::too_large(format!("event: {e}")))?;
        let event_id = checks::event_id(&object, rules).map_err(|e| Error::internal(e.0))?;
        Ok(CheckedPdu {
            event_id,
            object,
            redacted_for_hash_mismatch: false,
        })
    }

    /// Creates a room on this server: create event, the creator's join,
    /// power levels, invite-only join rules and shared history.
    pub async fn create_room(
        &self,
        creator: &UserId,
        version: Option<RoomVersionId>,
    ) -> Result<OwnedRoomId> {
        self.create_room_with(creator, version, serde_json::Map::new())
            .await
    }

    /// [`Self::create_room`] with extra create event content (a client's
    /// `creation_content`, e.g. `m.federate` or `type`).
    pub async fn create_room_with(
        &self,
        creator: &UserId,
        version: Option<RoomVersionId>,
        creation_content: serde_json::Map<String, Value>,
    ) -> Result<OwnedRoomId> {
        self.ensure_local(creator)?;
        let version = version.unwrap_or_else(|| self.default_version.clone());
        let rules = checks::rules(&version).map_err(|e| {
            Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_UNSUPPORTED_ROOM_VERSION",
                e.0,
            )
        })?;
        // v11 dropped `creator`: the sender of the create event is the creator.
        let mut content = Value::Object(creation_content);
        content["room_version"] = json!(version.as_str());
        if !rules.authorization.use_room_create_sender {
            content["creator"] = json!(creator.as_str());
        }
        let mut create = self.base_event(&rules, creator, "m.room.create", Some(""), content, 1)?;
        create.insert("prev_events".into(), CanonicalJsonValue::Array(vec![]));
        create.insert("auth_events".into(), CanonicalJsonValue::Array(vec![]));
        let room_id = if rules.room_id_format == RoomIdFormatVersion::V2 {
            // v12: the room ID is the create event's reference hash.
            let id = self.sign(create.clone(), &rules)?.event_id;
            OwnedRoomId::try_from(format!("!{}", &id.as_str()[1..]))
                .map_err(|e| Error::internal(e.to_string()))?
        } else {
            let id = OwnedRoomId::try_from(format!("!{}:{}", random_local(), self.server_name))
                .map_err(|e| Error::internal(e.to_string()))?;
            create.insert("room_id".into(), id.as_str().into());
            id
        };
        {
            let _guard = self.lock_any(&room_id).await;
            let checked = self.sign(create, &rules)?;
            self.append(&room_id, version.as_str(), checked, Source::Local, None)
                .await?;
            self.trees.flush().await?;
        }
        let mut users = serde_json::Map::new();
        if !rules.authorization.explicitly_privilege_room_creators {
            users.insert(creator.to_string(), json!(100));
        }
        let power = json!({"users": users, "users_default": 0, "events_default": 0, "state_default": 50,
            "ban": 50, "kick": 50, "redact": 50, "invite": 0,
            "events": {"m.room.power_levels": 100, "m.room.history_visibility": 100, "m.room.tombstone": 100}});
        let initial = [
            (
                "m.room.member",
                creator.as_str(),
                json!({"membership": "join"}),
            ),
            ("m.room.power_levels", "", power),
            ("m.room.join_rules", "", json!({"join_rule": "invite"})),
            (
                "m.room.history_visibility",
                "",
                json!({"history_visibility": "shared"}),
            ),
        ];
        for (kind, key, content) in initial {
            self.send(&room_id, creator, kind, Some(key), content)
                .await?;
        }
        Ok(room_id)
    }
}

/// At most this many forward extremities are referenced by a new event.
const MAX_PREV_EVENTS: usize = 20;

/// The random local part of a room ID (before v12) or event ID (v1, v2).
fn random_local() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(18)
        .map(char::from)
        .collect()
}

/// Sets the event's `origin_server_ts` when one was asked for.
fn set_ts(object: &mut CanonicalJsonObject, ts: Option<u64>) {
    if let Some(ts) = ts {
        object.insert(
            "origin_server_ts".to_owned(),
            CanonicalJsonValue::Integer(Int::try_from(ts).unwrap_or(Int::MAX)),
        );
    }
}
