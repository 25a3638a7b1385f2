//! `[media]`: the content repository's limits and retention.

use serde::{Deserialize, Serialize};

use super::Interval;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    /// Largest upload in bytes (`m.upload.size` reports it).
    pub max_upload_size: u64,
    /// Largest file fetched from another server, in bytes.
    pub max_remote_size: u64,
    /// Bytes each local user may have stored in all (0: no quota).
    pub user_quota: u64,
    /// Other servers' media not downloaded for this long is dropped.
    pub remote_retention: Interval,
    /// Other servers' media kept in all, in bytes; the least recently
    /// downloaded goes first beyond it.
    pub remote_cache_size: u64,
    /// Serve the deprecated unauthenticated `/_matrix/media/v3/download`
    /// and `/thumbnail` (older clients); false freezes them.
    pub legacy_unauthenticated: bool,
    /// Media IDs made by `/create` that a user may leave unfilled at once.
    pub pending_uploads: usize,
    /// Fetch pages for link previews (`/preview_url`): the server then
    /// visits what users paste.
    pub url_previews: bool,
    /// Non-public addresses or CIDR ranges previews may reach anyway
    /// (public ones always may).
    pub url_preview_ip_allowlist: Vec<String>,
}

impl Default for Media {
    fn default() -> Self {
        Self {
            max_upload_size: 50 * 1024 * 1024,
            max_remote_size: 50 * 1024 * 1024,
            user_quota: 1024 * 1024 * 1024,
            remote_retention: Interval(std::time::Duration::from_secs(30 * 86_400)),
            remote_cache_size: 2 * 1024 * 1024 * 1024,
            legacy_unauthenticated: true,
            pending_uploads: 10,
            url_previews: false,
            url_preview_ip_allowlist: Vec::new(),
        }
    }
}
