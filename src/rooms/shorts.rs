//! Short ids and state groups as one append sees them: event ids and
//! groups handed out during the append are kept here until it commits
//! (state key ids are assigned by the store at once), and recently used
//! groups stay decoded in a small cache.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use ruma::{events::StateEventType, state_res::StateMap, EventId, OwnedEventId};

use super::event::Pdu;
use crate::{
    error::{Error, Result},
    store::rooms::{Append, RoomTrees, ShortState, StateGroup, MAX_CHAIN},
};

fn statekey_bytes(kind: &StateEventType, key: &str) -> Vec<u8> {
    let mut bytes = kind.to_string().into_bytes();
    bytes.push(0);
    bytes.extend_from_slice(key.as_bytes());
    bytes
}

/// Recently used state groups, decoded. Groups never change once
/// committed, so entries never go stale; a linear room hits every time.
#[derive(Default)]
pub(in crate::rooms) struct GroupCache {
    entries: Mutex<std::collections::VecDeque<(u64, Arc<ShortState>)>>,
}

/// Groups kept decoded: a few rooms' current states.
const GROUP_CACHE_SIZE: usize = 8;

impl GroupCache {
    pub(in crate::rooms) fn get(&self, group: u64) -> Option<Arc<ShortState>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|(id, _)| *id == group)
            .map(|(_, state)| state.clone())
    }

    pub(in crate::rooms) fn put(&self, group: u64, state: Arc<ShortState>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(id, _)| *id != group);
        if entries.len() >= GROUP_CACHE_SIZE {
            entries.pop_front();
        }
        entries.push_back((group, state));
    }
}

/// Parsed stored events, bounded; emptied when full (a room's auth
/// events are back in it after one event).
#[derive(Default)]
pub(in crate::rooms) struct PduCache {
    entries: Mutex<HashMap<OwnedEventId, Pdu>>,
}

const PDU_CACHE_SIZE: usize = 1024;

impl PduCache {
    pub(in crate::rooms) fn get(&self, id: &EventId) -> Option<Pdu> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(id).cloned()
    }

    pub(in crate::rooms) fn put(&self, pdu: Pdu) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= PDU_CACHE_SIZE {
            entries.clear();
        }
        entries.insert(pdu.event_id.clone(), pdu);
    }
}

/// Short ids handed out during one append, committed with it.
pub(in crate::rooms) struct Shorts<'a> {
    trees: &'a RoomTrees,
    cache: Option<&'a GroupCache>,
    events: HashMap<OwnedEventId, u64>,
    groups: HashMap<u64, StateGroup>,
}

