//! Reads other servers ask for: events, the state at an event, auth
//! chains, history walked backwards, and whether a server may see them.
//! Spec: server-server-api.md "Retrieving events", "Backfilling and
//! retrieving missing events", "Server Access Control Lists (ACLs)".

use std::collections::{BTreeSet, HashSet};

use ruma::{
    events::{
        room::{
            history_visibility::{HistoryVisibility, RoomHistoryVisibilityEventContent},
            member::MembershipState,
            server_acl::RoomServerAclEventContent,
        },
        StateEventType,
    },
    CanonicalJsonObject, EventId, OwnedEventId, RoomId, ServerName, UserId,
};

use crate::rooms::{shorts::Shorts, RoomService};
use crate::{
    error::{Error, Result},
    store::rooms::{EventMeta, ShortState, Status},
};

/// Longest walk for backfill and get_missing_events.
pub const MAX_WALK: usize = 100;
/// Most events a walk may start from (a PDU has at most 20 prev events).
pub const MAX_START_EVENTS: usize = 20;

impl RoomService {
    /// An event of `room` as stored, with its metadata.
    pub fn event(
        &self,
        room: Option<&RoomId>,
        id: &EventId,
    ) -> Result<(EventMeta, CanonicalJsonObject)> {
        let unknown = || Error::not_found(format!("unknown event {id}"));
        let meta = self.trees.event_meta(id.as_str())?.ok_or_else(unknown)?;
        if room.is_some_and(|r| r != meta.room_id) {
            return Err(unknown());
        }
        let json = self.trees.event_json(id.as_str())?.ok_or_else(unknown)?;
        Ok((meta, json))
    }

    /// A stored event's canonical JSON, as the sender puts it in a
    /// transaction without parsing it.
    pub fn event_canonical(&self, id: &EventId) -> Result<Vec<u8>> {
        self.trees
            .event_bytes(id.as_str())?
            .ok_or_else(|| Error::not_found(format!("unknown event {id}")))
    }

    /// A stored event as JSON text to embed in an answer unparsed.
    pub fn event_raw(&self, id: &EventId) -> Result<Box<serde_json::value::RawValue>> {
        let json = String::from_utf8(self.event_canonical(id)?)
            .map_err(|_| Error::internal(format!("stored event {id} is not UTF-8")))?;
        serde_json::value::RawValue::from_string(json)
            .map_err(|e| Error::internal(format!("stored event {id}: {e}")))
    }

    /// The room and `origin_server_ts` of a stored event.
    pub fn room_and_ts_of(&self, id: &EventId) -> Result<(ruma::OwnedRoomId, u64)> {
        let (meta, json) = self.event(None, id)?;
        let ts = crate::rooms::event::origin_ts(&json).unwrap_or(0);
        Ok((meta.room_id, ts))
    }

    /// The state before a (non-outlier) event, as event IDs.
    pub fn state_ids_before(&self, meta: &EventMeta) -> Result<Vec<OwnedEventId>> {
        // A rejected event has no place in the room's history, so no
        // state; Synapse answers 404 for it too.
        if meta.outlier || matches!(meta.status, Status::Rejected(_)) {
            return Err(Error::not_found(
                "the state at that event is not known here",
            ));
        }
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let state = shorts.shared(meta.state_before)?;
        Ok(state
            .values()
            .map(|e| self.trees.short_event(*e))
            .collect::<Result<_, _>>()?)
    }

    /// Every event in the auth chains of `ids` (not `ids` themselves).
    pub fn auth_chain(&self, room: &RoomId, ids: &[OwnedEventId]) -> Result<Vec<OwnedEventId>> {
        let rules = Self::rules_of(&self.record(room)?.version)?;
        let chain = crate::rooms::state_res::auth_chain(ids.iter().cloned(), &|id| {
            self.auth_events_of(id, &rules)
        });
        Ok(chain.into_iter().collect())
    }

    /// Whether the room's current server ACL lets `server` take part.
    pub fn acl_allows(&self, room: &RoomId, server: &ServerName) -> Result<bool> {
        let record = self.record(room)?;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let state = shorts.shared(record.current_state)?;
        let Some(acl) = self.state_content::<RoomServerAclEventContent>(
            &shorts,
            &state,
            &StateEventType::RoomServerAcl,
            "",
        )?
        else {
            return Ok(true);
        };
        Ok(acl.is_allowed(server))
    }

