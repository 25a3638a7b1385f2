//! The write-behind writer: staged appends written in batches, each in
//! one sled transaction over every room tree, while the next events are
//! checked; [`RoomTrees::flush`] waits for what is staged and syncs it.

use std::collections::{BTreeSet, HashMap};

use ruma::OwnedEventId;
use sled::{transaction::TransactionalTree, Transactional};

use crate::store::encode;
use crate::store::error::{Result, StoreError};

use super::{
    cache::{Staged, StagedAppend},
    event_record,
    relations::Changes,
    room_key, room_prefix, Append, RoomTrees, TxResult,
};

impl RoomTrees {
    /// Stages one append: readable at once, and handed to the writer,
    /// which writes it atomically (with whatever else is staged by then);
    /// durable once a later [`Self::flush`] returns.
    /// An append with `timeline` set gets its position (and its outbound
    /// queue entries their sequence number) here.
    pub fn commit(&self, append: Append) -> Result<()> {
        self.commit_with(append, |_| {})
    }

    /// [`Self::commit`], calling `staged` with an event's position once it
    /// is readable and before the position is published (what indexes it
    /// in memory must not lag a sync woken by it). `staged` runs under the
    /// staging lock: it must not read the store.
    pub fn commit_with(&self, mut append: Append, staged_at: impl FnOnce(u64)) -> Result<()> {
        // Refused before it is staged: nothing piles up in memory while
        // the disk is full.
        if !self.events.writable() {
            return Err(StoreError::Full);
        }
        let mut staged = self.staged();
        if append.timeline.is_some() {
            let stream = self.new_id()?;
            append.timeline = Some(stream);
            if let Some((_, _, meta)) = &mut append.event {
                meta.stream = stream;
            }
            for (_, seq) in &mut append.outbound {
                *seq = stream;
            }
            // The event's own entries; outliers have no position.
            for related in &mut append.related {
                if append
                    .event
                    .as_ref()
                    .is_some_and(|(id, ..)| *id == related.child)
                {
                    related.stream = stream;
                }
            }
            if let Some(notified) = &mut append.notified {
                notified.stream = stream;
            }
            if let Some(searchable) = &mut append.searchable {
                searchable.stream = stream;
                // Under the staging lock: the tail takes events in order.
                self.search.add(searchable)?;
            }
            staged_at(stream);
            self.position.send_modify(|p| *p = (*p).max(stream));
        }
        let extremities = match &append.room {
            Some((room, _)) => Some((
                room.to_string(),
                self.extremity_set_locked(&staged, room.as_str())?,
            )),
            None => None,
        };
        staged.last += 1;
        let number = staged.last;
        let extremities = stage(&mut staged, &append, number, extremities);
        staged.appends.push(StagedAppend {
            append,
            extremities,
        });
        let start = self.claim_writer(&mut staged);
        drop(staged);
        if start {
            self.start_writer();
        }
        Ok(())
    }

    /// Whether the caller must start a writer: there is something to
    /// write and no writer runs. Clears the last writer's error.
    fn claim_writer(&self, staged: &mut Staged) -> bool {
        if staged.writing || staged.appends.is_empty() {
            return false;
        }
        staged.writing = true;
        self.written.send_modify(|w| w.error = None);
        true
    }

