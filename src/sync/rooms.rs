//! One room's entry in a `/sync` response: the timeline, the state up to
//! its start, ephemeral events and the room's account data.
//! Spec: client-server-api "Syncing", "Lazy-loading room members".

use std::collections::{BTreeMap, BTreeSet, HashSet};

use ruma::{
    api::client::filter::LazyLoadOptions,
    events::{room::member::MembershipState, StateEventType},
    CanonicalJsonObject, EventId, OwnedEventId, OwnedUserId, RoomId, UserId,
};
use serde_json::{json, Map, Value};

use super::{Pass, Sharing, SyncService, Token};
use crate::{
    error::Result,
    rooms::{
        client_event::{client_event, echo_transaction_id},
        reads::access::ReadAccess,
        relations::Bundler,
    },
};

/// Most events looked at for one room's timeline when filters or history
/// visibility hide many; past it the timeline is `limited`.
const MAX_SCAN: usize = 1_000;

/// A room's timeline for one response, oldest first.
pub(super) struct Timeline {
    pub(super) events: Vec<(u64, OwnedEventId, CanonicalJsonObject)>,
    pub(super) limited: bool,
    pub(super) prev_batch: Token,
}

impl Timeline {
    fn first(&self) -> Option<&EventId> {
        self.events.first().map(|(_, id, _)| id.as_ref())
    }
}

/// Where the client stands in a room: what it held at the token.
struct Standing {
    /// The position whose state the client holds; `None` when it needs
    /// the whole state (initial sync, `full_state`, new to the room, or
    /// the room's partial state completed since).
    held: Option<u64>,
    /// Joined since the token (not merely completed).
    newly_joined: bool,
}

impl SyncService {
    /// A joined room's entry, or none when nothing in it changed.
    pub(super) fn joined_room(
        &self,
        pass: &Pass<'_>,
        room: &RoomId,
        sharing: &mut Sharing,
    ) -> Result<Option<Value>> {
        let since = pass.since_position();
        let account_data = self.room_account_data(pass, room, pass.since.is_none());
        let ephemeral = if pass.room_ephemeral_changed(self.edus.last_change_in(room)) {
            self.ephemeral(pass, room)?
        } else {
            Vec::new()
        };
        let anything_new = !self
            .rooms
            .timeline_between(room, since, pass.now.position + 1, 1, true)?
            .is_empty();
        let completed = pass.since.is_some() && self.rooms.state_completed_at(room)? > since;
        let quiet = ephemeral.is_empty() && account_data.is_empty();
        if pass.since.is_some() && !anything_new && !completed && !pass.full_state && quiet {
            return Ok(None);
        }
        let standing = self.standing(pass, room, completed)?;
        // A room new to the user shows its recent history as far as
        // visibility allows, as on an initial sync (Synapse does too).
        let after = if standing.newly_joined { 0 } else { since };
        let timeline = self.timeline(pass, room, after, pass.now.position + 1)?;
        let account_data = if standing.held.is_none() && pass.since.is_some() {
            self.room_account_data(pass, room, true)
        } else {
            account_data
        };
        let members_changed = standing.held.is_none()
            || timeline.limited
            || timeline.events.iter().any(|(_, _, pdu)| is_member(pdu));
        if members_changed && pass.since.is_some() {
            self.note_sharing(pass, room, standing.held.is_none(), sharing)?;
        }
        let mut senders = senders_of(&timeline, pass.user, standing.held.is_none());
        // Counts and heroes, when the members may have changed: all of the
        // timeline since the token is here otherwise, and names none.
        let summary = if members_changed {
            let summary = self.rooms.summary(room, pass.user)?;
            // A lazy-loading client needs the heroes' names too.
            senders.extend(summary.heroes.iter().cloned());
            summary_json(&summary)
        } else {
            json!({})
        };
        let state = self.state_block(pass, room, &timeline, standing.held, &senders)?;
        let mut entry = json!({
            "timeline": self.timeline_json(pass, room, &timeline)?,
            "state": {"events": state},
            "ephemeral": {"events": ephemeral},
            "account_data": {"events": account_data},
            "summary": summary,
        });
        self.add_unread(pass, room, &mut entry)?;
        Ok(Some(entry))
    }

