//! Which servers are in a room: those with a joined member in a given
//! state; and which of our users are joined, and how many members in all
//! (what push rules are evaluated for). Kept per room and updated by
//! diffing against the last state asked about, so a 10,000-member room is
//! not re-read for every event.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use ruma::{OwnedRoomId, OwnedServerName, OwnedUserId, RoomId, ServerName, UserId};

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
    /// Our joined users, with their member event's short id.
    local: BTreeMap<OwnedUserId, u64>,
}

/// Who is in a room at a state: our joined users (with their member
/// event's short id) and the number of joined members.
pub struct Audience {
    pub local: Vec<(OwnedUserId, u64)>,
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
            local: counted.local.iter().map(|(u, e)| (u.clone(), *e)).collect(),
            joined: counted.counts.values().sum(),
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
        if old.map(|e| is_join(trees, e)).transpose()? == Some(true) {
            if let Some(count) = self.counts.get_mut(&server) {
                *count -= 1;
                if *count == 0 {
                    self.counts.remove(&server);
                }
            }
        }
        let joined = match new {
            Some(event) if is_join(trees, event)? => Some(event),
            _ => None,
        };
        if let Some(event) = joined {
            if server == ours {
                self.local.insert(user.to_owned(), event);
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

fn is_join(trees: &RoomTrees, short_event: u64) -> Result<bool> {
    let id = trees.short_event(short_event)?;
    Ok(trees
        .event_json(id.as_str())?
        .and_then(|event| match event.get("content") {
            Some(ruma::CanonicalJsonValue::Object(content)) => content.get("membership").cloned(),
            _ => None,
        })
        .is_some_and(|m| m == ruma::CanonicalJsonValue::String("join".into())))
}

#[cfg(test)]
mod tests;