    /// Runs the writer on the blocking pool (inline outside a runtime).
    fn start_writer(&self) {
        let this = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || this.drain())),
            Err(_) => this.drain(),
        }
    }

    /// Writes what is staged, a batch per transaction, until nothing is
    /// left; appends staged meanwhile form the next batch. A batch that
    /// fails goes back to the queue, and the error to whoever flushes.
    fn drain(&self) {
        loop {
            let (batch, last) = {
                let mut staged = self.staged();
                if staged.appends.is_empty() {
                    staged.writing = false;
                    return;
                }
                (std::mem::take(&mut staged.appends), staged.last)
            };
            let written = self
                .room_changes(&batch)
                .and_then(|changes| self.write(&batch, &changes));
            let mut staged = self.staged();
            match written {
                Ok(()) => {
                    staged.forget(last);
                    self.written.send_modify(|w| w.last = last);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot write staged events");
                    let later = std::mem::replace(&mut staged.appends, batch);
                    staged.appends.extend(later);
                    staged.writing = false;
                    self.written.send_modify(|w| w.error = Some(e.to_string()));
                    return;
                }
            }
        }
    }

    /// [`Self::extremity_set`] while holding the staging lock.
    pub(super) fn extremity_set_locked(
        &self,
        staged: &Staged,
        room: &str,
    ) -> Result<BTreeSet<String>> {
        if let Some((_, set)) = staged.extremities.get(room) {
            return Ok(set.clone());
        }
        let prefix = room_prefix(room);
        self.extremities
            .scan_prefix(&prefix)
            .keys()
            .map(|key| {
                let key = key?;
                std::str::from_utf8(&key[prefix.len()..])
                    .map(str::to_owned)
                    .map_err(|_| StoreError::data("corrupt extremity"))
            })
            .collect()
    }

    /// What a batch leaves of each room it touched: its last record, and
    /// the extremities to remove and add against what is written. A
    /// linear run of events in a room thus costs one removal and one
    /// insertion, not one of each per event.
    fn room_changes(&self, batch: &[StagedAppend]) -> Result<RoomChanges> {
        let mut records = HashMap::new();
        let mut sets = HashMap::new();
        for staged in batch {
            if let Some((room, record)) = &staged.append.room {
                records.insert(room.as_str(), record);
            }
            if let Some((room, set)) = &staged.extremities {
                sets.insert(room.as_str(), set);
            }
        }
        let mut changes = RoomChanges::default();
        for (room, record) in records {
            changes
                .records
                .push((room.as_bytes().to_vec(), encode(record)?));
        }
        for (room, set) in sets {
            let prefix = room_prefix(room);
            let mut written = BTreeSet::new();
            for key in self.extremities.scan_prefix(&prefix).keys() {
                written.insert(key?.to_vec());
            }
            let now: BTreeSet<Vec<u8>> =
                set.iter().map(|id| room_key(room, id.as_bytes())).collect();
            changes
                .extremities_removed
                .extend(written.difference(&now).cloned());
            changes
                .extremities_added
                .extend(now.difference(&written).cloned());
        }
        Ok(changes)
    }

    /// Writes appends atomically, in order, with their rooms' changes.
    fn write(&self, batch: &[StagedAppend], changes: &RoomChanges) -> Result<()> {
        let trees = (
            self.events.sled(),
            self.event_short.sled(),
            self.short_event.sled(),
            self.statekey_short.sled(),
            self.short_statekey.sled(),
            self.state_groups.sled(),
            self.extremities.sled(),
            self.timeline.sled(),
            self.rooms.sled(),
            self.outbound.sled(),
            self.auth_children.sled(),
            self.relations.sled(),
            self.threads.sled(),
            self.notifications.sled(),
        );
        let encoded = batch
            .iter()
            .map(|staged| Encoded::new(&staged.append))
            .collect::<Result<Vec<_>>>()?;
        let _pass = self.events.pass()?;
        trees.transaction(
            |(
                events,
                ev_short,
                short_ev,
                sk_short,
                short_sk,
                groups,
                extremities,
                timeline,
                rooms,
                outbound,
                auth_children,
                relations,
                threads,
                notifications,
            )| {
                for (append, encoded) in batch.iter().map(|s| &s.append).zip(&encoded) {
                    for (id, short) in &append.new_event_shorts {
                        ev_short.insert(id.as_str().as_bytes(), &short.to_be_bytes())?;
                        short_ev.insert(&short.to_be_bytes(), id.as_str().as_bytes())?;
                    }
                    for (key, short) in &append.new_statekey_shorts {
                        sk_short.insert(key.as_slice(), &short.to_be_bytes())?;
                        short_sk.insert(&short.to_be_bytes(), key.as_slice())?;
                    }
                    for (id, group) in &encoded.groups {
                        groups.insert(id, group.as_slice())?;
                    }
                    for outlier in &encoded.also_stored {
                        write_event(events, timeline, Some(outlier), None)?;
                    }
                    write_event(
                        events,
                        timeline,
                        encoded.event.as_ref(),
                        encoded.timeline_key.as_deref(),
                    )?;
                    for (auth, child) in &append.cited {
                        let key = super::auth_children::key(auth.as_str(), child.as_str());
                        auth_children.insert(key, &[])?;
                    }
                    for changes in index_changes(append) {
                        apply(relations, &changes.relations)?;
                        apply(threads, &changes.threads)?;
                    }
                    for (key, value) in append.notified.iter().flat_map(|n| n.entries()) {
                        notifications.insert(key, value)?;
                    }
                    for (destination, seq) in &append.outbound {
                        outbound.insert(
                            crate::store::outbound::key(destination, *seq),
                            encoded.queued.as_slice(),
                        )?;
                    }
                    if let Some(stream) = append.timeline {
                        for appservice in &append.appservices {
                            outbound.insert(
                                crate::store::outbound::appservice_key(appservice, stream),
                                encoded.queued.as_slice(),
                            )?;
                        }
                    }
                }
                for key in &changes.extremities_removed {
                    extremities.remove(key.as_slice())?;
                }
                for key in &changes.extremities_added {
                    extremities.insert(key.as_slice(), &[])?;
                }
                for (room, record) in &changes.records {
                    rooms.insert(room.as_slice(), record.as_slice())?;
                }
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Waits until everything staged so far is written, then makes it
    /// durable.
    pub async fn flush(&self) -> Result<()> {
        let (target, start) = {
            let mut staged = self.staged();
            (staged.last, self.claim_writer(&mut staged))
        };
        if start {
            self.start_writer();
        }
        let mut written = self.written.subscribe();
        loop {
            {
                let now = written.borrow_and_update();
                if now.last >= target {
                    break;
                }
                if let Some(e) = &now.error {
                    // The disk filled between staging and writing: the
                    // write gate says so, and the client gets 507 as for
                    // a write refused before staging.
                    if !self.events.writable() {
                        return Err(StoreError::Full);
                    }
                    return Err(StoreError::data(format!("cannot write events: {e}")));
                }
            }
            written
                .changed()
                .await
                .map_err(|_| StoreError::data("the event writer is gone"))?;
        }
        self.db.sled().flush_async().await?;
        Ok(())
    }
}

/// An append's records, serialised before its transaction runs.
pub(super) struct Encoded<'a> {
    /// Event ID and record (metadata and JSON).
    event: Option<(&'a OwnedEventId, Vec<u8>)>,
    timeline_key: Option<Vec<u8>>,
    groups: Vec<([u8; 8], Vec<u8>)>,
    queued: Vec<u8>,
    also_stored: Vec<(&'a OwnedEventId, Vec<u8>)>,
}

/// Rooms' records and extremities as a write leaves them (keys and
/// values encoded for the `rooms` and `extremities` trees).
#[derive(Default)]
pub(super) struct RoomChanges {
    records: Vec<(Vec<u8>, Vec<u8>)>,
    extremities_removed: Vec<Vec<u8>>,
    extremities_added: Vec<Vec<u8>>,
}

impl<'a> Encoded<'a> {
    fn new(append: &'a Append) -> Result<Self> {
        let queued = match &append.event {
            Some((id, ..)) if !append.outbound.is_empty() || !append.appservices.is_empty() => {
                crate::store::outbound::value(&crate::store::outbound::Queued::Pdu {
                    event_id: id.clone(),
                })?
            }
            _ => Vec::new(),
        };
        Ok(Self {
            event: append
                .event
                .as_ref()
                .map(|(id, json, meta)| Ok::<_, StoreError>((id, event_record(meta, json)?)))
                .transpose()?,
            timeline_key: match (&append.event, append.timeline) {
                (Some((_, _, meta)), Some(stream)) => {
                    Some(room_key(meta.room_id.as_str(), &stream.to_be_bytes()))
                }
                _ => None,
            },
            groups: append
                .groups
                .iter()
                .map(|(id, g)| (id.to_be_bytes(), g.to_bytes()))
                .collect(),
            queued,
            also_stored: append
                .also_stored
                .iter()
                .map(|(id, json, meta)| Ok::<_, StoreError>((id, event_record(meta, json)?)))
                .collect::<Result<Vec<_>>>()?,
        })
    }
}

/// Makes append number `n` visible to readers before it is written.
/// `extremities` is the room's extremity set before the append; the set
/// after it is returned.
pub(super) fn stage(
    staged: &mut Staged,
    append: &Append,
    n: u64,
    extremities: Option<(String, BTreeSet<String>)>,
) -> Option<(String, BTreeSet<String>)> {
    for (id, short) in &append.new_event_shorts {
        staged.event_short.insert(id.to_string(), (n, *short));
        staged.short_event.insert(*short, (n, id.to_string()));
    }
    for (key, short) in &append.new_statekey_shorts {
        staged.statekey_short.insert(key.clone(), (n, *short));
        staged.short_statekey.insert(*short, (n, key.clone()));
    }
    for (id, group) in &append.groups {
        staged.groups.insert(*id, (n, group.clone()));
    }
    for (auth, child) in &append.cited {
        let key = super::auth_children::key(auth.as_str(), child.as_str());
        staged.auth_children.insert(key, n);
    }
    for changes in index_changes(append) {
        for (key, value) in changes.relations {
            staged.relations.insert(key, (n, value));
        }
        for (key, value) in changes.threads {
            staged.threads.insert(key, (n, value));
        }
    }
    super::notifications::stage(&mut staged.notifications, append.notified.as_ref(), n);
    for (id, json, meta) in append.also_stored.iter().chain(&append.event) {
        staged
            .events
            .insert(id.to_string(), (n, (json.clone(), meta.clone())));
    }
    if let (Some((id, _, meta)), Some(stream)) = (&append.event, append.timeline) {
        let key = room_key(meta.room_id.as_str(), &stream.to_be_bytes());
        staged.timeline.insert(key, (n, id.to_string()));
    }
    let (Some((room, record)), Some((_, mut set))) = (&append.room, extremities) else {
        return None;
    };
    for removed in &append.extremities_removed {
        set.remove(removed.as_str());
    }
    if let Some(added) = &append.extremity_added {
        set.insert(added.to_string());
    }
    staged
        .extremities
        .insert(room.to_string(), (n, set.clone()));
    staged.rooms.insert(room.to_string(), (n, record.clone()));
    Some((room.to_string(), set))
}

pub(super) fn write_event(
    events: &TransactionalTree,
    timeline: &TransactionalTree,
    event: Option<&(&OwnedEventId, Vec<u8>)>,
    timeline_key: Option<&[u8]>,
) -> TxResult {
    if let Some((id, record)) = event {
        events.insert(id.as_str().as_bytes(), record.as_slice())?;
        if let Some(key) = timeline_key {
            timeline.insert(key, id.as_str().as_bytes())?;
        }
    }
    Ok(())
}

/// The relations index entries an append removes, then writes.
fn index_changes(append: &Append) -> impl Iterator<Item = Changes> + '_ {
    let removed = append.unrelated.iter().map(|r| r.changes(false));
    removed.chain(append.related.iter().map(|r| r.changes(true)))
}

/// Writes (`Some`) or removes (`None`) each entry.
fn apply(tree: &TransactionalTree, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> TxResult {
    for (key, value) in entries {
        match value {
            Some(value) => tree.insert(key.as_slice(), value.as_slice())?,
            None => tree.remove(key.as_slice())?,
        };
    }
    Ok(())
}
