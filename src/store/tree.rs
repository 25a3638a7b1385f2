//! The one way hearth writes to sled: every tree sits behind [`Tree`],
//! whose writes pass the store's write [`Gate`]. A backup closes the gate
//! for the moment it takes to fix the instant its copy shows (sled 0.34
//! has no snapshots), so that the copy holds every tree as of one point
//! in the order of writes, as a crash would leave them. And while the
//! disk is (nearly) full the gate refuses writes at once: sled, once a
//! write of its own fails for want of space, fails every later read and
//! write until the process restarts, so it must never get that far.

use std::{
    cell::Cell,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock, RwLockReadGuard, RwLockWriteGuard,
    },
};

use sled::{transaction::TransactionResult, Batch, IVec};

/// Writes pass it shared; a backup holds it alone. Shut while the disk is full.
#[derive(Clone, Default)]
pub struct Gate {
    lock: Arc<RwLock<()>>,
    full: Arc<AtomicBool>,
}

/// What a write refused for a full disk fails with (`StoreError::Full` above).
pub(super) fn disk_full() -> sled::Error {
    sled::Error::Io(std::io::Error::new(
        std::io::ErrorKind::StorageFull,
        "the disk holding the data directory is full",
    ))
}

thread_local! {
    /// How many passes this thread holds: a write inside another (a
    /// transaction's caller) must not queue behind a waiting backup
    /// while its outer pass keeps that backup waiting.
    static HELD: Cell<u32> = const { Cell::new(0) };
}

/// A write's pass through the gate.
pub struct Pass<'a> {
    _guard: Option<RwLockReadGuard<'a, ()>>,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        HELD.with(|held| held.set(held.get() - 1));
    }
}

impl Gate {
    /// Lets a write through (waits while a backup holds the gate), or
    /// refuses it while the disk is full.
    pub fn pass(&self) -> sled::Result<Pass<'_>> {
        if !self.writable() {
            return Err(disk_full());
        }
        let outer = HELD.with(|held| {
            let depth = held.get();
            held.set(depth + 1);
            depth == 0
        });
        Ok(Pass {
            _guard: outer.then(|| self.lock.read().unwrap_or_else(|e| e.into_inner())),
        })
    }

    /// Whether writes are let through (the disk is not full).
    pub fn writable(&self) -> bool {
        !self.full.load(Ordering::Relaxed)
    }

    /// Marks the disk full (writes refused) or not; whether that changed.
    pub(super) fn set_full(&self, full: bool) -> bool {
        self.full.swap(full, Ordering::Relaxed) != full
    }

    /// Stops every write until the guard is dropped; waits for those under way.
    pub(super) fn close(&self) -> RwLockWriteGuard<'_, ()> {
        self.lock.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A sled tree whose writes pass the gate. Reads go straight to sled.
#[derive(Clone)]
pub struct Tree {
    inner: sled::Tree,
    gate: Gate,
}

impl Tree {
    pub(super) fn new(inner: sled::Tree, gate: &Gate) -> Self {
        Self {
            inner,
            gate: gate.clone(),
        }
    }

    /// The sled tree, for a transaction over several trees; the caller
    /// holds [`Tree::pass`] around it.
    pub(super) fn sled(&self) -> &sled::Tree {
        &self.inner
    }

    /// The gate's pass, for a transaction over several trees.
    pub(super) fn pass(&self) -> sled::Result<Pass<'_>> {
        self.gate.pass()
    }

    /// Whether writes are let through now (the disk is not full).
    pub fn writable(&self) -> bool {
        self.gate.writable()
    }

    pub fn insert<K: AsRef<[u8]>, V: Into<IVec>>(
        &self,
        key: K,
        value: V,
    ) -> sled::Result<Option<IVec>> {
        let _pass = self.gate.pass()?;
        self.inner.insert(key, value)
    }

    pub fn remove<K: AsRef<[u8]>>(&self, key: K) -> sled::Result<Option<IVec>> {
        let _pass = self.gate.pass()?;
        self.inner.remove(key)
    }

    pub fn apply_batch(&self, batch: Batch) -> sled::Result<()> {
        let _pass = self.gate.pass()?;
        self.inner.apply_batch(batch)
    }

    pub fn compare_and_swap<K: AsRef<[u8]>, OV: AsRef<[u8]>, NV: Into<IVec>>(
        &self,
        key: K,
        old: Option<OV>,
        new: Option<NV>,
    ) -> sled::Result<Result<(), sled::CompareAndSwapError>> {
        let _pass = self.gate.pass()?;
        self.inner.compare_and_swap(key, old, new)
    }

    pub fn fetch_and_update<K: AsRef<[u8]>, V: Into<IVec>>(
        &self,
        key: K,
        f: impl FnMut(Option<&[u8]>) -> Option<V>,
    ) -> sled::Result<Option<IVec>> {
        let _pass = self.gate.pass()?;
        self.inner.fetch_and_update(key, f)
    }

    /// A transaction on this tree alone.
    pub fn transaction<F, A, E>(&self, f: F) -> TransactionResult<A, E>
    where
        F: Fn(
            &sled::transaction::TransactionalTree,
        ) -> sled::transaction::ConflictableTransactionResult<A, E>,
    {
        let _pass = self.gate.pass()?;
        self.inner.transaction(f)
    }

    pub fn get<K: AsRef<[u8]>>(&self, key: K) -> sled::Result<Option<IVec>> {
        self.inner.get(key)
    }

    pub fn contains_key<K: AsRef<[u8]>>(&self, key: K) -> sled::Result<bool> {
        self.inner.contains_key(key)
    }

    pub fn iter(&self) -> sled::Iter {
        self.inner.iter()
    }

    pub fn range<K: AsRef<[u8]>, R: std::ops::RangeBounds<K>>(&self, range: R) -> sled::Iter {
        self.inner.range(range)
    }

    pub fn scan_prefix<P: AsRef<[u8]>>(&self, prefix: P) -> sled::Iter {
        self.inner.scan_prefix(prefix)
    }

    pub fn last(&self) -> sled::Result<Option<(IVec, IVec)>> {
        self.inner.last()
    }

    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn flush(&self) -> sled::Result<usize> {
        self.inner.flush()
    }

    pub async fn flush_async(&self) -> sled::Result<usize> {
        self.inner.flush_async().await
    }
}

/// The opened sled database with its gate: every tree opened through it
/// writes through the gate.
#[derive(Clone)]
pub struct Database {
    sled: sled::Db,
    gate: Gate,
}

impl Database {
    pub(super) fn new(sled: sled::Db) -> Self {
        Self {
            sled,
            gate: Gate::default(),
        }
    }

    /// Opens (or creates) the tree `name`.
    pub(super) fn open_tree(&self, name: &str) -> sled::Result<Tree> {
        Ok(self.wrap(self.sled.open_tree(name)?))
    }

    /// A tree a migration has finished with (migrations run at open,
    /// before anything else can write or copy).
    pub(super) fn wrap(&self, tree: sled::Tree) -> Tree {
        Tree::new(tree, &self.gate)
    }

    /// The database itself: migrations at open, flushes, backups.
    pub(super) fn sled(&self) -> &sled::Db {
        &self.sled
    }

    pub(super) fn gate(&self) -> &Gate {
        &self.gate
    }
}
