//! A small two-generation cache of written entries.
//!
//! Why: once sled has run a transaction, every read takes a process-wide
//! lock that a transaction holds while it commits, so a read of a tree
//! waits for the event writer. The receive path reads the same few
//! records for every event (the room's auth events, its last event, the
//! short ids of the state keys it checks); keeping them here lets it run
//! while the writer commits.
//!
//! Entries live in a young and an old generation; a hit in the old one
//! moves the entry back to the young one, and when the young one is full
//! it becomes the old one (dropping the previous old one). Entries used
//! often thus stay, and at most `2 × capacity` are kept.

use std::{borrow::Borrow, collections::HashMap, hash::Hash};

pub(super) struct Recent<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            young: HashMap::new(),
            old: HashMap::new(),
            capacity,
        }
    }

    pub(super) fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if let Some(value) = self.young.get(key) {
            return Some(value.clone());
        }
        let (key, value) = self.old.remove_entry(key)?;
        self.put(key, value.clone());
        Some(value)
    }

    pub(super) fn put(&mut self, key: K, value: V) {
        self.old.remove(&key);
        self.young.insert(key, value);
        if self.young.len() >= self.capacity {
            self.old = std::mem::take(&mut self.young);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn keeps_what_is_used_and_bounds_the_rest() {
        let mut recent = Recent::new(4);
        recent.put(0, "hot");
        for n in 1..100 {
            recent.put(n, "cold");
            // Read after every insert: the hot entry is never dropped.
            assert_eq!(recent.get(&0), Some("hot"), "after {n} inserts");
        }
        assert!(recent.young.len() + recent.old.len() <= 8);
        assert_eq!(recent.get(&1), None, "an old cold entry is dropped");
        assert_eq!(recent.get(&99), Some("cold"));
    }

    #[test]
    fn a_later_put_replaces_an_older_value() {
        let mut recent = Recent::new(2);
        recent.put("k", 1);
        recent.put("other", 0);
        // "k" is now in the old generation; the new value must win.
        recent.put("k", 2);
        assert_eq!(recent.get("k"), Some(2));
        recent.put("x", 0);
        recent.put("y", 0);
        assert_eq!(recent.get("k"), Some(2));
    }
}
