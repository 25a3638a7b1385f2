//! Other servers' media, fetched for our users and kept: one fetch per
//! item at a time (later askers wait for it and read what it stored),
//! bounded by `media.max_remote_size` and an overall deadline.

use std::{sync::Arc, time::Duration};

use http::StatusCode;
use ruma::ServerName;

use super::{content_type, receive_error, unknown_media, Fetch, MediaService};
use crate::{
    error::{Error, Result},
    store::media::{MediaKey, MediaRecord},
};

/// Fetches of other servers' media begun since start (`/metrics`).
static FETCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn remote_fetches() -> u64 {
    FETCHES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Longest a remote file may take to arrive in all.
const FETCH_DEADLINE: Duration = Duration::from_secs(300);

impl MediaService {
    /// Another server's media, from our copy or fetched now.
    pub(super) async fn remote_content(
        &self,
        server: &ServerName,
        media_id: &str,
        fetch: Fetch,
    ) -> Result<MediaRecord> {
        let at = MediaKey {
            server: server.as_str(),
            media_id,
        };
        if let Some(record) = self.store.get(at)? {
            return Ok(record);
        }
        if !fetch.allow_remote {
            return Err(unknown_media());
        }
        let turn = self.turn(server, media_id);
        let _turn = turn.lock().await;
        // Whoever held the turn before may have stored it.
        let stored = self.store.get(at)?;
        let result = match stored {
            Some(record) => Ok(record),
            None => self.fetch(server, media_id).await,
        };
        self.release(server, media_id, &turn);
        result
    }

    /// The lock one fetch of this item holds.
    fn turn(&self, server: &ServerName, media_id: &str) -> super::Turn {
        let mut fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        fetching
            .entry((server.to_string(), media_id.to_owned()))
            .or_default()
            .clone()
    }

    /// Forgets the lock once no one else waits on it.
    fn release(&self, server: &ServerName, media_id: &str, turn: &super::Turn) {
        let mut fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        // Ours, and the map's: nobody else holds or waits for it.
        if Arc::strong_count(turn) <= 2 {
            fetching.remove(&(server.to_string(), media_id.to_owned()));
        }
    }

    async fn fetch(&self, server: &ServerName, media_id: &str) -> Result<MediaRecord> {
        FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let limit = self.config.max_remote_size;
        let fetched = tokio::time::timeout(FETCH_DEADLINE, async {
            let _turn = self.receiving_turn().await?;
            let media = self.peers.media_download(server, media_id, limit).await?;
            if media.declared.is_some_and(|declared| declared > limit) {
                return Err(too_large_remote(limit));
            }
            let budget = self.budget(limit);
            let received = self
                .files
                .receive(media.body, budget)
                .await
                .map_err(|e| receive_error(e, limit, StatusCode::BAD_GATEWAY))?;
            // A type the other server gives that is no media type is
            // served as bytes.
            let content_type = content_type(media.content_type.as_deref())
                .unwrap_or_else(|_| "application/octet-stream".into());
            let filename = super::filename(media.filename.as_deref()).unwrap_or(None);
            Ok((received, content_type, filename))
        })
        .await
        .map_err(|_| Error::remote(format!("{server} took too long to send its media")))??;
        let (received, content_type, filename) = fetched;
        let at = MediaKey {
            server: server.as_str(),
            media_id,
        };
        self.keep_unowned(at, received, content_type, filename)
            .await
    }
}

fn too_large_remote(limit: u64) -> Error {
    Error::new(
        StatusCode::BAD_GATEWAY,
        "M_TOO_LARGE",
        format!("the remote content is larger than {limit} bytes"),
    )
}
