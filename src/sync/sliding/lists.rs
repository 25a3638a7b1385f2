//! The rooms a sliding sync answer may carry: the user's rooms (from the
//! per-user index, and invites to rooms we do not hold), each list's
//! filters applied, sorted by recency, its ranges taken; and the rooms the
//! client subscribed to. A room matched by several rules gets the largest
//! timeline limit and every required state entry of them.
//! Spec: MSC4186 "Lists and subscriptions", "Combining room configs".

use std::{
    borrow::Cow,
    cmp::Reverse,
    collections::{BTreeMap, HashMap, HashSet},
};

use ruma::{
    api::client::sync::sync_events::v5::{self, request::ListFilters},
    directory::RoomTypeFilter,
    events::{room::member::MembershipState, StateEventType},
    OwnedRoomId, RoomId, UserId,
};
use serde_json::Value;

use super::{connection::Sent, ExtraFilters, ListExtras};
use crate::{
    error::{Error, Result},
    rooms::client_event::stripped,
    store::accounts::AccountData,
    sync::SyncService,
};

/// Most lists, and most ranges of one list, a request may hold.
const MAX_LISTS: usize = 100;
/// Most timeline events one room gets in one answer.
pub(super) const MAX_TIMELINE: usize = 100;
/// Most room subscriptions a request may hold.
const MAX_SUBSCRIPTIONS: usize = 1_000;
/// Most `required_state` entries of one list or subscription, and most
/// spaces or tags one list filters on: each costs lookups per room.
const MAX_ENTRIES: usize = 100;

/// A room of the user's that lists may show.
pub(super) struct Candidate {
    pub room: OwnedRoomId,
    pub membership: MembershipState,
    /// The position of the user's member event.
    pub since: u64,
    /// What the list is sorted by: the last message-like event for a
    /// joined room (or the join, if later), else the membership.
    pub bump: u64,
    /// The position of a joined room's last event (0 for other rooms).
    pub last: u64,
    /// For an invite or knock to a room we do not hold: the stripped
    /// state its record keeps.
    pub pending: Option<Vec<Value>>,
}

/// A room the answer may carry, with its combined config: the one rule's
/// `required_state` as the request holds it, merged only when several
/// rules select the room.
pub(super) struct Wanted<'r> {
    pub timeline_limit: usize,
    pub required_state: Cow<'r, [(StateEventType, String)]>,
}

/// What the lists and subscriptions select, by index into the candidates
/// (rather than by room ID: a pass over a thousand rooms neither hashes
/// nor copies one).
#[derive(Default)]
pub(super) struct Selection<'r> {
    pub counts: BTreeMap<String, usize>,
    /// Each candidate's config, where selected.
    pub rooms: Vec<Option<Wanted<'r>>>,
    /// The candidates within each list's ranges, in the list's order.
    pub in_lists: BTreeMap<String, Vec<usize>>,
    pub subscribed: Vec<usize>,
}

/// The user's account data a filter reads: DM rooms and room tags.
pub(super) struct Marks {
    pub direct: HashSet<OwnedRoomId>,
    tags: HashMap<String, HashSet<String>>,
}

impl Marks {
    pub(super) fn of(data: &[(String, String, AccountData)]) -> Self {
        let mut direct = HashSet::new();
        let mut tags: HashMap<String, HashSet<String>> = HashMap::new();
        for (room, kind, data) in data {
            match (room.is_empty(), kind.as_str()) {
                (true, "m.direct") => {
                    let rooms = data
                        .content
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.values());
                    direct.extend(
                        rooms
                            .filter_map(Value::as_array)
                            .flatten()
                            .filter_map(Value::as_str)
                            .filter_map(|r| OwnedRoomId::try_from(r).ok()),
                    );
                }
                (false, "m.tag") => {
                    let names = data.content["tags"].as_object().into_iter().flatten();
                    tags.entry(room.clone())
                        .or_default()
                        .extend(names.map(|(name, _)| name.clone()));
                }
                _ => {}
            }
        }
        Self { direct, tags }
    }
}