    /// `unread_notifications` (all threads, or the main timeline only for
    /// a client that counts threads apart, with `unread_thread_notifications`).
    /// Spec: client-server-api "Receiving notifications".
    fn add_unread(&self, pass: &Pass<'_>, room: &RoomId, entry: &mut Value) -> Result<()> {
        let unread = self.rooms.unread(pass.user, room)?;
        let counts = |(notifications, highlights): (u64, u64)| json!({"notification_count": notifications, "highlight_count": highlights});
        if pass.filter.thread_counts() {
            entry["unread_notifications"] = counts(unread.main);
            if !unread.threads.is_empty() {
                let threads: serde_json::Map<String, Value> = unread
                    .threads
                    .into_iter()
                    .map(|(root, n)| (root.to_string(), counts(n)))
                    .collect();
                entry["unread_thread_notifications"] = threads.into();
            }
        } else {
            let all = unread
                .threads
                .values()
                .fold(unread.main, |(n, h), (tn, th)| (n + tn, h + th));
            entry["unread_notifications"] = counts(all);
        }
        Ok(())
    }

    /// A room the user left or was banned from since the token (or ever,
    /// on an initial sync with `include_leave`): the timeline up to and
    /// including their leave, and the state before it.
    pub(super) fn left_room(&self, pass: &Pass<'_>, room: &RoomId) -> Result<Option<Value>> {
        let left_at = self.rooms.member_position(room, pass.user)?;
        let since = pass.since_position();
        if (pass.since.is_some() && left_at <= since) || left_at > pass.now.position {
            return Ok(None);
        }
        let standing = self.standing(pass, room, false)?;
        let timeline = self.timeline(pass, room, since, left_at + 1)?;
        let senders = senders_of(&timeline, pass.user, standing.held.is_none());
        let state = self.state_block(pass, room, &timeline, standing.held, &senders)?;
        let account_data = self.room_account_data(pass, room, standing.held.is_none());
        Ok(Some(json!({
            "timeline": self.timeline_json(pass, room, &timeline)?,
            "state": {"events": state},
            "account_data": {"events": account_data},
        })))
    }

    /// What the client held of the room at the token.
    fn standing(&self, pass: &Pass<'_>, room: &RoomId, completed: bool) -> Result<Standing> {
        let Some(since) = pass.since else {
            return Ok(Standing {
                held: None,
                newly_joined: false,
            });
        };
        let was_joined = self.rooms.membership_at(room, pass.user, since.position)?
            == Some(MembershipState::Join);
        let whole = pass.full_state || !was_joined || completed;
        Ok(Standing {
            held: (!whole).then_some(since.position),
            newly_joined: !was_joined,
        })
    }

    /// The newest events in positions `(after, before)` that the user may
    /// see and the filter lets through, up to the filter's limit.
    pub(super) fn timeline(
        &self,
        pass: &Pass<'_>,
        room: &RoomId,
        after: u64,
        before: u64,
    ) -> Result<Timeline> {
        let limit = pass.filter.timeline_limit();
        let mut picked = Vec::new();
        let mut upper = before;
        let mut scanned = 0;
        let mut exhausted = false;
        while picked.len() <= limit && scanned < MAX_SCAN && !exhausted {
            let batch = self
                .rooms
                .timeline_between(room, after, upper, limit + 1, true)?;
            exhausted = batch.len() <= limit;
            let Some((oldest, _)) = batch.first() else {
                break;
            };
            upper = *oldest;
            for (position, id) in batch.into_iter().rev() {
                scanned += 1;
                if !self.rooms.visible_to(&id, pass.user)? {
                    continue;
                }
                let pdu = self.rooms.event_object(&id)?;
                if pass.filter.timeline_allows(room, &pdu) {
                    picked.push((position, id, pdu));
                    if picked.len() > limit {
                        break;
                    }
                }
            }
        }
        let limited = picked.len() > limit || !exhausted;
        picked.truncate(limit);
        picked.reverse();
        let start = picked.first().map_or(before, |(p, _, _)| *p);
        Ok(Timeline {
            events: picked,
            limited,
            prev_batch: Token::at(start.saturating_sub(1)),
        })
    }

