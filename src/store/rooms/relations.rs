//! The relations index (client-server-api "Forming relationships between
//! events"): a parent's children and a room's threads as range reads, not
//! scans of the room. Entries are written with the event they index, in
//! the same transaction; a redaction removes its target's entries (a
//! redacted event relates to nothing).
//!
//! `relations`: `room 0xFF parent 0xFF stream (u64 BE) child` →
//! `rel_type 0xFF event type 0xFF sender [0xFF annotation key]`, for every
//! accepted event whose cleartext `content.m.relates_to` names a
//! `rel_type` and a parent (stream 0 for events outside the timeline,
//! which sort first). The room leads the key: an event of another room
//! claiming a parent never shows among its children. The empty key marks
//! the index complete: a data directory written before it existed is
//! indexed when opened.
//!
//! `threads`: `room 0xFF stream (u64 BE) root` → empty: an entry per
//! thread reply, so a root's newest entry is its latest activity.

use std::collections::BTreeMap;

use ruma::{CanonicalJsonObject, CanonicalJsonValue, OwnedEventId};

use crate::store::{
    error::{Result, StoreError},
    key,
    tree::Tree,
};

use super::{split_record, EventMeta, RoomTrees, Status};

pub(super) const RELATIONS: &str = "relations";
pub(super) const THREADS: &str = "threads";
/// Present once every stored event is indexed.
const COMPLETE: &[u8] = b"";

pub const THREAD: &str = "m.thread";

/// What a child says of its relation to its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub rel_type: String,
    pub event_type: String,
    pub sender: String,
    /// An annotation's key (a reaction's emoji).
    pub key: Option<String>,
}

/// One child of a parent, as the index holds it.
#[derive(Debug, Clone)]
pub struct Child {
    pub stream: u64,
    pub id: OwnedEventId,
    pub relation: Relation,
}

/// An entry of the index: the child `child` at `stream` relates to
/// `parent` in `room`.
#[derive(Debug, Clone)]
pub struct Related {
    pub room: ruma::OwnedRoomId,
    pub parent: OwnedEventId,
    pub stream: u64,
    pub child: OwnedEventId,
    pub relation: Relation,
}

/// Entries a write adds (`Some` value) or removes (`None`), per tree.
pub(super) type Overlay = BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)>;

impl Relation {
    fn to_bytes(&self) -> Vec<u8> {
        let mut parts = vec![
            self.rel_type.as_bytes(),
            self.event_type.as_bytes(),
            self.sender.as_bytes(),
        ];
        parts.extend(self.key.as_deref().map(str::as_bytes));
        key::join(&parts)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut parts = bytes.split(|b| *b == key::SEP).map(|part| {
            std::str::from_utf8(part)
                .map(str::to_owned)
                .map_err(|_| corrupt())
        });
        let mut next = || parts.next().ok_or_else(corrupt)?;
        Ok(Self {
            rel_type: next()?,
            event_type: next()?,
            sender: next()?,
            key: parts.next().transpose()?,
        })
    }
}

fn corrupt() -> StoreError {
    StoreError::data(format!("corrupt record in tree {RELATIONS}"))
}

