//! The full-text index behind `POST /search`: each timeline event's
//! words, so that a search reads the postings of its words in the rooms
//! asked about, not the events.
//!
//! Written in blocks: the postings of the newest events wait in memory
//! (the tail, read by searches like the rest) until [`FLUSH_EVENTS`]
//! events have come, then go to the tree in one batch, one record per
//! room and word, never rewritten. A posting written one key at a time
//! would cost a random leaf write per word of every message, which sled
//! turned into four times the database's size on disk (measured in
//! `benches/search.rs`); a block costs a few bytes per word.
//!
//! `search`: `room 0xFF word 0xFF first stream (u64 BE)` → the postings
//! of that word in that room among one flush's events, in stream order:
//! each a varint stream delta (from the key's, then from the previous),
//! a byte naming the fields the word is in ([`BODY`], [`NAME`],
//! [`TOPIC`]) and a varint count of the event's distinct words (for
//! ranking). The empty key holds the last stream in a block (u64 BE):
//! events after it are taken into the tail again at start. Words are
//! lowercased runs of letters and digits ([`words`]); a search term
//! matches the words it begins, so that "hel" finds "hello". Redacted
//! events stay in their blocks and are left out when read
//! (`rooms::search`).

use std::collections::BTreeMap;

use ruma::{CanonicalJsonObject, CanonicalJsonValue};

use crate::store::{
    error::{Result, StoreError},
    key,
    tree::Tree,
};

use ruma::OwnedEventId;

use super::{EventMeta, RoomTrees, Status};

pub(super) const SEARCH: &str = "search";

/// Field bits: `content.body`, `content.name`, `content.topic`.
pub const BODY: u8 = 1;
pub const NAME: u8 = 2;
pub const TOPIC: u8 = 4;

/// Words indexed per event at most, and the longest word kept (in
/// chars): a hostile message of a million words costs no more than this.
const MAX_WORDS: usize = 512;
const MAX_WORD: usize = 40;

/// An event's entry in the index: its words, the fields each is in.
#[derive(Debug, Clone)]
pub struct Searchable {
    pub room: ruma::OwnedRoomId,
    pub stream: u64,
    pub words: BTreeMap<String, u8>,
}

/// One posting of a word in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    pub stream: u64,
    pub fields: u8,
    /// How many distinct words the event has.
    pub words: u16,
    /// Whether the word is the term itself, not a longer word it begins.
    pub exact: bool,
}

/// The lowercased words of a text: runs of letters and digits, at most
/// [`MAX_WORD`] chars each (longer runs are cut).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .take(MAX_WORD)
                .flat_map(char::to_lowercase)
                .collect()
        })
}

impl Searchable {
    /// The entry an appended event makes, if it is in the timeline and
    /// has text to find.
    pub fn of(pdu: &CanonicalJsonObject, meta: &EventMeta) -> Option<Self> {
        if meta.status != Status::Accepted || meta.outlier {
            return None;
        }
        let Some(CanonicalJsonValue::Object(content)) = pdu.get("content") else {
            return None;
        };
        let mut found: BTreeMap<String, u8> = BTreeMap::new();
        for (field, bit) in [("body", BODY), ("name", NAME), ("topic", TOPIC)] {
            if let Some(CanonicalJsonValue::String(text)) = content.get(field) {
                for word in words(text) {
                    if found.len() >= MAX_WORDS && !found.contains_key(&word) {
                        break;
                    }
                    *found.entry(word).or_default() |= bit;
                }
            }
        }
        (!found.is_empty()).then(|| Self {
            room: meta.room_id.clone(),
            stream: meta.stream,
            words: found,
        })
    }
}

/// Events whose postings wait in memory at most before they are written.
pub const FLUSH_EVENTS: usize = 1_000;
const WATERMARK: &[u8] = b"";

/// The index: written blocks and the tail.
pub struct SearchIndex {
    tree: Tree,
    tail: std::sync::Mutex<Tail>,
}

/// One event's posting of a word: its stream, the fields, its word count.
type Entry = (u64, u8, u16);

/// Postings not yet written, by room and word.
#[derive(Default)]
struct Tail {
    postings: BTreeMap<(String, String), Vec<Entry>>,
    events: usize,
    last: u64,
}

impl SearchIndex {
    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes an event's words (events come in stream order); writes the
    /// tail as blocks once it holds [`FLUSH_EVENTS`] events.
    pub(super) fn add(&self, event: &Searchable) -> Result<()> {
        let mut tail = self.tail();
        let count = u16::try_from(event.words.len()).unwrap_or(u16::MAX);
        for (word, fields) in &event.words {
            tail.postings
                .entry((event.room.to_string(), word.clone()))
                .or_default()
                .push((event.stream, *fields, count));
        }
        tail.events += 1;
        tail.last = tail.last.max(event.stream);
        if tail.events >= FLUSH_EVENTS {
            let full = std::mem::take(&mut *tail);
            self.write(full, &mut tail)?;
        }
        Ok(())
    }

