//! The auth DAG walked backwards: which state events cite an event among
//! their `auth_events`. State resolution asks whether an event of one
//! fork is in the auth chain of the state every fork shares; walking up
//! from that event to a shared one costs as much as the fork, where
//! walking down from the shared state costs as much as the room.
//!
//! `auth_children`: `auth event ID 0xFF citing event ID` → empty, for
//! every stored state event that is not rejected, outliers included.
//! Messages are left out (a state's auth chain holds only state events),
//! and so are rejected events (no accepted event cites one): no path down
//! from a state's events runs through either. Event IDs are UTF-8, which
//! never holds the byte 0xFF. The empty key marks the index complete: a
//! data directory written before it existed is indexed when opened, and
//! an interrupted indexing starts over.

use crate::store::tree::Tree;
use serde::Deserialize;

use super::{split_record, EventMeta, Status};
use crate::store::error::{Result, StoreError};

pub(super) const AUTH_CHILDREN: &str = "auth_children";
/// Present once every stored event is indexed.
const COMPLETE: &[u8] = b"";

pub(super) fn key(auth_event: &str, child: &str) -> Vec<u8> {
    crate::store::key::join(&[auth_event.as_bytes(), child.as_bytes()])
}

pub(super) fn prefix(auth_event: &str) -> Vec<u8> {
    crate::store::key::prefix(&[auth_event.as_bytes()])
}

/// The citing event's ID in a key under `prefix`.
pub(super) fn child_of(prefix: &[u8], key: &[u8]) -> Result<String> {
    std::str::from_utf8(&key[prefix.len()..])
        .map(str::to_owned)
        .map_err(|_| StoreError::data(format!("corrupt key in tree {AUTH_CHILDREN}")))
}

/// The fields of a stored event the index needs. `auth_events` holds IDs
/// from room version 3 and `[ID, hashes]` pairs before.
#[derive(Deserialize)]
struct Cites {
    #[serde(default)]
    state_key: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    auth_events: Vec<serde_json::Value>,
}

/// Opens the index, first building it from `events` if it is not complete.
pub(super) fn open(db: &crate::store::tree::Database, events: &Tree) -> sled::Result<Tree> {
    let index = db.open_tree(AUTH_CHILDREN)?;
    if index.contains_key(COMPLETE)? {
        return Ok(index);
    }
    let mut indexed = 0usize;
    for entry in events.iter() {
        let (id, record) = entry?;
        let Some((meta, cites)) = split_record(&record).ok().and_then(|(meta, json)| {
            let meta = serde_json::from_slice::<EventMeta>(meta).ok()?;
            Some((meta, serde_json::from_slice::<Cites>(json).ok()?))
        }) else {
            continue;
        };
        let (Ok(child), Some(_), false) = (
            std::str::from_utf8(&id),
            cites.state_key,
            matches!(meta.status, Status::Rejected(_)),
        ) else {
            continue;
        };
        for auth in &cites.auth_events {
            let auth = match auth {
                serde_json::Value::String(id) => Some(id.as_str()),
                serde_json::Value::Array(pair) => pair.first().and_then(|id| id.as_str()),
                _ => None,
            };
            if let Some(auth) = auth {
                index.insert(key(auth, child), &[])?;
            }
        }
        indexed += 1;
    }
    index.insert(COMPLETE, &[])?;
    db.sled().flush()?;
    if indexed > 0 {
        tracing::info!(state_events = indexed, "indexed the auth DAG backwards");
    }
    Ok(index)
}
