//! The files of a backup beside the database: where it is written while
//! it is taken, the data directory's other files (identity, admin token,
//! and any others), each synced before the backup is called done.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// Not copied from the data directory: the database (copied record by
/// record), a marker of an earlier restore, and temporary files.
fn skipped(name: &str) -> bool {
    name == "db" || name == super::MARKER || name.ends_with(".new")
}

/// Where a backup into `dir` is written until it is checked: beside it,
/// so that the final rename stays on one file system.
pub(super) fn prepare(dir: &Path) -> Result<PathBuf, String> {
    let fail = |e: std::io::Error| format!("cannot back up into {}: {e}", dir.display());
    let name = usable_target(dir)?;
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(fail)?;
    let partial = parent.join(format!(".{}.partial", name.to_string_lossy()));
    if partial.exists() {
        // Left by a backup that was interrupted.
        std::fs::remove_dir_all(&partial).map_err(fail)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&partial).map_err(fail)?;
    Ok(partial)
}

/// The name of `dir` when a backup may go there: it is new or empty.
pub fn usable_target(dir: &Path) -> Result<&std::ffi::OsStr, String> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(format!(
                "{} is not empty: give a new directory for the backup",
                dir.display()
            ));
        }
    }
    dir.file_name()
        .ok_or_else(|| format!("{} names no directory", dir.display()))
}

/// Puts the checked copy in place and makes the rename durable.
pub(super) fn finish(partial: &Path, dir: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot finish the backup in {}: {e}", dir.display());
    sync_dir(partial).map_err(fail)?;
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(fail)?;
    }
    std::fs::rename(partial, dir).map_err(fail)?;
    sync_dir(dir.parent().unwrap_or(Path::new("."))).map_err(fail)
}

/// Copies every file of `data_dir` but the database into `dest`, keeping
/// permissions (the identity and token files are 0600); returns the bytes.
pub(super) fn copy_others(data_dir: &Path, dest: &Path) -> Result<u64, String> {
    let fail = |path: &Path, e: std::io::Error| format!("cannot copy {}: {e}", path.display());
    let mut bytes = 0;
    for entry in std::fs::read_dir(data_dir).map_err(|e| fail(data_dir, e))? {
        let entry = entry.map_err(|e| fail(data_dir, e))?;
        if skipped(&entry.file_name().to_string_lossy()) {
            continue;
        }
        bytes += copy_tree(&entry.path(), &dest.join(entry.file_name()))?;
    }
    Ok(bytes)
}

/// Copies a file, or a directory and everything in it, syncing each file.
fn copy_tree(from: &Path, to: &Path) -> Result<u64, String> {
    let fail = |e: std::io::Error| format!("cannot copy {}: {e}", from.display());
    let kind = std::fs::symlink_metadata(from).map_err(fail)?.file_type();
    if kind.is_dir() {
        std::fs::create_dir(to).map_err(fail)?;
        let mut bytes = 0;
        for entry in std::fs::read_dir(from).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            bytes += copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        sync_dir(to).map_err(fail)?;
        return Ok(bytes);
    }
    if !kind.is_file() {
        return Ok(0);
    }
    let bytes = std::fs::copy(from, to).map_err(fail)?;
    std::fs::File::open(to)
        .and_then(|file| file.sync_all())
        .map_err(fail)?;
    Ok(bytes)
}

/// Writes a new file and syncs it.
pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut file = std::fs::File::create(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}

/// Removes a file for good (its directory synced).
pub(super) fn remove_synced(path: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot remove {}: {e}", path.display());
    std::fs::remove_file(path).map_err(fail)?;
    sync_dir(path.parent().unwrap_or(Path::new("."))).map_err(fail)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
