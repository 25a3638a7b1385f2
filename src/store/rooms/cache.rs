//! What readers see before the writer gets to it: appends staged in
//! memory, and recently written metadata and short ids kept for the
//! receive path, which reads the same few again and again.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    convert::identity,
};

use crate::store::recent::Recent;

use super::{Append, EventMeta, RoomRecord, StateGroup};

/// A staged entry and the number of the append that staged it: once
/// that append is written the entry is dropped, unless a later one
/// replaced it.
pub(super) type Tagged<V> = (u64, V);

/// Appends not yet written, and what they change, for readers.
#[derive(Default)]
pub(super) struct Staged {
    /// Appends the writer has not taken yet.
    pub(super) appends: Vec<StagedAppend>,
    /// The number of the last append staged.
    pub(super) last: u64,
    /// Whether a writer task is draining `appends`.
    pub(super) writing: bool,
    /// Event ID → (JSON, metadata), outliers included.
    pub(super) events: HashMap<String, Tagged<(Vec<u8>, EventMeta)>>,
    pub(super) event_short: HashMap<String, Tagged<u64>>,
    pub(super) short_event: HashMap<u64, Tagged<String>>,
    pub(super) statekey_short: HashMap<Vec<u8>, Tagged<u64>>,
    pub(super) short_statekey: HashMap<u64, Tagged<Vec<u8>>>,
    pub(super) groups: HashMap<u64, Tagged<StateGroup>>,
    /// A room's whole extremity set once an append changed it.
    pub(super) extremities: HashMap<String, Tagged<BTreeSet<String>>>,
    /// Timeline key → event ID.
    pub(super) timeline: BTreeMap<Vec<u8>, Tagged<String>>,
    pub(super) rooms: HashMap<String, Tagged<RoomRecord>>,
    /// `auth_children` keys.
    pub(super) auth_children: BTreeMap<Vec<u8>, u64>,
    /// `relations` and `threads` entries written or removed.
    pub(super) relations: super::relations::Overlay,
    pub(super) threads: super::relations::Overlay,
    /// `notifications` entries of staged events.
    pub(super) notifications: super::relations::Overlay,
    /// Written entries the receive path reads again and again.
    pub(super) cached: Cached,
    /// How many times written entries moved from here to `cached`: a
    /// reader caches what it read from sled only if none moved since it
    /// looked, so a stale record never replaces a newer one.
    pub(super) era: u64,
}

/// Written metadata and short ids, kept so that reading them does not
/// wait for the writer (see [`Recent`]).
pub(super) struct Cached {
    pub(super) metas: Recent<String, EventMeta>,
    pub(super) event_short: Recent<String, u64>,
    pub(super) short_event: Recent<u64, String>,
    /// `None` records that a state key has no short id yet.
    pub(super) statekey_short: Recent<Vec<u8>, Option<u64>>,
    pub(super) short_statekey: Recent<u64, Vec<u8>>,
}

/// Entries per generation: a few rooms' auth events and recent events,
/// and their state keys; a few MB at most.
pub(super) const CACHED_EVENTS: usize = 2048;
pub(super) const CACHED_SHORTS: usize = 4096;

impl Default for Cached {
    fn default() -> Self {
        Self {
            metas: Recent::new(CACHED_EVENTS),
            event_short: Recent::new(CACHED_SHORTS),
            short_event: Recent::new(CACHED_SHORTS),
            statekey_short: Recent::new(CACHED_SHORTS),
            short_statekey: Recent::new(CACHED_SHORTS),
        }
    }
}

/// Moves the entries of `map` staged by appends up to `last` into `cache`.
pub(super) fn settle<K: Eq + std::hash::Hash, V, C: Clone>(
    map: &mut HashMap<K, Tagged<V>>,
    last: u64,
    cache: &mut Recent<K, C>,
    keep: impl Fn(V) -> C,
) {
    for (key, (n, value)) in std::mem::take(map) {
        if n > last {
            map.insert(key, (n, value));
        } else {
            cache.put(key, keep(value));
        }
    }
}

impl Staged {
    /// Drops what appends up to `last` staged, now that they are written,
    /// keeping metadata and short ids cached.
    pub(super) fn forget(&mut self, last: u64) {
        let cached = &mut self.cached;
        settle(&mut self.events, last, &mut cached.metas, |(_, meta)| meta);
        settle(
            &mut self.event_short,
            last,
            &mut cached.event_short,
            identity,
        );
        settle(
            &mut self.short_event,
            last,
            &mut cached.short_event,
            identity,
        );
        settle(
            &mut self.statekey_short,
            last,
            &mut cached.statekey_short,
            Some,
        );
        settle(
            &mut self.short_statekey,
            last,
            &mut cached.short_statekey,
            identity,
        );
        self.era += 1;
        self.groups.retain(|_, (n, _)| *n > last);
        self.extremities.retain(|_, (n, _)| *n > last);
        self.timeline.retain(|_, (n, _)| *n > last);
        self.rooms.retain(|_, (n, _)| *n > last);
        self.auth_children.retain(|_, n| *n > last);
        self.relations.retain(|_, (n, _)| *n > last);
        self.threads.retain(|_, (n, _)| *n > last);
        self.notifications.retain(|_, (n, _)| *n > last);
    }
}

/// An append waiting for the writer, with the extremity set it leaves
/// its room with (what the `extremities` tree must hold once written).
pub(super) struct StagedAppend {
    pub(super) append: Append,
    pub(super) extremities: Option<(String, BTreeSet<String>)>,
}

/// How far the writer got: the last append written, or why it stopped.
#[derive(Default)]
pub(super) struct Written {
    pub(super) last: u64,
    pub(super) error: Option<String>,
}
