//! A consistent copy of the whole database, taken while the server runs.
//!
//! sled 0.34 has no snapshots, and copying its files while it writes
//! gives a database that panics at open or opens empty. So the trees are
//! copied record by record while every change made meanwhile is watched
//! (sled's subscribers); then the write gate is closed for the moment it
//! takes to collect the last changes, which fixes the instant the copy
//! shows; the changes are applied to the copy after the gate reopens.
//! Writers wait only for that moment, not for the copy.

use std::{
    path::Path,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use sled::{Event, IVec, Subscriber};

use super::{error::Result, Store, StoreError};

/// Changes buffered while the copy runs, at most: past it the copy gives
/// up rather than hold the memory of a Raspberry Pi (a copy meets it only
/// under a sustained flood of writes).
const MAX_BUFFERED: usize = 64 * 1024 * 1024;
/// Records and bytes copied per batch (and between looks at the pace).
const BATCH: usize = 1000;
const BATCH_BYTES: usize = 64 * 1024;

/// What a copy holds, tree by tree, and how long writers waited for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyReport {
    pub trees: Vec<TreeSummary>,
    /// How long writes were held while the copy's instant was fixed.
    pub pause_ms: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
}

/// A tree's record count and a SHA-256 over its records in key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeSummary {
    pub name: String,
    pub records: u64,
    pub digest: String,
}

impl Store {
    /// Copies every tree into a new database at `dest/db`, as the trees
    /// stood at one instant, at most `pace` bytes a second when given (an
    /// SD card shared with the running server). Returns what the copy
    /// holds, for [`verify_copy`].
    pub fn copy_database(&self, dest: &Path, pace: Option<u64>) -> Result<CopyReport> {
        let source = self.db.sled();
        let names: Vec<IVec> = source.tree_names();
        let trees = names
            .iter()
            .map(|name| source.open_tree(name))
            .collect::<sled::Result<Vec<_>>>()?;
        // Watching starts before copying: every change after a record
        // was read is among the events.
        let mut watched: Vec<(usize, Subscriber)> = trees
            .iter()
            .enumerate()
            .map(|(i, tree)| (i, tree.watch_prefix(vec![])))
            .collect();
        let copy = open_copy(dest)?;
        let targets = names
            .iter()
            .map(|name| copy.open_tree(name))
            .collect::<sled::Result<Vec<_>>>()?;
        let buffer = Buffer::default();
        let stop = AtomicBool::new(false);
        let (bytes, pause) = std::thread::scope(|scope| {
            let drainer = scope.spawn(|| {
                while !stop.load(Ordering::Acquire) {
                    if drain(&mut watched, &buffer) == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                // The gate is closed: every write has finished and its
                // event is waiting; collect them all.
                drain(&mut watched, &buffer);
                watched.clear();
            });
            let copied = copy_trees(&trees, &targets, &buffer, pace);
            let started = Instant::now();
            let closed = self.db.gate().close();
            stop.store(true, Ordering::Release);
            let drained = drainer.join();
            drop(closed);
            let pause = started.elapsed();
            drained.map_err(|_| StoreError::data("the change watcher panicked"))?;
            Ok::<_, StoreError>((copied?, pause))
        })?;
        apply(&targets, buffer.take())?;
        copy.flush()?;
        let trees = names
            .iter()
            .zip(&targets)
            .map(|(name, tree)| summarise(name, tree))
            .collect::<Result<Vec<_>>>()?;
        Ok(CopyReport {
            trees,
            pause_ms: pause.as_millis() as u64,
            bytes,
        })
    }
}

/// Reopens the copy at `dest/db` from disk and checks that every tree
/// holds what `report` says was written.
pub fn verify_copy(dest: &Path, report: &CopyReport) -> Result<()> {
    let copy = reopen_copy(dest)?;
    for expected in &report.trees {
        let tree = copy.open_tree(expected.name.as_bytes())?;
        let found = summarise(expected.name.as_bytes(), &tree)?;
        if found != *expected {
            return Err(StoreError::data(format!(
                "the copy of tree {} reads back as {} records (digest {}), not {} ({})",
                expected.name, found.records, found.digest, expected.records, expected.digest
            )));
        }
    }
    Ok(())
}

/// Events collected by the watcher, with their size.
#[derive(Default)]
struct Buffer(Mutex<(Vec<(usize, Event)>, usize)>);

impl Buffer {
    fn push(&self, tree: usize, event: Event) {
        let mut buffered = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buffered.1 += event_size(&event);
        buffered.0.push((tree, event));
    }