impl SyncService {
    /// The user's rooms a list may show: joined, invited, knocked; a room
    /// left or banned from only when this connection was sent it before
    /// it was left (once: the client learns of the leave).
    pub(super) fn candidates(&self, user: &UserId, base: &Sent) -> Result<Vec<Candidate>> {
        let mut found = Vec::new();
        for entry in self.rooms.rooms_of(user)? {
            let shown = match entry.membership {
                MembershipState::Join | MembershipState::Invite | MembershipState::Knock => true,
                _ => base.rooms.get(&entry.room).is_some_and(|sent| {
                    !matches!(
                        sent.membership,
                        MembershipState::Leave | MembershipState::Ban
                    )
                }),
            };
            if shown {
                found.push(Candidate {
                    room: entry.room,
                    membership: entry.membership,
                    since: entry.since,
                    bump: entry.since,
                    last: 0,
                    pending: None,
                });
            }
        }
        let joined: Vec<usize> = (0..found.len())
            .filter(|&i| found[i].membership == MembershipState::Join)
            .collect();
        let ids: Vec<&RoomId> = joined.iter().map(|&i| found[i].room.as_ref()).collect();
        let activities = self.rooms.activities(&ids)?;
        for (i, activity) in joined.into_iter().zip(activities) {
            found[i].bump = activity.bump.max(found[i].since);
            found[i].last = activity.last;
        }
        let pending = self.rooms.pending_records_of(user)?;
        if !pending.is_empty() {
            let held: HashSet<OwnedRoomId> = found.iter().map(|c| c.room.clone()).collect();
            for pending in pending {
                let membership = MembershipState::from(pending.membership.as_str());
                let open = matches!(membership, MembershipState::Invite | MembershipState::Knock);
                if !open || held.contains(&pending.room_id) {
                    continue;
                }
                let mut state: Vec<Value> = pending.room_state.iter().map(stripped).collect();
                state.push(stripped(&pending.event));
                found.push(Candidate {
                    room: pending.room_id,
                    membership,
                    since: pending.position,
                    bump: pending.position,
                    last: 0,
                    pending: Some(state),
                });
            }
        }
        Ok(by_recency(found))
    }

