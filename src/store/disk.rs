//! Free space on the disk that holds the data directory, sampled often
//! enough that writes are refused (and reads go on) before sled runs out
//! of space: see [`super::tree::Gate`] for why sled must never get there.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use super::Store;

/// Free bytes at the last sample; `u64::MAX` before the first.
#[derive(Clone)]
pub struct FreeSpace(Arc<AtomicU64>);

impl Default for FreeSpace {
    fn default() -> Self {
        Self(Arc::new(AtomicU64::new(u64::MAX)))
    }
}

impl FreeSpace {
    /// The last sample, if there was one.
    pub fn bytes(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|free| *free != u64::MAX)
    }
}

impl Store {
    /// Samples the free space: below `min_free` writes are refused; they
    /// are let through again once a quarter more than that is free (so a
    /// disk at the edge does not flap). Says so in the log at each change.
    pub fn check_disk(&self, min_free: u64) -> std::io::Result<u64> {
        let free = available_bytes(self.data_dir())?;
        self.free_space.0.store(free, Ordering::Relaxed);
        let gate = self.db.gate();
        let mib = |bytes: u64| bytes / (1024 * 1024);
        if free < min_free && gate.set_full(true) {
            tracing::error!(
                free_mib = mib(free),
                min_free_mib = mib(min_free),
                data_dir = %self.data_dir().display(),
                "the disk is full: refusing every write (reads go on) until space is freed"
            );
        } else if free >= min_free + min_free / 4 && gate.set_full(false) {
            tracing::warn!(free_mib = mib(free), "disk space is back: writes resume");
        }
        Ok(free)
    }

    /// Free space at the last [`Self::check_disk`].
    pub fn free_space(&self) -> FreeSpace {
        self.free_space.clone()
    }
}

/// Bytes an unprivileged process may still write on `path`'s file system.
pub(super) fn available_bytes(path: &Path) -> std::io::Result<u64> {
    let path = c_path(path)?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stats` is written by
    // statvfs before it is read (only on success).
    let stats = unsafe {
        if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        stats.assume_init()
    };
    Ok((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

/// `path` as the C string a system call takes.
pub(super) fn c_path(path: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}
