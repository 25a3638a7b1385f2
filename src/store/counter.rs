//! `counters`: counter name (UTF-8) → u64 BE, the ceiling below which the
//! counter has handed out ids. Ids (short ids, state groups, stream
//! positions, to-device sequence numbers) come from one counter of our
//! own rather than sled's `generate_id`, which lives outside the trees: a
//! backup or an export carries the trees, and a restored server must
//! hand out ids above every one it holds.

use std::sync::{Arc, Mutex};

use super::{
    error::Result,
    tree::{Database, Tree},
    u64_value,
};

pub(super) const COUNTERS: &str = "counters";
/// The one counter hearth uses.
const IDS: &str = "ids";
/// Ids reserved per write of the ceiling.
const BLOCK: u64 = 10_000;

#[derive(Clone)]
pub struct Counter {
    tree: Tree,
    /// (next id, ceiling stored)
    state: Arc<Mutex<(u64, u64)>>,
}

impl Counter {
    /// Opens the counter, starting above every id handed out before: at
    /// the stored ceiling, or (a data directory from before the counter)
    /// above sled's generator.
    pub(super) fn open(db: &Database) -> sled::Result<Self> {
        let tree = db.open_tree(COUNTERS)?;
        let ceiling = match tree.get(IDS)? {
            Some(bytes) => {
                u64_value(COUNTERS, &bytes).map_err(|e| sled::Error::Unsupported(e.to_string()))?
            }
            None => db.sled().generate_id()? + 1,
        };
        Ok(Self {
            tree,
            state: Arc::new(Mutex::new((ceiling, ceiling))),
        })
    }

    /// A fresh id, above every id handed out before (also across crashes:
    /// a record that uses it is written after the ceiling that covers it,
    /// and sled recovers a prefix of the writes).
    pub fn next(&self) -> Result<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (next, ceiling) = *state;
        if next >= ceiling {
            let raised = next + BLOCK;
            self.tree.insert(IDS, &raised.to_be_bytes())?;
            state.1 = raised;
        }
        state.0 = next + 1;
        Ok(next)
    }
}

#[cfg(test)]
mod tests;
