//! The files of a backup beside the database: where it is written while
//! it is taken, the data directory's other files (identity, admin token,
//! and any others), each synced before the backup is called done.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// Not copied from the data directory (`relative` to it): the database
/// (copied record by record), a marker of an earlier restore, and
/// temporary files (media being received among them).
fn skipped(relative: &Path) -> bool {
    let name = relative.to_string_lossy();
    name == "db"
        || name == super::MARKER
        || name.ends_with(".new")
        || relative == Path::new("media/tmp")
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
    let mut bytes = 0;
    walk(data_dir, Path::new(""), &mut |relative, path, is_dir| {
        let to = dest.join(relative);
        let fail = |e: std::io::Error| format!("cannot copy {}: {e}", path.display());
        if is_dir {
            return std::fs::create_dir(&to).map_err(fail);
        }
        bytes += std::fs::copy(path, &to).map_err(fail)?;
        std::fs::File::open(&to)
            .and_then(|file| file.sync_all())
            .map_err(fail)
    })?;
    sync_dir(dest).map_err(|e| format!("cannot sync {}: {e}", dest.display()))?;
    Ok(bytes)
}

/// What [`each_other`] calls for each file.
pub(super) type FileVisitor<'a> = dyn FnMut(&Path, u32, Vec<u8>) -> Result<(), String> + 'a;

/// Calls `each(path inside it, mode, bytes)` for every file of
/// `data_dir` but the database, one file in memory at a time (media
/// files are up to `media.max_upload_size` each).
pub(super) fn each_other(data_dir: &Path, each: &mut FileVisitor) -> Result<(), String> {
    walk(data_dir, Path::new(""), &mut |relative, path, is_dir| {
        if is_dir {
            return Ok(());
        }
        let fail = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
        let metadata = std::fs::metadata(path).map_err(fail)?;
        #[cfg(unix)]
        let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
        #[cfg(not(unix))]
        let mode = if metadata.permissions().readonly() {
            0o400
        } else {
            0o600
        };
        each(relative, mode, std::fs::read(path).map_err(fail)?)
    })
}

/// Calls `each(relative path, path, is a directory)` for every directory
/// and regular file under `dir` (a directory before what it holds),
/// leaving out what [`skipped`] names.
fn walk(
    dir: &Path,
    relative: &Path,
    each: &mut dyn FnMut(&Path, &Path, bool) -> Result<(), String>,
) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot read {}: {e}", dir.display());
    let mut entries = std::fs::read_dir(dir)
        .map_err(fail)?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(fail)?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name();
        let (path, inside) = (entry.path(), relative.join(&name));
        if skipped(&inside) {
            continue;
        }
        let kind = entry.file_type().map_err(fail)?;
        if kind.is_dir() {
            each(&inside, &path, true)?;
            walk(&path, &inside, each)?;
        } else if kind.is_file() {
            each(&inside, &path, false)?;
        }
    }
    Ok(())
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