    fn size(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    fn take(&self) -> Vec<(usize, Event)> {
        let mut buffered = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buffered.1 = 0;
        std::mem::take(&mut buffered.0)
    }

    /// Takes the events of trees `done` says are copied, keeping the rest.
    fn take_done(&self, done: impl Fn(usize) -> bool) -> Vec<(usize, Event)> {
        let mut buffered = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (ready, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut buffered.0)
            .into_iter()
            .partition(|(tree, _)| done(*tree));
        buffered.1 = kept.iter().map(|(_, event)| event_size(event)).sum();
        buffered.0 = kept;
        ready
    }
}

/// Memory an event holds, roughly.
fn event_size(event: &Event) -> usize {
    64 + match event {
        Event::Insert { key, value } => key.len() + value.len(),
        Event::Remove { key } => key.len(),
    }
}

/// Moves every event waiting on the subscribers into the buffer.
/// (`next_timeout` would stall for good on a write sled skipped, so the
/// subscribers are polled as futures.)
fn drain(watched: &mut [(usize, Subscriber)], buffer: &Buffer) -> usize {
    let mut context = Context::from_waker(std::task::Waker::noop());
    let mut moved = 0;
    for (tree, subscriber) in watched.iter_mut() {
        while let Poll::Ready(Some(event)) =
            std::future::Future::poll(Pin::new(&mut *subscriber), &mut context)
        {
            buffer.push(*tree, event);
            moved += 1;
        }
    }
    moved
}

/// Copies each tree in key order; after each, applies the changes made
/// to the trees already copied (in order: the last change of a key wins),
/// so that the buffer holds only changes to trees still to copy.
fn copy_trees(
    trees: &[sled::Tree],
    targets: &[sled::Tree],
    buffer: &Buffer,
    pace: Option<u64>,
) -> Result<u64> {
    let started = Instant::now();
    let mut bytes = 0u64;
    for (i, (tree, target)) in trees.iter().zip(targets).enumerate() {
        // Keys written past the last one are among the events: stopping
        // there keeps the copy from chasing a tree that grows at its end.
        if let Some((last, _)) = tree.last()? {
            let mut batch = Batched::default();
            for entry in tree.range(..=last) {
                let (key, value) = entry?;
                bytes += (key.len() + value.len()) as u64;
                if batch.add(key, value) {
                    batch.write(target)?;
                    keep_pace(started, bytes, pace);
                    if buffer.size() > MAX_BUFFERED {
                        return Err(too_busy());
                    }
                }
            }
            batch.write(target)?;
            keep_pace(started, bytes, pace);
        }
        apply(targets, buffer.take_done(|tree| tree <= i))?;
    }
    Ok(bytes)
}

/// Records on their way into the copy.
#[derive(Default)]
struct Batched {
    batch: sled::Batch,
    records: usize,
    bytes: usize,
}

impl Batched {
    /// Adds a record; true when the batch is full.
    fn add(&mut self, key: IVec, value: IVec) -> bool {
        self.records += 1;
        self.bytes += key.len() + value.len();
        self.batch.insert(key, value);
        self.records >= BATCH || self.bytes >= BATCH_BYTES
    }

    fn write(&mut self, target: &sled::Tree) -> Result<()> {
        let full = std::mem::take(self);
        Ok(target.apply_batch(full.batch)?)
    }
}

fn too_busy() -> StoreError {
    StoreError::data(format!(
        "more than {} MiB were written while the backup ran; try again when the server is quieter",
        MAX_BUFFERED / (1024 * 1024)
    ))
}

/// Sleeps as long as the copy is ahead of `pace` bytes a second.
fn keep_pace(started: Instant, bytes: u64, pace: Option<u64>) {
    let Some(pace) = pace.filter(|pace| *pace > 0) else {
        return;
    };
    let due = Duration::from_secs_f64(bytes as f64 / pace as f64);
    if let Some(ahead) = due.checked_sub(started.elapsed()) {
        std::thread::sleep(ahead);
    }
}

/// Applies `events` in order to the copy's trees.
fn apply(targets: &[sled::Tree], events: Vec<(usize, Event)>) -> Result<()> {
    for (tree, event) in events {
        match event {
            Event::Insert { key, value } => targets[tree].insert(key, value)?,
            Event::Remove { key } => targets[tree].remove(key)?,
        };
    }
    Ok(())
}

pub(super) fn summarise(name: &[u8], tree: &sled::Tree) -> Result<TreeSummary> {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut records = 0;
    for entry in tree.iter() {
        let (key, value) = entry?;
        for part in [&key, &value] {
            digest.update(&(part.len() as u64).to_be_bytes());
            digest.update(part);
        }
        records += 1;
    }
    let digest = digest.finish();
    Ok(TreeSummary {
        name: String::from_utf8_lossy(name).into_owned(),
        records,
        digest: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// A new database for the copy; `dest` must not hold one.
fn open_copy(dest: &Path) -> Result<sled::Db> {
    let path = dest.join("db");
    if path.exists() {
        return Err(StoreError::data(format!(
            "{} already holds a database",
            path.display()
        )));
    }
    Ok(copy_config(&path).open()?)
}

/// Opens the copy again once the process has let go of it.
fn reopen_copy(dest: &Path) -> Result<sled::Db> {
    Ok(open_when_released(&copy_config(&dest.join("db")))?)
}

/// Opens a database this process has just dropped: sled's background
/// threads let go of its lock a moment after the last handle goes.
pub(super) fn open_when_released(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if Instant::now() < deadline && is_lock(&e) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            opened => return opened,
        }
    }
}

pub(super) fn is_lock(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock")
}

fn copy_config(path: &Path) -> sled::Config {
    super::compression::config(path, 4 * 1024 * 1024)
}

#[cfg(test)]
mod tests;
