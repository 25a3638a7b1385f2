//! The database is stored compressed (sled's zstd): events are JSON, and
//! a page of them compresses about 3x, which took 50,000 messages from
//! 7.4x their canonical JSON on disk to 1.8x (`cargo bench --bench disk`).
//!
//! sled fixes the setting when a database is created and refuses to open
//! it with the other, so a database written before hearth compressed is
//! converted the first time it is opened: copied record by record into
//! `db.converting`, read back and compared tree by tree, then swapped
//! with `db` in one atomic rename (`RENAME_EXCHANGE`), so `db` is always
//! one whole database, the old or the new, whenever the process stops.
//! Without room for the copy (or on a file system that cannot swap) the
//! database stays as it is, uncompressed, and says so.

use std::{path::Path, time::Instant};

use super::{
    error::Result,
    snapshot::{open_when_released, summarise},
    StoreError,
};

/// The copy being made; any found when opening is from a stopped attempt.
const CONVERTING: &str = "db.converting";
/// Records written to the copy per batch.
const BATCH: usize = 10_000;

/// sled's settings for the database at `path` with a cache of `cache`
/// bytes: compressed, unless it was written uncompressed.
pub(super) fn config(path: &Path, cache: u64) -> sled::Config {
    sled::Config::new()
        .path(path)
        .cache_capacity(cache)
        .use_compression(!written_uncompressed(path))
}

/// Whether sled's settings file for the database at `path` says it was
/// written uncompressed (a new database has none yet).
fn written_uncompressed(path: &Path) -> bool {
    // The file is sled's text lines followed by a checksum.
    const UNCOMPRESSED: &[u8] = b"use_compression: false\n";
    std::fs::read(path.join("conf")).is_ok_and(|conf| {
        conf.windows(UNCOMPRESSED.len())
            .any(|line| line == UNCOMPRESSED)
    })
}

/// Converts `data_dir`'s database if it was written uncompressed, first
/// clearing what a stopped conversion left; whether it converted (sled's
/// threads may then hold the database a moment longer).
pub(super) fn convert(data_dir: &Path) -> Result<bool> {
    let database = data_dir.join("db");
    let copy = data_dir.join(CONVERTING);
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    if !written_uncompressed(&database) {
        return Ok(false);
    }
    let size = dir_bytes(&database);
    let free = super::disk::available_bytes(data_dir)?;
    if free < size.saturating_mul(2) {
        tracing::warn!(
            database_mb = size / 1_000_000,
            free_mb = free / 1_000_000,
            "the database is stored uncompressed (written by an earlier hearth) and there is \
             not room to convert it; it keeps working as it is"
        );
        return Ok(false);
    }
    let started = Instant::now();
    if let Err(e) = copy_compressed(&database, &copy).and_then(|()| swap(&database, &copy)) {
        // The original is untouched: the swap is the last step.
        let _ = std::fs::remove_dir_all(&copy);
        return Err(e);
    }
    // After the swap the copy's name holds the original.
    std::fs::remove_dir_all(&copy)?;
    tracing::info!(
        before_mb = size / 1_000_000,
        after_mb = dir_bytes(&database) / 1_000_000,
        seconds = started.elapsed().as_secs(),
        "converted the database to compressed storage"
    );
    Ok(true)
}

/// Copies every tree of the database at `from` into a new compressed one
/// at `to`, and reads the copy back to compare.
fn copy_compressed(from: &Path, to: &Path) -> Result<()> {
    let source = config(from, 4 * 1024 * 1024).open()?;
    let expected = {
        let dest = config(to, 4 * 1024 * 1024).open()?;
        let mut expected = Vec::new();
        for name in source.tree_names() {
            let (tree, target) = (source.open_tree(&name)?, dest.open_tree(&name)?);
            let mut batch = sled::Batch::default();
            let mut batched = 0;
            for entry in tree.iter() {
                let (key, value) = entry?;
                batch.insert(key, value);
                batched += 1;
                if batched == BATCH {
                    target.apply_batch(std::mem::take(&mut batch))?;
                    batched = 0;
                }
            }
            target.apply_batch(batch)?;
            expected.push((name.clone(), summarise(&name, &tree)?));
        }
        dest.flush()?;
        expected
    };
    drop(source);
    let dest = open_when_released(&config(to, 4 * 1024 * 1024))?;
    for (name, summary) in expected {
        if summarise(&name, &dest.open_tree(&name)?)? != summary {
            return Err(StoreError::data(format!(
                "the compressed copy of tree {} reads back differently",
                summary.name
            )));
        }
    }
    Ok(())
}

/// Exchanges the directories `a` and `b` atomically, and makes it durable.
fn swap(a: &Path, b: &Path) -> Result<()> {
    let (a_name, b_name) = (super::disk::c_path(a)?, super::disk::c_path(b)?);
    // SAFETY: both are NUL-terminated paths; renameat2 reads nothing else.
    let swapped = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a_name.as_ptr(),
            libc::AT_FDCWD,
            b_name.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if swapped != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if let Some(parent) = a.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// The bytes of the files under `path`.
fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests;