    /// [`Self::acl_allows`] as a 403 for the requests a server ACL covers.
    /// Spec: server-server-api.md "Server Access Control Lists (ACLs)".
    pub fn check_acl(&self, room: &RoomId, server: &ServerName) -> Result<()> {
        if self.acl_allows(room, server)? {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "the room's server ACL denies {server}"
            )))
        }
    }

    /// Whether `server` may see an event: it had a member joined (or
    /// invited, for "invited"/"shared") at the event, or the history is
    /// world-readable, or shared and the server is in the room now.
    /// Spec: client-server-api "History visibility", as servers apply it.
    pub fn server_may_see(&self, meta: &EventMeta, server: &ServerName) -> Result<bool> {
        if meta.outlier || matches!(meta.status, Status::Rejected(_)) {
            return Ok(false);
        }
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let state = shorts.shared(meta.state_before)?;
        let visibility = self
            .state_content::<RoomHistoryVisibilityEventContent>(
                &shorts,
                &state,
                &StateEventType::RoomHistoryVisibility,
                "",
            )?
            .map_or(HistoryVisibility::Shared, |c| c.history_visibility);
        if visibility == HistoryVisibility::WorldReadable {
            return Ok(true);
        }
        if visibility == HistoryVisibility::Shared
            && self.joined_servers(&meta.room_id)?.contains(server)
        {
            return Ok(true);
        }
        let memberships = self.server_memberships(&shorts, &state, server)?;
        Ok(memberships.iter().any(|m| match m {
            MembershipState::Join => true,
            MembershipState::Invite => visibility != HistoryVisibility::Joined,
            _ => false,
        }))
    }

    /// Whether `user`, joined to the room now, may see an event, by the
    /// room's history visibility before it and the user's membership before
    /// or after it (so one's own join and leave are visible): `shared` and
    /// `world_readable` show everything to members, `invited` what came
    /// after an invite, `joined` what came while joined. History fetched
    /// from other servers is shown as they filtered it for us; other
    /// outliers, rejected and soft-failed events are not shown.
    /// Spec: client-server-api "History visibility".
    pub fn visible_to(&self, id: &EventId, user: &UserId) -> Result<bool> {
        self.visible(id, user, u64::MAX)
    }

    /// Whether `user`, not joined to the room now, may see an event:
    /// `world_readable` history, what came while they were joined (or
    /// invited, for `invited`), and `shared` history up to stream position
    /// `joined_until` (their leave, for a former member: they joined after
    /// it was sent; 0 for someone never in the room).
    pub fn visible_to_outsider(
        &self,
        id: &EventId,
        user: &UserId,
        joined_until: u64,
    ) -> Result<bool> {
        self.visible(id, user, joined_until)
    }

    fn visible(&self, id: &EventId, user: &UserId, shared_until: u64) -> Result<bool> {
        let Some(meta) = self.trees.event_meta(id.as_str())? else {
            return Ok(false);
        };
        if meta.status != Status::Accepted {
            return Ok(false);
        }
        if meta.outlier {
            return Ok(self.backfilled.contains(id)?);
        }
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let before = shorts.shared(meta.state_before)?;
        let visibility = self
            .state_content::<RoomHistoryVisibilityEventContent>(
                &shorts,
                &before,
                &StateEventType::RoomHistoryVisibility,
                "",
            )?
            .map_or(HistoryVisibility::Shared, |c| c.history_visibility);
        let shared = visibility == HistoryVisibility::Shared && meta.stream <= shared_until;
        if shared || visibility == HistoryVisibility::WorldReadable {
            return Ok(true);
        }
        #[derive(serde::Deserialize)]
        struct Member {
            membership: MembershipState,
        }
        let after = shorts.shared(meta.state_after)?;
        let mut visible = false;
        for state in [&before, &after] {
            let membership = self
                .state_content::<Member>(
                    &shorts,
                    state,
                    &StateEventType::RoomMember,
                    user.as_str(),
                )?
                .map(|m| m.membership);
            visible |= match membership {
                Some(MembershipState::Join) => true,
                Some(MembershipState::Invite) => visibility == HistoryVisibility::Invited,
                _ => false,
            };
        }
        Ok(visible)
    }

    /// `user`'s membership in the room's current state, if any.
    pub fn membership_of(&self, room: &RoomId, user: &UserId) -> Result<Option<MembershipState>> {
        let record = self.record(room)?;
        let shorts = Shorts::cached(&self.trees, &self.groups);
        let state = shorts.shared(record.current_state)?;
        #[derive(serde::Deserialize)]
        struct Member {
            membership: MembershipState,
        }
        Ok(self
            .state_content::<Member>(&shorts, &state, &StateEventType::RoomMember, user.as_str())?
            .map(|m| m.membership))
    }

    /// The memberships `server`'s users hold in `state`.
    pub(in crate::rooms) fn server_memberships(
        &self,
        shorts: &Shorts<'_>,
        state: &ShortState,
        server: &ServerName,
    ) -> Result<Vec<MembershipState>> {
        let mut found = Vec::new();
        for ((kind, key), id) in shorts.decode(state)? {
            if kind != StateEventType::RoomMember
                || <&UserId>::try_from(key.as_str()).map_or(true, |u| u.server_name() != server)
            {
                continue;
            }
            let content = self
                .trees
                .event_json(id.as_str())?
                .and_then(|e| e.get("content").cloned());
            if let Some(ruma::CanonicalJsonValue::Object(content)) = content {
                if let Some(ruma::CanonicalJsonValue::String(m)) = content.get("membership") {
                    found.push(MembershipState::from(m.as_str()));
                }
            }
        }
        Ok(found)
    }

    /// The content of one state event in `state`, if present and well formed.
    pub(in crate::rooms) fn state_content<T: serde::de::DeserializeOwned>(
        &self,
        shorts: &Shorts<'_>,
        state: &ShortState,
        kind: &StateEventType,
        key: &str,
    ) -> Result<Option<T>> {
        let Some(id) = shorts.lookup(state, kind, key)? else {
            return Ok(None);
        };
        let content = self
            .trees
            .event_json(id.as_str())?
            .and_then(|e| e.get("content").cloned());
        Ok(content.and_then(|c| serde_json::from_value(c.into()).ok()))
    }

    /// Walks the DAG backwards from `from` (inclusive), newest depth
    /// first, up to `limit` events: what `/backfill` returns.
    pub fn walk_back(
        &self,
        room: &RoomId,
        from: &[OwnedEventId],
        limit: usize,
        stop_at: &BTreeSet<OwnedEventId>,
        min_depth: u64,
    ) -> Result<Vec<OwnedEventId>> {
        let rules = Self::rules_of(&self.record(room)?.version)?;
        let mut frontier: BTreeSet<(u64, OwnedEventId)> = BTreeSet::new();
        let mut seen: HashSet<OwnedEventId> = HashSet::new();
        for id in from {
            if let Some(meta) = self.trees.event_meta(id.as_str())? {
                if meta.room_id == room && seen.insert(id.clone()) {
                    frontier.insert((meta.depth, id.clone()));
                }
            }
        }
        let mut out = Vec::new();
        while let Some((depth, id)) = frontier.pop_last() {
            if out.len() >= limit.min(MAX_WALK) {
                break;
            }
            if stop_at.contains(&id) || depth < min_depth {
                continue;
            }
            let Some(pdu) = self.pdu(&id, &rules) else {
                continue;
            };
            out.push(id);
            for prev in pdu.prev_events {
                if !seen.insert(prev.clone()) {
                    continue;
                }
                if let Some(meta) = self.trees.event_meta(prev.as_str())? {
                    frontier.insert((meta.depth, prev));
                }
            }
        }
        Ok(out)
    }
}