impl<'a> Shorts<'a> {
    pub(in crate::rooms) fn new(trees: &'a RoomTrees) -> Self {
        Self {
            trees,
            cache: None,
            events: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    pub(in crate::rooms) fn cached(trees: &'a RoomTrees, cache: &'a GroupCache) -> Self {
        Self {
            cache: Some(cache),
            ..Self::new(trees)
        }
    }

    pub(in crate::rooms) fn event(&mut self, id: &OwnedEventId) -> Result<u64> {
        if let Some(short) = self
            .events
            .get(id)
            .copied()
            .or(self.trees.event_short(id.as_str())?)
        {
            return Ok(short);
        }
        let short = self.trees.new_id()?;
        self.events.insert(id.clone(), short);
        Ok(short)
    }

    /// A state key's short id, assigned at once if new: state keys are
    /// shared by all rooms, so it is not left to this append's commit.
    pub(in crate::rooms) fn key(&self, kind: &StateEventType, key: &str) -> Result<u64> {
        let shorts = self
            .trees
            .statekey_shorts_or_new(&[statekey_bytes(kind, key)])?;
        shorts
            .first()
            .copied()
            .ok_or_else(|| Error::internal("no short id for a state key"))
    }

    /// A state map in short ids; its new state keys get theirs together.
    pub(in crate::rooms) fn encode(
        &mut self,
        state: &StateMap<OwnedEventId>,
    ) -> Result<ShortState> {
        let entries: Vec<_> = state.iter().collect();
        let keys: Vec<Vec<u8>> = entries
            .iter()
            .map(|((kind, key), _)| statekey_bytes(kind, key))
            .collect();
        let shorts = self.trees.statekey_shorts_or_new(&keys)?;
        entries
            .into_iter()
            .zip(shorts)
            .map(|((_, id), key)| Ok((key, self.event(id)?)))
            .collect()
    }

    pub(in crate::rooms) fn decode(&self, state: &ShortState) -> Result<StateMap<OwnedEventId>> {
        let by_short: HashMap<u64, &OwnedEventId> =
            self.events.iter().map(|(id, s)| (*s, id)).collect();
        state
            .iter()
            .map(|(key, event)| {
                let key_bytes = self.trees.short_statekey(*key)?;
                let split = key_bytes
                    .iter()
                    .position(|b| *b == 0)
                    .ok_or_else(|| Error::internal("corrupt state key"))?;
                let kind = String::from_utf8_lossy(&key_bytes[..split]).into_owned();
                let state_key = String::from_utf8_lossy(&key_bytes[split + 1..]).into_owned();
                let id = match by_short.get(event) {
                    Some(id) => (*id).clone(),
                    None => self.trees.short_event(*event)?,
                };
                Ok(((StateEventType::from(kind), state_key), id))
            })
            .collect()
    }

    /// A group's state in short ids (no per-entry decoding), shared with
    /// the cache: whoever changes it copies it first.
    pub(in crate::rooms) fn shared(&self, group: u64) -> Result<Arc<ShortState>> {
        if self.groups.contains_key(&group) {
            return Ok(self.trees.load_state(group, &self.groups).map(Arc::new)?);
        }
        if let Some(state) = self.cache.and_then(|c| c.get(group)) {
            return Ok(state);
        }
        let state = Arc::new(self.trees.load_state(group, &self.groups)?);
        if let Some(cache) = self.cache {
            cache.put(group, state.clone());
        }
        Ok(state)
    }

    /// One entry of a short-id state, decoded: what auth checks ask for.
    pub(in crate::rooms) fn lookup(
        &self,
        state: &ShortState,
        kind: &StateEventType,
        key: &str,
    ) -> Result<Option<OwnedEventId>> {
        let bytes = statekey_bytes(kind, key);
        let Some(short_key) = self.trees.statekey_short(&bytes)? else {
            return Ok(None);
        };
        let Some(short_event) = state.get(&short_key) else {
            return Ok(None);
        };
        match self.events.iter().find(|(_, s)| *s == short_event) {
            Some((id, _)) => Ok(Some(id.clone())),
            None => Ok(self.trees.short_event(*short_event).map(Some)?),
        }
    }

    pub(in crate::rooms) fn state_of(&self, group: u64) -> Result<StateMap<OwnedEventId>> {
        let short = self.trees.load_state(group, &self.groups)?;
        self.decode(&short)
    }

    /// Stores `state` as a group on `parent` (see [`Shorts::save_delta`]);
    /// reuses `parent` when nothing changed.
    pub(in crate::rooms) fn save(
        &mut self,
        parent: Option<u64>,
        state: &StateMap<OwnedEventId>,
    ) -> Result<u64> {
        let new = self.encode(state)?;
        self.save_short(parent, new)
    }

    pub(in crate::rooms) fn save_short(
        &mut self,
        parent: Option<u64>,
        new: ShortState,
    ) -> Result<u64> {
        let Some(parent) = parent else {
            return self.put(None, 0, new);
        };
        let old = self.trees.load_state(parent, &self.groups)?;
        let mut delta: ShortState = new
            .iter()
            .filter(|(k, e)| old.get(k) != Some(e))
            .map(|(k, e)| (*k, *e))
            .collect();
        delta.extend(old.keys().filter(|k| !new.contains_key(k)).map(|k| (*k, 0)));
        if delta.is_empty() {
            return Ok(parent);
        }
        self.save_delta(parent, delta)
    }

    /// The state after one state event (`key` set to `event`) on `parent`.
    pub(in crate::rooms) fn save_change(
        &mut self,
        parent: u64,
        key: u64,
        event: u64,
    ) -> Result<u64> {
        self.save_delta(parent, ShortState::from([(key, event)]))
    }

    /// Stores `delta` (changes on top of `parent`, event 0 removing a key)
    /// as a new group. Layers stay thin: a delta at least half as large as
    /// its parent's is folded into the parent's and saved a layer up, and
    /// one at least half the full snapshot's size makes a new snapshot.
    /// Each layer is thus under half the one beneath it: N changes keep
    /// at most log2(N) layers to read, and an entry is rewritten about
    /// log2(N) times rather than with every full snapshot (a 10,000-member
    /// room's joins write ~9 entries each instead of ~160).
    fn save_delta(&mut self, parent: u64, mut delta: ShortState) -> Result<u64> {
        let mut base = parent;
        loop {
            let group = self.group(base)?;
            let folds = delta.len() * 2 >= group.delta.len() || group.chain >= MAX_CHAIN;
            if !folds {
                return self.put(Some(base), group.chain + 1, delta);
            }
            let mut folded: ShortState = group.delta.into_iter().collect();
            folded.extend(delta);
            match group.parent {
                Some(up) => {
                    delta = folded;
                    base = up;
                }
                None => {
                    folded.retain(|_, event| *event != 0);
                    return self.put(None, 0, folded);
                }
            }
        }
    }

    fn group(&self, id: u64) -> Result<StateGroup> {
        match self.groups.get(&id) {
            Some(group) => Ok(group.clone()),
            None => Ok(self.trees.group(id)?),
        }
    }

    fn put(&mut self, parent: Option<u64>, chain: u32, delta: ShortState) -> Result<u64> {
        let id = self.trees.new_id()?;
        let delta = delta.into_iter().collect();
        self.groups.insert(
            id,
            StateGroup {
                parent,
                chain,
                delta,
            },
        );
        Ok(id)
    }

    pub(in crate::rooms) fn into_append(self, append: &mut Append) {
        append.new_event_shorts = self.events.into_iter().collect();
        append.groups = self.groups.into_iter().collect();
    }
}

#[cfg(test)]
mod tests;
