//! One room of a sliding sync answer: everything on the first time a
//! connection is sent it (`initial`), then only what changed since it was
//! last sent: new timeline events, state its `required_state` names that
//! changed, a new name, avatar, membership or DM flag; counts each time.
//! An invite or knock carries its stripped state only.
//! Spec: MSC4186 "Room results".

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use ruma::JsOption;
use ruma::UInt;
use ruma::{
    api::client::sync::sync_events::{
        v5::response::{Hero, Room},
        UnreadNotificationsCount,
    },
    events::{room::member::MembershipState, StateEventType},
    serde::Raw,
    CanonicalJsonObject, OwnedEventId, OwnedUserId, RoomId, UserId,
};
use serde_json::{json, Value};

use super::{
    connection::{RoomSent, Sent},
    lists::{Candidate, Wanted},
    RoomResponse,
};
use crate::{
    error::{Error, Result},
    rooms::{
        client_event::{client_event, stripped},
        event::content_str,
    },
    sync::{Filter, Pass, SyncService, Token},
};

/// Most lazy-loaded member events a connection remembers sending.
const MAX_MEMBERS_NOTED: usize = 100_000;

/// Where the answer stands, for every room of it.
pub(super) struct Answer<'a> {
    pub user: &'a UserId,
    pub device: &'a str,
    pub now: Token,
    /// The connection's previous answer's positions.
    pub base: Option<Token>,
    pub is_dm: bool,
}

impl Answer<'_> {
    /// Whether no typing or receipt changed anywhere since the previous
    /// answer: then no room needs looking at for them.
    pub fn ephemeral_quiet(&self) -> bool {
        self.base.is_some_and(|b| b.ephemeral == self.now.ephemeral)
    }
}

fn uint(n: usize) -> UInt {
    UInt::try_from(n as u64).unwrap_or(UInt::MAX)
}

/// A JSON value as the raw event ruma's response types hold.
pub(super) fn raw<T>(value: &Value) -> Result<Raw<T>> {
    serde_json::value::to_raw_value(value)
        .map(Raw::from_json)
        .map_err(|e| Error::internal(e.to_string()))
}

impl SyncService {
    /// The room's entry, or none when nothing changed for the connection.
    pub(super) fn sliding_room(
        &self,
        answer: &Answer<'_>,
        candidate: &Candidate,
        wanted: &Wanted,
        sent: &mut Sent,
    ) -> Result<Option<RoomResponse>> {
        let before = sent.rooms.get(&candidate.room).cloned();
        let entry = match candidate.membership {
            MembershipState::Invite | MembershipState::Knock => {
                let room = self.invite_room(answer, candidate, before.as_ref())?;
                room.map(|room| RoomResponse {
                    room,
                    expanded_timeline: false,
                })
            }
            _ => self.joined_room_v5(answer, candidate, wanted, before.as_ref(), sent)?,
        };
        if entry.is_some() {
            Arc::make_mut(&mut sent.rooms).insert(
                candidate.room.clone(),
                RoomSent {
                    at: answer.now.position,
                    membership: candidate.membership.clone(),
                    is_dm: answer.is_dm,
                    timeline_limit: wanted.timeline_limit,
                },
            );
        }
        Ok(entry)
    }

