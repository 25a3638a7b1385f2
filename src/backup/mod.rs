//! Backups: a consistent, verified copy of a running server's data
//! directory that can be started as it is (`hearth backup DIR`, the admin
//! API, and the schedule under `[backup]`); and what a server started on
//! such a copy must do first.

pub mod export;
mod files;
pub mod schedule;

pub use files::usable_target;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use serde::{Deserialize, Serialize};

use crate::store::{CopyReport, Store};

/// Written into every backup; its presence at start means "this server
/// was restored from a backup".
pub const MARKER: &str = "backup.json";

/// What a backup holds, as written into it and reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupReport {
    pub format: u32,
    pub server_name: String,
    pub dir: PathBuf,
    pub taken_at_ms: u64,
    /// Records in the database, all trees.
    pub records: u64,
    /// Bytes of database records, and of the other files.
    pub database_bytes: u64,
    pub file_bytes: u64,
    /// How long writes (sends, joins, received events) were held.
    pub pause_ms: u64,
    pub took_ms: u64,
    pub copy: CopyReport,
}

/// Takes backups of one store; one at a time.
#[derive(Clone)]
pub struct BackupService {
    store: Store,
    server_name: String,
    /// KiB per second at most (0: no limit).
    kib_per_sec: u64,
    running: Arc<tokio::sync::Mutex<()>>,
}

impl BackupService {
    pub fn new(store: Store, server_name: &str, kib_per_sec: u64) -> Self {
        Self {
            store,
            server_name: server_name.to_owned(),
            kib_per_sec,
            running: Arc::default(),
        }
    }

    /// Takes a backup into `dir` (which must not exist, or be empty),
    /// waiting for one already running.
    pub async fn take(&self, dir: &Path) -> Result<BackupReport, String> {
        let _one = self.running.lock().await;
        let this = self.clone();
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || this.take_now(&dir))
            .await
            .map_err(|e| format!("the backup stopped: {e}"))?
    }

    /// The copy: written beside `dir`, checked, then renamed into place,
    /// so that `dir` is either absent or a whole, verified backup.
    fn take_now(&self, dir: &Path) -> Result<BackupReport, String> {
        let started = Instant::now();
        let taken_at_ms = crate::time::now_ms();
        let partial = files::prepare(dir)?;
        let pace = (self.kib_per_sec > 0).then_some(self.kib_per_sec * 1024);
        let copy = self
            .store
            .copy_database(&partial, pace)
            .map_err(|e| format!("copying the database: {e}"))?;
        let file_bytes = files::copy_others(self.store.data_dir(), &partial)?;
        crate::store::verify_copy(&partial, &copy)
            .map_err(|e| format!("checking the copy: {e}"))?;
        crate::store::identity::precheck(&partial, &self.server_name)
            .map_err(|e| format!("checking the copy: {e}"))?;
        let report = BackupReport {
            format: 1,
            server_name: self.server_name.clone(),
            dir: dir.to_owned(),
            taken_at_ms,
            records: copy.trees.iter().map(|tree| tree.records).sum(),
            database_bytes: copy.bytes,
            file_bytes,
            pause_ms: copy.pause_ms,
            took_ms: started.elapsed().as_millis() as u64,
            copy,
        };
        let marker = serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?;
        files::write_synced(&partial.join(MARKER), &marker)?;
        files::finish(&partial, dir)?;
        tracing::info!(
            dir = %dir.display(),
            records = report.records,
            bytes = report.database_bytes + report.file_bytes,
            pause_ms = report.pause_ms,
            took_ms = report.took_ms,
            "backup taken"
        );
        Ok(report)
    }
}

impl BackupService {
    /// Exports the server to `file`: a backup into a directory beside it
    /// (so that the export shows one instant of a running server), written
    /// out as [`export`] lines, then removed.
    pub async fn export(&self, file: &Path) -> Result<export::Moved, String> {
        let _one = self.running.lock().await;
        let this = self.clone();
        let file = file.to_owned();
        tokio::task::spawn_blocking(move || {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            let copy = file.with_file_name(format!(".{name}.backup"));
            if copy.exists() {
                std::fs::remove_dir_all(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
            }
            let exported = this
                .take_now(&copy)
                .and_then(|_| export::export(&copy, &this.server_name, &file));
            let _ = std::fs::remove_dir_all(&copy);
            exported
        })
        .await
        .map_err(|e| format!("the export stopped: {e}"))?
    }
}

/// On a server started on a backup (the marker is there): drops every
/// one-time key, since the original server may have handed some out after
/// the copy was taken and a key handed out twice makes the messages
/// encrypted with it undecryptable; clients see the count fall and upload
/// fresh ones. Then removes the marker. Returns the keys dropped.
pub fn after_restore(store: &Store) -> Result<Option<usize>, String> {
    let marker = store.data_dir().join(MARKER);
    if !marker.exists() {
        return Ok(None);
    }
    let dropped = store
        .e2ee
        .drop_all_one_time_keys()
        .and_then(|dropped| store.e2ee.flush().map(|()| dropped))
        .map_err(|e| format!("dropping one-time keys after a restore: {e}"))?;
    files::remove_synced(&marker)?;
    tracing::warn!(
        one_time_keys_dropped = dropped,
        "started on a backup: one-time keys dropped so that clients upload fresh ones"
    );
    Ok(Some(dropped))
}