/// Who asks for the event closest to a time: another server (ACLs and
/// its view of history apply) or one of our users (what their access to
/// the room lets them read).
pub enum TimeAsker<'a> {
    Server(&'a ServerName),
    User(&'a UserId, &'a super::access::ReadAccess),
}

impl RoomService {
    /// The timeline event closest to `ts` that the asker may see: the
    /// first at or after it (`forward`), or the last at or before it. The
    /// timeline is in arrival order, which `origin_server_ts` follows
    /// closely enough to search by halves; skewed clocks only make the
    /// answer less close, as the spec's heuristics allow.
    /// Spec: server-server-api.md "Retrieving events" (timestamp_to_event);
    /// client-server-api "GET /rooms/{roomId}/timestamp_to_event".
    pub fn event_at_time(
        &self,
        room: &RoomId,
        ts: u64,
        forward: bool,
        asker: TimeAsker,
    ) -> Result<(OwnedEventId, u64)> {
        if let TimeAsker::Server(server) = asker {
            self.check_acl(room, server)?;
        }
        let record = self.record(room)?;
        let rules = Self::rules_of(&record.version)?;
        let timeline = self.trees.timeline(room.as_str())?;
        let ts_of = |id: &OwnedEventId| -> u64 {
            self.pdu(id, &rules)
                .map_or(0, |p| u64::from(p.origin_server_ts.0))
        };
        let after = timeline.partition_point(|id| ts_of(id) < ts);
        let before_or_at = timeline.partition_point(|id| ts_of(id) <= ts);
        let candidates: Box<dyn Iterator<Item = &OwnedEventId>> = if forward {
            Box::new(timeline[after..].iter())
        } else {
            Box::new(timeline[..before_or_at].iter().rev())
        };
        for id in candidates.take(MAX_WALK) {
            let visible = match asker {
                TimeAsker::Server(server) => match self.trees.event_meta(id.as_str())? {
                    Some(meta) => self.server_may_see(&meta, server)?,
                    None => false,
                },
                TimeAsker::User(user, access) => self.readable_event(id, user, access)?,
            };
            if visible {
                return Ok((id.clone(), ts_of(id)));
            }
        }
        Err(Error::not_found(format!(
            "no event {} {ts} that you may see",
            if forward {
                "at or after"
            } else {
                "at or before"
            }
        )))
    }
}
