//! Recent key changes in memory, by position: which users' keys changed
//! in a range, without reading every user that shares a room. Complete
//! from the `floor` on: at open, the newest change stored (every later
//! change is recorded here as it is made); raised when the oldest entries
//! are dropped past [`MAX_KEPT`]. Below the floor, callers read the store.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use ruma::{OwnedUserId, UserId};

/// Most changes kept.
const MAX_KEPT: usize = 100_000;

#[derive(Default)]
struct Log {
    floor: u64,
    by_position: BTreeMap<u64, Vec<OwnedUserId>>,
    len: usize,
}

#[derive(Clone, Default)]
pub struct RecentChanges(Arc<Mutex<Log>>);

impl RecentChanges {
    /// Complete after `floor` (the newest change already stored).
    pub fn from(floor: u64) -> Self {
        Self(Arc::new(Mutex::new(Log {
            floor,
            ..Log::default()
        })))
    }

    pub fn record(&self, user: &UserId, position: u64) {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        log.by_position
            .entry(position)
            .or_default()
            .push(user.to_owned());
        log.len += 1;
        while log.len > MAX_KEPT {
            let Some((position, users)) = log.by_position.pop_first() else {
                break;
            };
            log.len -= users.len();
            log.floor = log.floor.max(position);
        }
    }

    /// The users whose keys changed at positions in `(from, to]`; `None`
    /// when the log does not reach back to `from`.
    pub fn between(&self, from: u64, to: u64) -> Option<Vec<OwnedUserId>> {
        let log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if from < log.floor || from >= to {
            return (from >= log.floor).then(Vec::new);
        }
        let mut users: Vec<OwnedUserId> = log
            .by_position
            .range(from + 1..=to)
            .flat_map(|(_, users)| users.iter().cloned())
            .collect();
        users.sort();
        users.dedup();
        Some(users)
    }
}

#[cfg(test)]
#[path = "recent_changes_tests.rs"]
mod tests;