/// The parent and relation an event's cleartext `m.relates_to` states,
/// if it names both a `rel_type` and an `event_id`. Rich replies
/// (`m.in_reply_to` alone) are not relations the server aggregates.
pub fn relation_of(pdu: &CanonicalJsonObject) -> Option<(OwnedEventId, Relation)> {
    let text = |value: Option<&CanonicalJsonValue>| match value {
        Some(CanonicalJsonValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let Some(CanonicalJsonValue::Object(content)) = pdu.get("content") else {
        return None;
    };
    let Some(CanonicalJsonValue::Object(relates)) = content.get("m.relates_to") else {
        return None;
    };
    let parent = OwnedEventId::try_from(text(relates.get("event_id"))?).ok()?;
    let rel_type = text(relates.get("rel_type"))?;
    let relation = Relation {
        key: (rel_type == "m.annotation")
            .then(|| text(relates.get("key")))
            .flatten(),
        rel_type,
        event_type: text(pdu.get("type"))?,
        sender: text(pdu.get("sender"))?,
    };
    Some((parent, relation))
}

impl Related {
    /// The entry an appended event makes, if it relates to another.
    pub fn of(child: &OwnedEventId, pdu: &CanonicalJsonObject, meta: &EventMeta) -> Option<Self> {
        if meta.status != Status::Accepted || pdu.contains_key("state_key") {
            return None;
        }
        let (parent, relation) = relation_of(pdu)?;
        Some(Self {
            room: meta.room_id.clone(),
            parent,
            stream: meta.stream,
            child: child.clone(),
            relation,
        })
    }

    fn relation_key(&self) -> Vec<u8> {
        child_key(
            self.room.as_str(),
            self.parent.as_str(),
            self.stream,
            self.child.as_str(),
        )
    }

    fn thread_key(&self) -> Option<Vec<u8>> {
        (self.relation.rel_type == THREAD).then(|| {
            let mut stream_root = self.stream.to_be_bytes().to_vec();
            stream_root.extend_from_slice(self.parent.as_bytes());
            key::join(&[self.room.as_bytes(), &stream_root])
        })
    }

    /// What writing (`add`) or removing this entry changes in each tree.
    pub(super) fn changes(&self, add: bool) -> Changes {
        let relation = add.then(|| self.relation.to_bytes());
        Changes {
            relations: vec![(self.relation_key(), relation)],
            threads: self
                .thread_key()
                .map(|k| (k, add.then(Vec::new)))
                .into_iter()
                .collect(),
        }
    }
}

/// Index entries to write (`Some`) or remove (`None`).
#[derive(Default)]
pub(super) struct Changes {
    pub(super) relations: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub(super) threads: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn child_key(room: &str, parent: &str, stream: u64, child: &str) -> Vec<u8> {
    let mut stream_child = stream.to_be_bytes().to_vec();
    stream_child.extend_from_slice(child.as_bytes());
    key::join(&[room.as_bytes(), parent.as_bytes(), &stream_child])
}

/// The stream and event ID at the end of a key, after `prefix`.
fn stream_and_id(prefix: &[u8], key: &[u8]) -> Result<(u64, OwnedEventId)> {
    let rest = key.get(prefix.len()..).ok_or_else(corrupt)?;
    let (stream, id) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let id = std::str::from_utf8(id)
        .ok()
        .and_then(|id| OwnedEventId::try_from(id).ok())
        .ok_or_else(corrupt)?;
    Ok((u64::from_be_bytes(*stream), id))
}

/// Where a walk through a parent's children or a room's threads starts:
/// after (or, walking back, before) this stream position and event ID
/// (an empty ID: before every event at the position).
pub type Position = (u64, String);

impl RoomTrees {
    /// Walks the children of `parent` from `after` (exclusive; the first
    /// or, when `back`, the last when `None`), until `visit` says stop.
    pub fn walk_children<E: From<StoreError>>(
        &self,
        room: &str,
        parent: &str,
        from: Option<&Position>,
        back: bool,
        mut visit: impl FnMut(Child) -> Result<bool, E>,
    ) -> Result<(), E> {
        let prefix = key::prefix(&[room.as_bytes(), parent.as_bytes()]);
        let start = from.map(|(stream, id)| child_key(room, parent, *stream, id));
        let range = bounds(&prefix, start, back);
        let staged = staged_in(&self.staged().relations, &range);
        walk(&self.relations, staged, range, back, |key, value| {
            let (stream, id) = stream_and_id(&prefix, key)?;
            let relation = Relation::from_bytes(value)?;
            visit(Child {
                stream,
                id,
                relation,
            })
        })
    }

    /// Walks a room's thread replies newest first from `before`
    /// (exclusive), giving each reply's position and root, until `visit`
    /// says stop.
    pub fn walk_thread_replies<E: From<StoreError>>(
        &self,
        room: &str,
        before: Option<&Position>,
        mut visit: impl FnMut(u64, OwnedEventId) -> Result<bool, E>,
    ) -> Result<(), E> {
        let prefix = key::prefix(&[room.as_bytes()]);
        let start = before.map(|(stream, root)| {
            let mut stream_root = stream.to_be_bytes().to_vec();
            stream_root.extend_from_slice(root.as_bytes());
            key::join(&[room.as_bytes(), &stream_root])
        });
        let range = bounds(&prefix, start, true);
        let staged = staged_in(&self.staged().threads, &range);
        walk(&self.threads, staged, range, true, |key, _| {
            let (stream, root) = stream_and_id(&prefix, key)?;
            visit(stream, root)
        })
    }
}

pub(super) type Range = (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>);

/// The keys under `prefix` after `start` (exclusive), or before it when
/// walking `back`.
pub(super) fn bounds(prefix: &[u8], start: Option<Vec<u8>>, back: bool) -> Range {
    use std::ops::Bound::{Excluded, Included};
    let mut end = prefix.to_vec();
    end.push(key::SEP);
    match (start, back) {
        (Some(start), false) => (Excluded(start), Excluded(end)),
        (Some(start), true) => (Included(prefix.to_vec()), Excluded(start)),
        (None, _) => (Included(prefix.to_vec()), Excluded(end)),
    }
}

/// A copy of the staged entries in `range`, taken under the staging
/// lock, which the walk does not hold (its visitor reads the store).
fn staged_in(staged: &Overlay, range: &Range) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    staged
        .range(range.clone())
        .map(|(k, (_, v))| (k.clone(), v.clone()))
        .collect()
}

/// Walks the keys in `range`, the staged entries (read before the tree:
/// one written meanwhile is then seen in both, and the staged copy wins)
/// over what is written, forward or back.
pub(super) fn walk<E: From<StoreError>>(
    tree: &Tree,
    staged: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    range: Range,
    back: bool,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, E>,
) -> Result<(), E> {
    let stored = tree.range(range);
    let stored: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if back {
        Box::new(stored.rev())
    } else {
        Box::new(stored)
    };
    let mut overlay = staged;
    if back {
        overlay.reverse();
    }
    let mut overlay = overlay.into_iter();
    let mut stored = stored.peekable();
    let mut pending = overlay.next();
    loop {
        let next_stored = match stored.peek() {
            Some(Ok((k, _))) => Some(k.to_vec()),
            Some(Err(_)) => {
                stored.next().transpose().map_err(StoreError::from)?;
                continue;
            }
            None => None,
        };
        let take_staged = match (&pending, &next_stored) {
            (Some((sk, _)), Some(k)) => {
                if back {
                    sk >= k
                } else {
                    sk <= k
                }
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return Ok(()),
        };
        let (k, v) = if take_staged {
            let Some((k, v)) = pending.take() else {
                return Ok(());
            };
            pending = overlay.next();
            if next_stored.as_deref() == Some(k.as_slice()) {
                stored.next();
            }
            match v {
                Some(v) => (k, v),
                None => continue,
            }
        } else {
            match stored.next() {
                Some(entry) => {
                    let (k, v) = entry.map_err(StoreError::from)?;
                    (k.to_vec(), v.to_vec())
                }
                None => return Ok(()),
            }
        };
        if !visit(&k, &v)? {
            return Ok(());
        }
    }
}

/// Opens both trees, first indexing every stored event if the index is
/// not complete (a data directory from before it).
pub(super) fn open(db: &crate::store::tree::Database, events: &Tree) -> sled::Result<(Tree, Tree)> {
    let relations = db.open_tree(RELATIONS)?;
    let threads = db.open_tree(THREADS)?;
    if relations.contains_key(COMPLETE)? {
        return Ok((relations, threads));
    }
    let mut indexed = 0usize;
    for entry in events.iter() {
        let (id, record) = entry?;
        let Some(related) = split_record(&record).ok().and_then(|(meta, json)| {
            let meta = serde_json::from_slice::<EventMeta>(meta).ok()?;
            let pdu = serde_json::from_slice::<CanonicalJsonObject>(json).ok()?;
            let id = OwnedEventId::try_from(std::str::from_utf8(&id).ok()?).ok()?;
            Related::of(&id, &pdu, &meta)
        }) else {
            continue;
        };
        let changes = related.changes(true);
        for (key, value) in changes.relations {
            relations.insert(key, value.unwrap_or_default())?;
        }
        for (key, _) in changes.threads {
            threads.insert(key, &[])?;
        }
        indexed += 1;
    }
    relations.insert(COMPLETE, &[])?;
    db.sled().flush()?;
    if indexed > 0 {
        tracing::info!(relations = indexed, "indexed relations between events");
    }
    Ok((relations, threads))
}

#[cfg(test)]
#[path = "relations_tests.rs"]
mod tests;
