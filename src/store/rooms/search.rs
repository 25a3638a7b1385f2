//! The full-text index behind `POST /search`: each timeline event's
//! words, so that a search reads the postings of its words in the rooms
//! asked about, not the events. Written with the event in the same
//! transaction; a redaction removes its target's words.
//!
//! `search`: `room 0xFF word 0xFF stream (u64 BE)` → one byte naming the
//! fields the word is in ([`BODY`], [`NAME`], [`TOPIC`]), then the number
//! of distinct words the event has (u16 BE, for ranking). The event is
//! the room's timeline entry at `stream`: no event ID is repeated per
//! word. Words are lowercased runs of letters and digits
//! ([`words`]); a search term matches the words it begins, so that
//! "hel" finds "hello". The empty key marks the index complete: a data
//! directory written before it existed is indexed when opened.

use std::collections::BTreeMap;

use ruma::{CanonicalJsonObject, CanonicalJsonValue};

use crate::store::{
    error::{Result, StoreError},
    key,
    tree::Tree,
};

use super::{split_record, EventMeta, RoomTrees, Status};

pub(super) const SEARCH: &str = "search";
const COMPLETE: &[u8] = b"";

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
    pub event: ruma::OwnedEventId,
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
    pub fn of(
        event: &ruma::OwnedEventId,
        pdu: &CanonicalJsonObject,
        meta: &EventMeta,
    ) -> Option<Self> {
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
            event: event.clone(),
            words: found,
        })
    }

    /// (key, value) of each word; the value `None` when `remove`.
    pub(super) fn entries(&self, remove: bool) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let count = u16::try_from(self.words.len()).unwrap_or(u16::MAX);
        self.words
            .iter()
            .map(|(word, fields)| {
                let key = key::join(&[
                    self.room.as_bytes(),
                    word.as_bytes(),
                    &self.stream.to_be_bytes(),
                ]);
                let mut value = vec![*fields];
                value.extend_from_slice(&count.to_be_bytes());
                (key, (!remove).then_some(value))
            })
            .collect()
    }
}

impl RoomTrees {
    /// The postings in `room` of every word `term` begins (itself
    /// included), in `fields`: at most `limit` read from the tree (in key
    /// order), and what is staged over them.
    pub fn postings(
        &self,
        room: &str,
        term: &str,
        fields: u8,
        limit: usize,
    ) -> Result<Vec<Posting>> {
        // `room 0xFF term`: every word that begins with the term.
        let mut prefix = key::prefix(&[room.as_bytes()]);
        prefix.extend_from_slice(term.as_bytes());
        let staged: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .staged()
            .search
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect();
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for entry in self.search.scan_prefix(&prefix) {
            let (k, v) = entry?;
            merged.insert(k.to_vec(), Some(v.to_vec()));
            if merged.len() >= limit {
                break;
            }
        }
        merged.extend(staged);
        let room_len = room.len() + 1;
        let mut postings = Vec::new();
        for (k, v) in merged {
            let Some(v) = v else { continue };
            let (Some((word, stream)), Some((&fields_here, count))) = (
                k.get(room_len..)
                    .and_then(|rest| rest.split_at_checked(rest.len().checked_sub(9)?)),
                v.split_first(),
            ) else {
                return Err(corrupt());
            };
            if fields_here & fields == 0 {
                continue;
            }
            let stream = stream
                .get(1..)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(corrupt)?;
            let count = count.try_into().map_err(|_| corrupt())?;
            postings.push(Posting {
                stream: u64::from_be_bytes(stream),
                fields: fields_here,
                words: u16::from_be_bytes(count),
                exact: word == term.as_bytes(),
            });
        }
        Ok(postings)
    }
}

fn corrupt() -> StoreError {
    StoreError::data(format!("corrupt record in tree {SEARCH}"))
}

/// Opens the index, first indexing every stored timeline event if it is
/// not complete.
pub(super) fn open(db: &crate::store::tree::Database, events: &Tree) -> sled::Result<Tree> {
    let index = db.open_tree(SEARCH)?;
    if index.contains_key(COMPLETE)? {
        return Ok(index);
    }
    let mut indexed = 0usize;
    for entry in events.iter() {
        let (id, record) = entry?;
        let Some(searchable) = split_record(&record).ok().and_then(|(meta, json)| {
            let meta = serde_json::from_slice::<EventMeta>(meta).ok()?;
            if meta.stream == 0 {
                return None;
            }
            let pdu = serde_json::from_slice::<CanonicalJsonObject>(json).ok()?;
            let id = ruma::OwnedEventId::try_from(std::str::from_utf8(&id).ok()?).ok()?;
            Searchable::of(&id, &pdu, &meta)
        }) else {
            continue;
        };
        for (key, value) in searchable.entries(false) {
            index.insert(key, value.unwrap_or_default())?;
        }
        indexed += 1;
    }
    index.insert(COMPLETE, &[])?;
    db.sled().flush()?;
    if indexed > 0 {
        tracing::info!(events = indexed, "indexed the words of stored events");
    }
    Ok(index)
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
