//! What goes: other servers' media nobody downloaded for
//! `media.remote_retention`, then the least recently downloaded while the
//! cache holds more than `media.remote_cache_size` (fetched again when
//! asked for); an item an admin deletes; `/create` reservations never
//! filled. Local media stays unless an admin deletes it. The same steps
//! run inside the server (hourly, and through the admin API) and on a
//! stopped server's data directory (the CLI).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{files::Files, MediaService};
use crate::{
    error::{Error, Result},
    store::media::{MediaKey, MediaTrees},
    time::now_ms,
};

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(3600);

/// What a purge removed.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Purged {
    pub items: u64,
    pub bytes: u64,
}

/// Deletes one media item, its thumbnails and the files only it named;
/// the bytes it freed (`None`: there was no such item).
pub fn delete(store: &MediaTrees, files: &Files, at: MediaKey) -> Result<Option<u64>> {
    let Some(removed) = store.remove(at)? else {
        return Ok(None);
    };
    for sha256 in &removed.unreferenced {
        files.remove(sha256);
    }
    Ok(Some(removed.bytes))
}

/// Drops other servers' media last downloaded before `cutoff_ms`, then
/// the least recently downloaded until at most `cap` bytes remain.
pub fn purge_remote(
    store: &MediaTrees,
    files: &Files,
    ours: &str,
    cutoff_ms: u64,
    cap: u64,
) -> Result<Purged> {
    let mut remote = store.remote(ours)?;
    remote.sort_by_key(|(_, _, record)| record.accessed_ms);
    let size =
        |record: &crate::store::media::MediaRecord| record.file.as_ref().map_or(0, |f| f.size);
    let mut held: u64 = remote.iter().map(|(_, _, record)| size(record)).sum();
    let mut purged = Purged::default();
    for (server, media_id, record) in &remote {
        if record.accessed_ms >= cutoff_ms && held <= cap {
            break;
        }
        let at = MediaKey { server, media_id };
        if let Some(bytes) = delete(store, files, at)? {
            purged.items += 1;
            purged.bytes += bytes;
        }
        held = held.saturating_sub(size(record));
    }
    Ok(purged)
}

impl MediaService {
    /// An admin's deletion of `mxc://server/media_id`.
    pub async fn delete(&self, server: &ruma::ServerName, media_id: &str) -> Result<u64> {
        let at = MediaKey {
            server: server.as_str(),
            media_id,
        };
        let _naming = self.naming.lock().await;
        let freed = delete(&self.store, &self.files, at)?.ok_or_else(super::unknown_media)?;
        self.store.flush().await?;
        Ok(freed)
    }

    /// Other servers' media not downloaded for `older_than`, and beyond
    /// the cache's size.
    pub async fn purge_remote(&self, older_than: Duration) -> Result<Purged> {
        let cutoff = now_ms().saturating_sub(older_than.as_millis() as u64);
        let _naming = self.naming.lock().await;
        let purged = purge_remote(
            &self.store,
            &self.files,
            self.server_name.as_str(),
            cutoff,
            self.config.remote_cache_size,
        )?;
        self.store.flush().await?;
        Ok(purged)
    }

    /// Retention, hourly, for good; first, files no record names (a
    /// crash between a file's rename and its record leaves one) go.
    pub async fn run_retention(&self) {
        if let Err(e) = self.sweep_unnamed_files().await {
            tracing::warn!(error = %e.message, "could not look for unnamed media files");
        }
        loop {
            tokio::time::sleep(EVERY).await;
            if let Err(e) = self.retain().await {
                tracing::warn!(error = %e.message, "media retention failed; trying again in an hour");
            }
        }
    }

    /// Deletes each file no record names, checked under the lock that
    /// uploads hold from a file's rename to its record.
    async fn sweep_unnamed_files(&self) -> Result<()> {
        let files = self.files.clone();
        let all = tokio::task::spawn_blocking(move || files.all())
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| Error::internal(format!("listing media files: {e}")))?;
        let mut swept = 0;
        for sha256 in all {
            let _naming = self.naming.lock().await;
            if !self.store.file_in_use(&sha256)? {
                self.files.remove(&sha256);
                swept += 1;
            }
        }
        if swept > 0 {
            tracing::info!(files = swept, "deleted media files no record names");
        }
        Ok(())
    }

    async fn retain(&self) -> Result<(), Error> {
        let purged = self.purge_remote(self.config.remote_retention.0).await?;
        let expired = self.store.drop_expired_reservations(now_ms())?;
        if purged.items > 0 || expired > 0 {
            tracing::info!(
                remote_items = purged.items,
                remote_bytes = purged.bytes,
                expired_reservations = expired,
                "media retention"
            );
        }
        Ok(())
    }
}
