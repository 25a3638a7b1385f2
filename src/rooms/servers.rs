//! Which servers are in a room: those with a joined member in a given
//! state; and which of our users are joined, and how many members in all
//! (what push rules are evaluated for). Kept per room and updated by
//! diffing against the last state asked about, so a 10,000-member room is
//! not re-read for every event.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use ruma::{
    CanonicalJsonValue, OwnedRoomId, OwnedServerName, OwnedUserId, RoomId, ServerName, UserId,
};

use crate::{
    error::Result,
    store::rooms::{RoomTrees, ShortState},
};

pub struct JoinedServers {
    ours: OwnedServerName,
    rooms: Mutex<HashMap<OwnedRoomId, Counted>>,
}

#[derive(Default)]
struct Counted {
    /// The state last asked about, shared with the state-group cache.
    state: Arc<ShortState>,
    /// Joined members per server.
    counts: HashMap<OwnedServerName, usize>,
    /// Our joined users, with their display name in the room: read once
    /// as their member event enters the state, not for every event that
    /// push rules are evaluated on.
    local: BTreeMap<OwnedUserId, Option<String>>,
}

/// Who is in a room at a state: our joined users (with their display
/// name) and the number of joined members.
pub struct Audience {
    pub local: Vec<(OwnedUserId, Option<String>)>,
    pub joined: usize,
}

const MEMBER_PREFIX: &[u8] = b"m.room.member\0";

impl JoinedServers {
    pub fn new(ours: OwnedServerName) -> Self {
        Self {
            ours,
            rooms: Mutex::default(),
        }
    }

    /// Our joined users and the joined count in `state`.
    pub fn audience(
        &self,
        trees: &RoomTrees,
        room: &RoomId,
        state: &Arc<ShortState>,
    ) -> Result<Audience> {
        self.with_counted(trees, room, state, |counted| Audience {
            local: counted
                .local
                .iter()
                .map(|(u, n)| (u.clone(), n.clone()))
                .collect(),
            joined: counted.counts.values().sum(),
        })
    }

    /// Whether any of our users joined in `state` passes `test`.
    pub fn any_local(
        &self,
        trees: &RoomTrees,
        room: &RoomId,
        state: &Arc<ShortState>,
        test: impl Fn(&UserId) -> bool,
    ) -> Result<bool> {
        self.with_counted(trees, room, state, |counted| {
            counted.local.keys().any(|user| test(user))
        })
    }

    /// `read` of the room's counts brought up to `state`.
    fn with_counted<T>(
        &self,
        trees: &RoomTrees,
        room: &RoomId,
        state: &Arc<ShortState>,
        read: impl FnOnce(&Counted) -> T,
    ) -> Result<T> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let counted = rooms.entry(room.to_owned()).or_default();
        if !Arc::ptr_eq(&counted.state, state) {
            for (key, old, new) in differences(&counted.state, state) {
                counted.count(trees, &self.ours, key, old, new)?;
            }
            counted.state = state.clone();
        }
        Ok(read(counted))
    }

    /// The servers with at least one joined member in `state`.
    pub fn in_state(
        &self,
        trees: &RoomTrees,
        room: &RoomId,
        state: &Arc<ShortState>,
    ) -> Result<BTreeSet<OwnedServerName>> {
        self.with_counted(trees, room, state, |counted| {
            counted.counts.keys().cloned().collect()
        })
    }
}

impl Counted {
    /// Accounts for one state entry going from `old` to `new`.
    pub(in crate::rooms) fn count(
        &mut self,
        trees: &RoomTrees,
        ours: &ServerName,
        key: u64,
        old: Option<u64>,
        new: Option<u64>,
    ) -> Result<()> {
        let statekey = trees.short_statekey(key)?;
        let Some(user) = statekey.strip_prefix(MEMBER_PREFIX) else {
            return Ok(());
        };
        let Some(user) = std::str::from_utf8(user)
            .ok()
            .and_then(|u| <&UserId>::try_from(u).ok())
        else {
            return Ok(());
        };
        let server = user.server_name().to_owned();
        if server == ours {
            self.local.remove(user);
        }
        let was_joined = old.map(|e| joined_as(trees, e)).transpose()?.flatten();
        if was_joined.is_some() {
            if let Some(count) = self.counts.get_mut(&server) {
                *count -= 1;
                if *count == 0 {
                    self.counts.remove(&server);
                }
            }
        }
        if let Some(name) = new.map(|e| joined_as(trees, e)).transpose()?.flatten() {
            if server == ours {
                self.local.insert(user.to_owned(), name);
            }
            *self.counts.entry(server).or_default() += 1;
        }
        Ok(())
    }
}

/// The entries that differ between two states, as (key, old, new), found
/// by walking both sorted maps once: a state event's state differs from
/// the last one asked about by an entry or two, out of thousands.
fn differences(old: &ShortState, new: &ShortState) -> Vec<(u64, Option<u64>, Option<u64>)> {
    let (mut old, mut new) = (old.iter().peekable(), new.iter().peekable());
    let mut changed = Vec::new();
    loop {
        match (old.peek().copied(), new.peek().copied()) {
            (None, None) => return changed,
            (Some((k, o)), Some((l, n))) if k == l => {
                if o != n {
                    changed.push((*k, Some(*o), Some(*n)));
                }
                old.next();
                new.next();
            }
            (Some((k, o)), Some((l, _))) if k < l => {
                changed.push((*k, Some(*o), None));
                old.next();
            }
            (Some((k, o)), None) => {
                changed.push((*k, Some(*o), None));
                old.next();
            }
            (_, Some((l, n))) => {
                changed.push((*l, None, Some(*n)));
                new.next();
            }
        }
    }
}

/// For a member event that joins: `Some` of its display name.
fn joined_as(trees: &RoomTrees, short_event: u64) -> Result<Option<Option<String>>> {
    let id = trees.short_event(short_event)?;
    let Some(event) = trees.event_json(id.as_str())? else {
        return Ok(None);
    };
    let Some(CanonicalJsonValue::Object(content)) = event.get("content") else {
        return Ok(None);
    };
    if content.get("membership") != Some(&CanonicalJsonValue::String("join".into())) {
        return Ok(None);
    }
    Ok(Some(match content.get("displayname") {
        Some(CanonicalJsonValue::String(name)) => Some(name.clone()),
        _ => None,
    }))
}

#[cfg(test)]
mod tests;