    /// Writes a full tail as blocks with the new watermark, in one batch.
    /// Readers see the tail until the batch is in the tree: `held` keeps
    /// it locked meanwhile.
    fn write(&self, full: Tail, held: &mut Tail) -> Result<()> {
        let mut batch = sled::Batch::default();
        for ((room, word), postings) in &full.postings {
            let Some(&(first, ..)) = postings.first() else {
                continue;
            };
            let key = key::join(&[room.as_bytes(), word.as_bytes(), &first.to_be_bytes()]);
            batch.insert(key, encode_block(first, postings));
        }
        batch.insert(WATERMARK, &full.last.to_be_bytes());
        if let Err(e) = self.tree.apply_batch(batch) {
            // Kept in memory: the next flush tries again.
            *held = full;
            return Err(e.into());
        }
        held.last = full.last;
        Ok(())
    }

    /// The postings in `room` of every word `term` begins (itself
    /// included), in `fields`: at most `limit` read from the tree, and
    /// the tail's.
    pub fn postings(
        &self,
        room: &str,
        term: &str,
        fields: u8,
        limit: usize,
    ) -> Result<Vec<Posting>> {
        let mut postings = Vec::new();
        let mut keep = |stream, here: u8, words, exact| {
            if here & fields != 0 {
                postings.push(Posting {
                    stream,
                    fields: here,
                    words,
                    exact,
                });
            }
        };
        {
            let tail = self.tail();
            let from = (room.to_owned(), term.to_owned());
            for ((r, word), list) in tail.postings.range(from..) {
                if r != room || !word.starts_with(term) {
                    break;
                }
                for &(stream, here, words) in list {
                    keep(stream, here, words, word == term);
                }
            }
        }
        // `room 0xFF term`: every word that begins with the term.
        let mut prefix = key::prefix(&[room.as_bytes()]);
        prefix.extend_from_slice(term.as_bytes());
        let mut read = 0;
        for entry in self.tree.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let word = k
                .get(prefix.len() - term.len()..k.len().saturating_sub(9))
                .ok_or_else(corrupt)?;
            let first = k
                .get(k.len().saturating_sub(8)..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(corrupt)?;
            for (stream, here, words) in decode_block(first, &v)? {
                keep(stream, here, words, word == term.as_bytes());
                read += 1;
            }
            if read >= limit {
                break;
            }
        }
        Ok(postings)
    }
}

/// A block's postings: stream deltas, fields, word counts.
fn encode_block(first: u64, postings: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(postings.len() * 4);
    let mut previous = first;
    for &(stream, fields, words) in postings {
        crate::store::varint::put(&mut out, stream.saturating_sub(previous));
        out.push(fields);
        crate::store::varint::put(&mut out, u64::from(words));
        previous = stream;
    }
    out
}

fn decode_block(first: u64, mut bytes: &[u8]) -> Result<Vec<Entry>> {
    let mut postings = Vec::new();
    let mut stream = first;
    while !bytes.is_empty() {
        let delta = crate::store::varint::take(&mut bytes).ok_or_else(corrupt)?;
        let (&fields, rest) = bytes.split_first().ok_or_else(corrupt)?;
        bytes = rest;
        let words = crate::store::varint::take(&mut bytes).ok_or_else(corrupt)?;
        stream = stream.checked_add(delta).ok_or_else(corrupt)?;
        postings.push((stream, fields, u16::try_from(words).unwrap_or(u16::MAX)));
    }
    Ok(postings)
}

fn corrupt() -> StoreError {
    StoreError::data(format!("corrupt record in tree {SEARCH}"))
}

/// Opens the index. Events after its watermark (all of them in a data
/// directory from before it) are taken into the tail by
/// [`RoomTrees::catch_up_search`].
pub(super) fn open(db: &crate::store::tree::Database) -> sled::Result<SearchIndex> {
    let tree = db.open_tree(SEARCH)?;
    let last = tree
        .get(WATERMARK)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes);
    if last == 0 && tree.iter().next().is_some() {
        // An index in an older layout: built again.
        for key in tree.iter().keys() {
            tree.remove(key?)?;
        }
    }
    Ok(SearchIndex {
        tree,
        tail: std::sync::Mutex::new(Tail {
            last,
            ..Tail::default()
        }),
    })
}

impl RoomTrees {
    /// The search postings of `room`'s events (see [`SearchIndex::postings`]).
    pub fn postings(
        &self,
        room: &str,
        term: &str,
        fields: u8,
        limit: usize,
    ) -> Result<Vec<Posting>> {
        self.search.postings(room, term, fields, limit)
    }

    /// Takes the timeline events after the index's watermark into it, in
    /// stream order: those of the last run's tail, or every event of a
    /// data directory from before the index.
    pub(super) fn catch_up_search(&self) -> Result<()> {
        let after = self.search.tail().last;
        let mut pending: Vec<(u64, OwnedEventId)> = Vec::new();
        for room in self.room_ids()? {
            pending.extend(self.timeline_between(
                room.as_str(),
                after,
                u64::MAX,
                usize::MAX,
                false,
            )?);
        }
        pending.sort();
        let indexed = pending.len();
        for (_, id) in pending {
            let (Some(meta), Some(pdu)) =
                (self.event_meta(id.as_str())?, self.event_json(id.as_str())?)
            else {
                continue;
            };
            if let Some(searchable) = Searchable::of(&pdu, &meta) {
                self.search.add(&searchable)?;
            }
        }
        if indexed > 1_000 {
            tracing::info!(events = indexed, "indexed the words of stored events");
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
