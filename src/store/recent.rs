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
mod tests;