    /// The timeline block; a `limited` one's events carry their bundled
    /// aggregations (the client cannot have seen all children), read as
    /// the timeline itself is, under the member's visibility.
    pub(super) fn timeline_json(
        &self,
        pass: &Pass<'_>,
        room: &RoomId,
        timeline: &Timeline,
    ) -> Result<Value> {
        let mut events = Vec::with_capacity(timeline.events.len());
        let access = ReadAccess::Member;
        let bundler = (timeline.limited && !pass.filter.federation_format())
            .then(|| Bundler::new(&self.rooms, room, pass.user, &access));
        for (_, id, pdu) in &timeline.events {
            let mut event = self.format(pass, id, pdu);
            if !pass.filter.federation_format() {
                echo_transaction_id(&self.accounts, &mut event, pass.user, pass.device)?;
            }
            if let Some(bundler) = &bundler {
                bundler.bundle(&mut event)?;
            }
            if is_member(pdu) {
                self.mark_member_sent(pass, pdu, id);
            }
            events.push(event);
        }
        Ok(json!({
            "events": events,
            "limited": timeline.limited,
            "prev_batch": timeline.prev_batch.to_string(),
        }))
    }

    /// The state at the start of the timeline less what the client held
    /// and what the timeline carries; when lazy-loading members, only
    /// those of `senders` (and, after a gap, whoever joined or left in it).
    fn state_block(
        &self,
        pass: &Pass<'_>,
        room: &RoomId,
        timeline: &Timeline,
        held: Option<u64>,
        senders: &BTreeSet<OwnedUserId>,
    ) -> Result<Vec<Value>> {
        let in_timeline: HashSet<&EventId> = timeline
            .events
            .iter()
            .map(|(_, id, _)| id.as_ref())
            .collect();
        let lazy = pass.filter.lazy_members();
        let mut listed: HashSet<OwnedUserId> = HashSet::new();
        let mut state = Vec::new();
        for ((kind, key), id) in self.rooms.sync_state(room, timeline.first(), held)? {
            if in_timeline.contains::<EventId>(&id) {
                continue;
            }
            if kind == StateEventType::RoomMember && !lazy.is_disabled() {
                let Ok(member) = <&UserId>::try_from(key.as_str()) else {
                    continue;
                };
                // A gap's membership changes are news; others only for senders.
                if held.is_none() && !senders.contains(member) {
                    continue;
                }
                listed.insert(member.to_owned());
            }
            let pdu = self.rooms.event_object(&id)?;
            if pass.filter.state_allows(room, &pdu) {
                if is_member(&pdu) {
                    self.mark_member_sent(pass, &pdu, &id);
                }
                state.push(self.format(pass, &id, &pdu));
            }
        }
        if let LazyLoadOptions::Enabled {
            include_redundant_members,
        } = lazy
        {
            if held.is_some() {
                for member in senders.iter().filter(|s| !listed.contains(*s)) {
                    let Some(id) = self.rooms.state_at_start(
                        room,
                        timeline.first(),
                        &StateEventType::RoomMember,
                        member.as_str(),
                    )?
                    else {
                        continue;
                    };
                    let sent = self
                        .lazy
                        .was_sent(pass.user, pass.device, room, member, &id);
                    if in_timeline.contains::<EventId>(&id) || (sent && !include_redundant_members)
                    {
                        continue;
                    }
                    let pdu = self.rooms.event_object(&id)?;
                    self.mark_member_sent(pass, &pdu, &id);
                    state.push(self.format(pass, &id, &pdu));
                }
            }
        }
        Ok(state)
    }

    fn mark_member_sent(&self, pass: &Pass<'_>, pdu: &CanonicalJsonObject, id: &EventId) {
        let room = pdu
            .get("room_id")
            .and_then(|r| r.as_str())
            .and_then(|r| <&RoomId>::try_from(r).ok());
        let member = pdu
            .get("state_key")
            .and_then(|k| k.as_str())
            .and_then(|k| <&UserId>::try_from(k).ok());
        if let (Some(room), Some(member)) = (room, member) {
            self.lazy
                .mark_sent(pass.user, pass.device, room, member, id);
        }
    }

