//! Which servers are in a room: those with a joined member in a given
//! state. Kept per room and updated by diffing against the last state
//! asked about, so a 10,000-member room is not re-read for every event.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Mutex,
};

use ruma::{OwnedRoomId, OwnedServerName, RoomId, UserId};

use crate::{
    error::Result,
    store::rooms::{RoomTrees, ShortState},
};

#[derive(Default)]
pub struct JoinedServers {
    rooms: Mutex<HashMap<OwnedRoomId, Counted>>,
}

#[derive(Default)]
struct Counted {
    state: ShortState,
    /// Joined members per server.
    counts: HashMap<OwnedServerName, usize>,
}

const MEMBER_PREFIX: &[u8] = b"m.room.member\0";

impl JoinedServers {
    /// The servers with at least one joined member in `state`.
    pub fn in_state(
        &self,
        trees: &RoomTrees,
        room: &RoomId,
        state: &ShortState,
    ) -> Result<BTreeSet<OwnedServerName>> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let counted = rooms.entry(room.to_owned()).or_default();
        let changed: Vec<(u64, Option<u64>, Option<u64>)> = state
            .iter()
            .filter(|(key, event)| counted.state.get(key) != Some(event))
            .map(|(key, event)| (*key, counted.state.get(key).copied(), Some(*event)))
            .chain(
                counted
                    .state
                    .iter()
                    .filter(|(key, _)| !state.contains_key(key))
                    .map(|(key, event)| (*key, Some(*event), None)),
            )
            .collect();
        for (key, old, new) in changed {
            let statekey = trees.short_statekey(key)?;
            let Some(user) = statekey.strip_prefix(MEMBER_PREFIX) else {
                continue;
            };
            let Some(server) = std::str::from_utf8(user)
                .ok()
                .and_then(|u| <&UserId>::try_from(u).ok())
                .map(|u| u.server_name().to_owned())
            else {
                continue;
            };
            if old.map(|e| is_join(trees, e)).transpose()? == Some(true) {
                if let Some(count) = counted.counts.get_mut(&server) {
                    *count -= 1;
                    if *count == 0 {
                        counted.counts.remove(&server);
                    }
                }
            }
            if new.map(|e| is_join(trees, e)).transpose()? == Some(true) {
                *counted.counts.entry(server).or_default() += 1;
            }
        }
        counted.state = state.clone();
        Ok(counted.counts.keys().cloned().collect())
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