    /// Applies the request's lists and subscriptions to `candidates`.
    pub(super) fn select<'r>(
        &self,
        request: &'r v5::Request,
        extras: &ListExtras,
        candidates: &[Candidate],
        marks: &Marks,
    ) -> Result<Selection<'r>> {
        if request.lists.len() > MAX_LISTS || request.room_subscriptions.len() > MAX_SUBSCRIPTIONS {
            return Err(Error::invalid_param(format!(
                "at most {MAX_LISTS} lists and {MAX_SUBSCRIPTIONS} room subscriptions"
            )));
        }
        let mut selection = Selection {
            rooms: candidates.iter().map(|_| None).collect(),
            ..Selection::default()
        };
        // Spaces the user is not joined to are ignored.
        let by_space = request.lists.keys().any(|name| {
            extras
                .filters_of(name)
                .is_some_and(|e| !e.spaces.is_empty())
        });
        let joined: HashSet<&OwnedRoomId> = candidates
            .iter()
            .filter(|c| by_space && c.membership == MembershipState::Join)
            .map(|c| &c.room)
            .collect();
        for (name, list) in &request.lists {
            if list.ranges.len() > MAX_LISTS {
                return Err(Error::invalid_param(format!(
                    "list {name}: at most {MAX_LISTS} ranges"
                )));
            }
            let extra = extras.filters_of(name);
            let extra_len = extra.map_or(0, |e| {
                e.spaces.len().max(e.tags.len()).max(e.not_tags.len())
            });
            if list.room_details.required_state.len() > MAX_ENTRIES || extra_len > MAX_ENTRIES {
                return Err(Error::invalid_param(format!(
                    "list {name}: at most {MAX_ENTRIES} required_state entries, spaces or tags"
                )));
            }
            let mut matching = Vec::new();
            for (i, candidate) in candidates.iter().enumerate() {
                if self.passes(candidate, (list.filters.as_ref(), extra), marks, &joined)? {
                    matching.push(i);
                }
            }
            selection.counts.insert(name.clone(), matching.len());
            let mut in_list = Vec::new();
            for (from, to) in &list.ranges {
                let from = usize::try_from(u64::from(*from)).unwrap_or(usize::MAX);
                let to = usize::try_from(u64::from(*to)).unwrap_or(usize::MAX);
                in_list.extend(matching.iter().skip(from).take(to.saturating_sub(from) + 1));
            }
            // Overlapping ranges name a room once.
            in_list.sort_unstable();
            in_list.dedup();
            let details = &list.room_details;
            for &i in &in_list {
                add(
                    &mut selection.rooms[i],
                    u64::from(details.timeline_limit),
                    &details.required_state,
                );
            }
            selection.in_lists.insert(name.clone(), in_list);
        }
        if !request.room_subscriptions.is_empty() {
            let ours: HashMap<&OwnedRoomId, usize> = candidates
                .iter()
                .enumerate()
                .map(|(i, c)| (&c.room, i))
                .collect();
            for (room, subscription) in &request.room_subscriptions {
                if subscription.required_state.len() > MAX_ENTRIES {
                    return Err(Error::invalid_param(format!(
                        "subscription {room}: at most {MAX_ENTRIES} required_state entries"
                    )));
                }
                // Rooms the user is not in (nor invited to) are ignored.
                let Some(&i) = ours.get(room) else {
                    continue;
                };
                add(
                    &mut selection.rooms[i],
                    u64::from(subscription.timeline_limit),
                    &subscription.required_state,
                );
                selection.subscribed.push(i);
            }
            selection.subscribed.sort_unstable();
        }
        Ok(selection)
    }

    /// Whether a room passes a list's filters (all of those given).
    fn passes(
        &self,
        candidate: &Candidate,
        (filters, extra): (Option<&ListFilters>, Option<&ExtraFilters>),
        marks: &Marks,
        joined: &HashSet<&OwnedRoomId>,
    ) -> Result<bool> {
        let room = &candidate.room;
        if let Some(filters) = filters {
            let invited = candidate.membership == MembershipState::Invite;
            if filters.is_invite.is_some_and(|wanted| wanted != invited) {
                return Ok(false);
            }
            let dm = marks.direct.contains(room);
            if filters.is_dm.is_some_and(|wanted| wanted != dm) {
                return Ok(false);
            }
            if let Some(wanted) = filters.is_encrypted {
                if wanted != self.is_encrypted(candidate)? {
                    return Ok(false);
                }
            }
            if !filters.room_types.is_empty() || !filters.not_room_types.is_empty() {
                let kind = self.room_type(candidate)?;
                let named =
                    |list: &[RoomTypeFilter]| list.iter().any(|f| f.as_str() == kind.as_deref());
                if named(&filters.not_room_types)
                    || (!filters.room_types.is_empty() && !named(&filters.room_types))
                {
                    return Ok(false);
                }
            }
        }
        if let Some(extra) = extra {
            let tags = marks.tags.get(room.as_str());
            let tagged =
                |names: &[String]| names.iter().any(|t| tags.is_some_and(|s| s.contains(t)));
            if tagged(&extra.not_tags) || (!extra.tags.is_empty() && !tagged(&extra.tags)) {
                return Ok(false);
            }
            let spaces: Vec<&OwnedRoomId> =
                extra.spaces.iter().filter(|s| joined.contains(s)).collect();
            if !extra.spaces.is_empty() && !self.in_spaces(room, &spaces)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn is_encrypted(&self, candidate: &Candidate) -> Result<bool> {
        match &candidate.pending {
            Some(state) => Ok(state.iter().any(|e| e["type"] == "m.room.encryption")),
            None => Ok(self
                .rooms
                .state_event_id(&candidate.room, &StateEventType::RoomEncryption, "")?
                .is_some()),
        }
    }

    /// The `type` of the room's create event (spaces: `m.space`).
    fn room_type(&self, candidate: &Candidate) -> Result<Option<String>> {
        let content = match &candidate.pending {
            Some(state) => state
                .iter()
                .find(|e| e["type"] == "m.room.create")
                .map(|e| e["content"].clone()),
            None => self
                .rooms
                .state_event(&candidate.room, &StateEventType::RoomCreate, "")?
                .and_then(|(_, event)| serde_json::to_value(event.get("content")).ok()),
        };
        Ok(content.and_then(|c| c["type"].as_str().map(str::to_owned)))
    }

    /// Whether one of `spaces` (joined by the user: their state is ours)
    /// names `room` as a child.
    fn in_spaces(&self, room: &RoomId, spaces: &[&OwnedRoomId]) -> Result<bool> {
        for space in spaces {
            let child = self
                .rooms
                .state_event(space, &StateEventType::SpaceChild, room.as_str());
            if let Ok(Some((_, event))) = child {
                // A child event without `via` is a removed child.
                let via = event
                    .get("content")
                    .and_then(|c| c.as_object())
                    .and_then(|c| c.get("via"));
                if via.is_some() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// Most recent first, ties in a stable order. Sorts small keys, then
/// moves each candidate once (rather than in every swap of the sort).
fn by_recency(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut order: Vec<(Reverse<u64>, usize)> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (Reverse(c.bump), i))
        .collect();
    order.sort_unstable_by(|a, b| {
        let by_room = || candidates[a.1].room.cmp(&candidates[b.1].room);
        a.0.cmp(&b.0).then_with(by_room)
    });
    let mut slots: Vec<Option<Candidate>> = candidates.into_iter().map(Some).collect();
    order.iter().filter_map(|&(_, i)| slots[i].take()).collect()
}

/// Adds a rule's config to what a room already has.
fn add<'r>(
    wanted: &mut Option<Wanted<'r>>,
    timeline_limit: u64,
    required_state: &'r [(StateEventType, String)],
) {
    let limit = usize::try_from(timeline_limit)
        .unwrap_or(MAX_TIMELINE)
        .min(MAX_TIMELINE);
    match wanted {
        None => {
            *wanted = Some(Wanted {
                timeline_limit: limit,
                required_state: Cow::Borrowed(required_state),
            })
        }
        Some(wanted) => {
            wanted.timeline_limit = wanted.timeline_limit.max(limit);
            for entry in required_state {
                if !wanted.required_state.contains(entry) {
                    wanted.required_state.to_mut().push(entry.clone());
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "lists_tests.rs"]
mod tests;