    /// An invite or knock: its stripped state, once.
    fn invite_room(
        &self,
        answer: &Answer<'_>,
        candidate: &Candidate,
        before: Option<&RoomSent>,
    ) -> Result<Option<Room>> {
        if before.is_some_and(|b| b.membership == candidate.membership && b.at >= candidate.since) {
            return Ok(None);
        }
        let state = match &candidate.pending {
            Some(state) => state.clone(),
            None => {
                let mut state: Vec<Value> = self
                    .rooms
                    .summary_state(&candidate.room)?
                    .iter()
                    .map(stripped)
                    .collect();
                let own = self.rooms.state_event(
                    &candidate.room,
                    &StateEventType::RoomMember,
                    answer.user.as_str(),
                )?;
                state.extend(own.map(|(_, event)| stripped(&event)));
                state
            }
        };
        // An invite is a DM when its member event says so (the inviter
        // marked it `is_direct`), before any account data can.
        let direct_invite = state.iter().any(|e| {
            e["type"] == "m.room.member"
                && e["state_key"] == answer.user.as_str()
                && e["content"]["is_direct"] == true
        });
        let mut room = Room::new();
        room.initial = Some(true);
        room.invite_state = Some(state.iter().map(raw).collect::<Result<_>>()?);
        room.bump_stamp = Some(uint(candidate.bump as usize));
        room.is_dm = (answer.is_dm || direct_invite).then_some(true);
        Ok(Some(room))
    }

