//! Upgrades of data directories written by earlier versions, run when
//! the trees are opened.

use super::{join_record, EVENTS};
use sled::{transaction::ConflictableTransactionError, Transactional};

use crate::store::tree::{Database, Tree};

/// The former `event_meta` tree (event ID → JSON [`EventMeta`]), merged
/// into `events` when a data directory written before is opened.
pub(super) const EVENT_META: &str = "event_meta";
/// Events merged per transaction by that migration.
pub(super) const MERGE_BATCH: usize = 1000;
/// Opens `events`, first merging the former `event_meta` tree into it, a
/// batch per transaction: an interrupted merge resumes where it stopped
/// (an event still in `event_meta` still has its bare JSON in `events`).
pub(super) fn merge_event_meta(db: &Database) -> sled::Result<Tree> {
    let events = db.sled().open_tree(EVENTS)?;
    if !db
        .sled()
        .tree_names()
        .iter()
        .any(|name| name == EVENT_META.as_bytes())
    {
        return Ok(db.wrap(events));
    }
    let old = db.sled().open_tree(EVENT_META)?;
    loop {
        let batch = old
            .iter()
            .take(MERGE_BATCH)
            .collect::<sled::Result<Vec<_>>>()?;
        if batch.is_empty() {
            break;
        }
        (&events, &old)
            .transaction(|(events, old)| {
                for (id, meta) in &batch {
                    // Metadata without its event has nothing to describe.
                    if let Some(json) = events.get(id)? {
                        events.insert(id, join_record(meta, &json))?;
                    }
                    old.remove(id)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => e,
                sled::transaction::TransactionError::Abort(()) => {
                    sled::Error::Unsupported("event metadata merge aborted".into())
                }
            })?;
    }
    db.sled().drop_tree(EVENT_META)?;
    db.sled().flush()?;
    Ok(db.wrap(events))
}

/// Drops the per-user notification entries (`u`, `n`) the first layout of
/// `notifications` wrote, before one record per event: what they counted
/// starts over as read.
pub(super) fn drop_per_user_notifications(tree: &Tree) -> sled::Result<()> {
    for family in [b"u", b"n"] {
        let mut batch = sled::Batch::default();
        for entry in tree.scan_prefix(crate::store::key::prefix(&[family])) {
            batch.remove(entry?.0);
        }
        tree.apply_batch(batch)?;
    }
    Ok(())
}