    /// An event as the filter's `event_format` asks: the client form, or
    /// the PDU as servers exchange it.
    fn format(&self, pass: &Pass<'_>, id: &EventId, pdu: &CanonicalJsonObject) -> Value {
        if pass.filter.federation_format() {
            serde_json::to_value(pdu).unwrap_or(Value::Null)
        } else {
            client_event(id, pdu, false)
        }
    }

    /// The room's account data written since the token (all of it when
    /// `all`), as the filter allows.
    fn room_account_data(&self, pass: &Pass<'_>, room: &RoomId, all: bool) -> Vec<Value> {
        pass.room_data
            .get(room.as_str())
            .into_iter()
            .flatten()
            .filter(|(kind, data)| {
                (all || data.position > pass.since_position())
                    && data.position <= pass.now.position
                    && pass.filter.room_account_data_allows(room, kind)
            })
            .map(|(kind, data)| json!({"type": kind, "content": data.content}))
            .collect()
    }

    /// Typing and receipts of a room, as `m.typing` and `m.receipt`, as
    /// the filter allows; private receipts only the user's own.
    pub(super) fn ephemeral(&self, pass: &Pass<'_>, room: &RoomId) -> Result<Vec<Value>> {
        let mut events = Vec::new();
        if pass.filter.ephemeral_allows(room, "m.typing") {
            let typing = self.edus.typing_in(room);
            events.push(json!({"type": "m.typing", "content": {"user_ids": typing}}));
        }
        if !pass.filter.ephemeral_allows(room, "m.receipt") {
            return Ok(events);
        }
        // Only what changed since the token (all of it on an initial or
        // full-state sync, or when the counter restarted with the process).
        let since = pass.ephemeral_since().filter(|_| !pass.full_state);
        let mut receipts: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for (kind, user, receipt) in self.edus.receipts_since(room, since)? {
            let (kind, user, receipt) = (kind.as_str(), user.as_str(), &receipt);
            if kind == "m.read.private" && user != pass.user.as_str() {
                continue;
            }
            // Stored per user and type; clients want event → type → user.
            let Some(events) = receipt.get("event_ids").and_then(Value::as_array) else {
                continue;
            };
            for event in events.iter().filter_map(Value::as_str) {
                let by_type = receipts.entry(event.to_owned()).or_default();
                let users = by_type.entry(kind.to_owned()).or_insert_with(|| json!({}));
                users[user] = receipt.get("data").cloned().unwrap_or(json!({}));
            }
        }
        if !receipts.is_empty() {
            events.push(json!({"type": "m.receipt", "content": receipts}));
        }
        Ok(events)
    }
}

fn is_member(pdu: &CanonicalJsonObject) -> bool {
    pdu.get("type").and_then(|t| t.as_str()) == Some("m.room.member")
}

/// The timeline's senders, and the syncing user when the client needs
/// the whole state (a lazy-loading client still needs its own membership).
fn senders_of(timeline: &Timeline, user: &UserId, whole: bool) -> BTreeSet<OwnedUserId> {
    let mut senders = BTreeSet::new();
    if whole {
        senders.insert(user.to_owned());
    }
    for (_, _, pdu) in &timeline.events {
        if let Some(sender) = pdu
            .get("sender")
            .and_then(|s| s.as_str())
            .and_then(|s| OwnedUserId::try_from(s).ok())
        {
            senders.insert(sender);
        }
    }
    senders
}

/// A room's `summary`: `m.heroes` only when the room has no name to show.
fn summary_json(summary: &crate::rooms::reads::summary::Summary) -> Value {
    let mut json = json!({
        "m.joined_member_count": summary.joined,
        "m.invited_member_count": summary.invited,
    });
    if !summary.heroes.is_empty() {
        json["m.heroes"] = json!(summary.heroes);
    }
    json
}