    /// A room the user is (or was, until this answer) joined to.
    fn joined_room_v5(
        &self,
        answer: &Answer<'_>,
        candidate: &Candidate,
        wanted: &Wanted,
        before: Option<&RoomSent>,
        sent: &mut Sent,
    ) -> Result<Option<RoomResponse>> {
        let room_id = &candidate.room;
        // Only a room sent as joined is held by the client: one sent as an
        // invite or knock, or left, comes whole when joined.
        let before = before.filter(|b| b.membership == MembershipState::Join);
        // The data of a room the user left ends at their leave.
        let end = match candidate.membership {
            MembershipState::Join => answer.now.position,
            _ => candidate.since.min(answer.now.position),
        };
        let since = before.map(|b| b.at);
        // Asked with a larger timeline limit than when last sent (opened,
        // say), the room gets its latest events again.
        let expanded = before.is_some_and(|b| wanted.timeline_limit > b.timeline_limit);
        if let Some(at) = since {
            let changed = expanded
                || candidate.last > at
                || candidate.since > at
                || before.is_some_and(|b| {
                    b.is_dm != answer.is_dm || b.membership != candidate.membership
                })
                || self.own_receipt_changed(answer, room_id)?;
            if !changed {
                return Ok(None);
            }
        }
        let filter =
            Filter::parse(&json!({"room": {"timeline": {"limit": wanted.timeline_limit}}}))?;
        let timeline_since = since.filter(|_| !expanded);
        let pass = Pass {
            user: answer.user,
            device: answer.device,
            since: timeline_since.map(Token::at),
            now: answer.now,
            full_state: false,
            filter: &filter,
            room_data: HashMap::new(),
        };
        let timeline = self.timeline(&pass, room_id, timeline_since.unwrap_or(0), end + 1)?;
        let live_after = answer.base.map_or(u64::MAX, |t| t.position);
        let num_live = timeline
            .events
            .iter()
            .filter(|(position, _, _)| *position > live_after)
            .count();
        let senders: BTreeSet<OwnedUserId> = timeline
            .events
            .iter()
            .filter_map(|(_, _, pdu)| pdu.get("sender").and_then(|s| s.as_str()))
            .filter_map(|s| OwnedUserId::try_from(s).ok())
            .collect();
        let timeline_json = self.timeline_json(&pass, room_id, &timeline)?;
        let state = self.required_state(answer, room_id, wanted, since, &senders, sent)?;

        let mut room = Room::new();
        if since.is_none() {
            room.initial = Some(true);
        }
        let changed_state = |kind: &str| state.iter().any(|e| e["type"] == kind);
        let fresh = since.is_none();
        if fresh || self.state_changed(room_id, &StateEventType::RoomName, since)? {
            room.name = self.state_field(room_id, &StateEventType::RoomName, "name")?;
        }
        if fresh || self.state_changed(room_id, &StateEventType::RoomAvatar, since)? {
            room.avatar = match self.state_field(room_id, &StateEventType::RoomAvatar, "url")? {
                Some(url) => JsOption::Some(url.into()),
                None if fresh => JsOption::Undefined,
                None => JsOption::Null,
            };
        }
        let members_changed = fresh
            || candidate.since > since.unwrap_or(0)
            || changed_state("m.room.member")
            || timeline.events.iter().any(|(_, _, pdu)| {
                pdu.get("type").and_then(|t| t.as_str()) == Some("m.room.member")
            });
        let summary = self.rooms.summary(room_id, answer.user)?;
        if members_changed && room.name.is_none() && !summary.heroes.is_empty() {
            room.heroes = Some(self.heroes(room_id, &summary.heroes)?);
        }
        room.joined_count = Some(uint(summary.joined));
        room.invited_count = Some(uint(summary.invited));
        let unread = self.rooms.unread(answer.user, room_id)?;
        let (notifications, highlights) = unread
            .threads
            .values()
            .fold(unread.main, |(n, h), (tn, th)| (n + tn, h + th));
        let mut counts = UnreadNotificationsCount::new();
        counts.notification_count = Some(uint(notifications as usize));
        counts.highlight_count = Some(uint(highlights as usize));
        room.unread_notifications = counts;
        if fresh || before.is_some_and(|b| b.is_dm != answer.is_dm) {
            room.is_dm = Some(answer.is_dm);
        }
        room.timeline = timeline_json["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(raw)
            .collect::<Result<_>>()?;
        room.limited = timeline.limited;
        room.prev_batch = Some(timeline.prev_batch.to_string());
        room.num_live = Some(uint(num_live));
        room.bump_stamp = Some(uint(candidate.bump as usize));
        room.required_state = state.iter().map(raw).collect::<Result<_>>()?;
        Ok(Some(RoomResponse {
            room,
            expanded_timeline: expanded,
        }))
    }

    /// Whether the user's own read receipt in `room` moved since the
    /// connection's previous answer (its unread counts changed).
    fn own_receipt_changed(&self, answer: &Answer<'_>, room: &RoomId) -> Result<bool> {
        let Some(since) = answer.base.map(|t| t.ephemeral) else {
            return Ok(false);
        };
        if since > answer.now.ephemeral {
            // The counter restarted with the process.
            return Ok(true);
        }
        if answer.ephemeral_quiet() || self.edus.last_change_in(room) <= since {
            return Ok(false);
        }
        Ok(self
            .edus
            .receipts_since(room, Some(since))?
            .iter()
            .any(|(_, user, _)| user == answer.user.as_str()))
    }

    /// Whether the room's `kind` state event changed after `since`.
    fn state_changed(
        &self,
        room: &RoomId,
        kind: &StateEventType,
        since: Option<u64>,
    ) -> Result<bool> {
        match self.rooms.state_event_id(room, kind, "")? {
            Some(id) => Ok(self.rooms.stream_of(&id)? > since.unwrap_or(0)),
            None => Ok(false),
        }
    }

    /// A string field of a state event's content.
    fn state_field(
        &self,
        room: &RoomId,
        kind: &StateEventType,
        field: &str,
    ) -> Result<Option<String>> {
        let event = self.rooms.state_event(room, kind, "")?;
        Ok(event
            .and_then(|(_, e)| content_str(&e, field))
            .filter(|v| !v.is_empty()))
    }

    fn heroes(&self, room: &RoomId, users: &[OwnedUserId]) -> Result<Vec<Hero>> {
        let mut heroes = Vec::new();
        for user in users {
            let mut hero = Hero::new(user.clone());
            if let Some((_, event)) =
                self.rooms
                    .state_event(room, &StateEventType::RoomMember, user.as_str())?
            {
                hero.name = content_str(&event, "displayname");
                hero.avatar = content_str(&event, "avatar_url").map(Into::into);
            }
            heroes.push(hero);
        }
        Ok(heroes)
    }

    /// The current state `wanted.required_state` names (what changed after
    /// `since` only), and with `$LAZY` the member events of the
    /// timeline's senders not yet sent on the connection.
    fn required_state(
        &self,
        answer: &Answer<'_>,
        room: &RoomId,
        wanted: &Wanted,
        since: Option<u64>,
        senders: &BTreeSet<OwnedUserId>,
        sent: &mut Sent,
    ) -> Result<Vec<Value>> {
        let spec = RequiredState::of(&wanted.required_state, answer.user);
        let mut ids: Vec<OwnedEventId> = Vec::new();
        if spec.wildcard {
            for ((kind, key), id) in self.rooms.current_state_ids(room)? {
                if spec.wants(&kind, &key) {
                    ids.push(id);
                }
            }
        } else {
            for (kind, key) in &spec.exact {
                ids.extend(self.rooms.state_event_id(room, kind, key)?);
            }
        }
        let mut events = Vec::new();
        for id in ids {
            if since.is_some_and(|at| self.rooms.stream_of(&id).is_ok_and(|s| s <= at)) {
                continue;
            }
            let pdu = self.rooms.event_object(&id)?;
            note_member(sent, room, &pdu);
            events.push(client_event(&id, &pdu, false));
        }
        if spec.lazy {
            // A long connection does not keep every member ever sent:
            // past the bound, members are sent again as needed.
            if sent.members.len() > MAX_MEMBERS_NOTED {
                sent.members = Arc::default();
            }
            for member in senders {
                let key = (room.to_owned(), member.clone());
                if sent.members.contains(&key) {
                    continue;
                }
                if let Some((id, pdu)) =
                    self.rooms
                        .state_event(room, &StateEventType::RoomMember, member.as_str())?
                {
                    if !events.iter().any(|e| e["event_id"] == id.as_str()) {
                        events.push(client_event(&id, &pdu, false));
                    }
                    Arc::make_mut(&mut sent.members).insert(key);
                }
            }
        }
        Ok(events)
    }
}

/// Notes a member event sent, so that lazy-loading does not repeat it.
fn note_member(sent: &mut Sent, room: &RoomId, pdu: &CanonicalJsonObject) {
    if pdu.get("type").and_then(|t| t.as_str()) != Some("m.room.member") {
        return;
    }
    if let Some(user) = pdu
        .get("state_key")
        .and_then(|k| k.as_str())
        .and_then(|k| OwnedUserId::try_from(k).ok())
    {
        Arc::make_mut(&mut sent.members).insert((room.to_owned(), user));
    }
}

/// A `required_state` request, read: `*` as a type or key matches any,
/// `$ME` is the user, `$LAZY` (for members) the senders of the timeline.
struct RequiredState {
    /// (type, key) pairs, exact (`None`: any key).
    entries: Vec<(Option<StateEventType>, Option<String>)>,
    /// Pairs without wildcards, looked up one by one.
    exact: Vec<(StateEventType, String)>,
    wildcard: bool,
    lazy: bool,
}

impl RequiredState {
    fn of(pairs: &[(StateEventType, String)], user: &UserId) -> Self {
        let mut spec = Self {
            entries: Vec::new(),
            exact: Vec::new(),
            wildcard: false,
            lazy: false,
        };
        for (kind, key) in pairs {
            let kind = (kind.to_string() != "*").then(|| kind.clone());
            let key = match key.as_str() {
                "*" => None,
                "$ME" => Some(user.to_string()),
                "$LAZY" => {
                    spec.lazy = true;
                    continue;
                }
                other => Some(other.to_owned()),
            };
            match (&kind, &key) {
                (Some(kind), Some(key)) => spec.exact.push((kind.clone(), key.clone())),
                _ => spec.wildcard = true,
            }
            spec.entries.push((kind, key));
        }
        spec
    }

    fn wants(&self, kind: &StateEventType, key: &str) -> bool {
        self.entries.iter().any(|(k, s)| {
            k.as_ref().is_none_or(|k| k == kind) && s.as_deref().is_none_or(|s| s == key)
        })
    }
}

#[cfg(test)]
#[path = "room_tests.rs"]
mod tests;
