//! The content repository: our users' uploads, other servers' media
//! fetched for them, thumbnails. Records in the store (`store::media`),
//! bytes in `data/media/` by content hash (`files.rs`); other servers'
//! media arrives through `peers` (`remote.rs`); thumbnails are made by
//! the `image` crate within a memory bound (`thumbnails.rs`).
//! Spec: client-server-api "Content repository".

pub mod files;
mod preview;
mod remote;
pub use remote::remote_fetches;
pub mod retention;
pub mod thumbnails;

use std::{collections::HashMap, sync::Arc, time::Duration};

use bytes::Buf;
use futures_util::Stream;
use http::StatusCode;
use ruma::{OwnedServerName, ServerName, UserId};

use crate::{
    config,
    error::{Error, Result},
    http_util::media::MediaFile,
    peers::Peers,
    store::{
        media::{Filled, MediaKey, MediaRecord, MediaStats, MediaTrees, StoredFile},
        FreeSpace,
    },
    time::now_ms,
};
use files::{Budget, Files, ReceiveError, Received};

/// How long an ID reserved by `/create` waits for its bytes (the spec's
/// recommendation).
const RESERVATION_MS: u64 = 24 * 3600 * 1000;
/// Longest a download waits for content still being uploaded.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Files received at once; more wait for a turn, briefly.
const RECEIVING_AT_ONCE: usize = 8;
/// Longest wait for a turn to receive.
const RECEIVE_TURN: Duration = Duration::from_secs(10);
/// Longest content types and file names kept.
const MAX_CONTENT_TYPE: usize = 255;
const MAX_FILENAME: usize = 255;

/// What a client says of the bytes it uploads.
#[derive(Debug, Default)]
pub struct Upload {
    pub content_type: Option<String>,
    pub filename: Option<String>,
    /// `Content-Length`, refused at once when over the limit.
    pub declared: Option<u64>,
}

/// A stored file ready to be served.
pub struct Download {
    pub path: std::path::PathBuf,
    pub size: u64,
    pub content_type: String,
    pub filename: Option<String>,
}

/// An upload's bytes, received but not yet named.
struct Incoming {
    received: Received,
    file: StoredFile,
    filename: Option<String>,
}

impl Download {
    /// The file as `http_util::media` serves it; `filename` (a client's
    /// choice in the path) stands in for the stored name.
    pub fn file<'a>(&'a self, filename: Option<&'a str>) -> MediaFile<'a> {
        MediaFile {
            path: self.path.clone(),
            size: self.size,
            content_type: &self.content_type,
            filename: filename.or(self.filename.as_deref()),
        }
    }
}

/// When a download may fetch from another server and wait.
#[derive(Debug, Clone, Copy)]
pub struct Fetch {
    pub allow_remote: bool,
    pub wait: Duration,
}

impl Fetch {
    /// `timeout_ms` as a client gives it (default 20 s, at most a minute).
    pub fn new(allow_remote: bool, timeout_ms: Option<u64>) -> Self {
        let wait = Duration::from_millis(timeout_ms.unwrap_or(20_000)).min(MAX_WAIT);
        Self { allow_remote, wait }
    }
}

/// The lock one fetch of a remote item holds while it runs.
type Turn = Arc<tokio::sync::Mutex<()>>;

pub struct MediaService {
    server_name: OwnedServerName,
    store: MediaTrees,
    files: Files,
    config: config::Media,
    peers: Arc<Peers>,
    free: FreeSpace,
    min_free: u64,
    idle: Duration,
    /// Held while a file is put in place and named, or unnamed and
    /// deleted, so a delete never removes a file an upload just named.
    naming: tokio::sync::Mutex<()>,
    /// Woken whenever content fills a reserved ID.
    filled: tokio::sync::Notify,
    /// One fetch per remote item at a time: later askers wait for it.
    fetching: std::sync::Mutex<HashMap<(String, String), Turn>>,
    /// Pages fetched for link previews, and the answers kept.
    pages: crate::net::web::WebClient,
    previews: preview::Previews,
    /// Thumbnails being made (decoding is the memory-hungry step).
    thumbnailing: Arc<tokio::sync::Semaphore>,
    /// Files being received at once (uploads and fetches): each may
    /// take the disk's free room, so only a few at a time.
    receiving: tokio::sync::Semaphore,
}

/// What the service needs from the configuration and the store.
pub struct Setup<'a> {
    pub config: &'a config::Config,
    pub store: &'a crate::store::Store,
    pub peers: Arc<Peers>,
    pub client: Arc<crate::net::https::HttpsClient>,
}

impl MediaService {
    /// Opens `data/media/` (what a stopped upload left in `tmp/` goes).
    pub fn new(setup: Setup) -> std::result::Result<Self, String> {
        let files = Files::open(setup.store.data_dir())
            .map_err(|e| format!("cannot open the media directory: {e}"))?;
        let store = setup.store.media.clone();
        let config = setup.config;
        let pages = crate::net::web::WebClient::new(
            setup.client.dns().clone(),
            crate::net::ip_policy::AddressPolicy::public_and(
                &config.media.url_preview_ip_allowlist,
                "media.url_preview_ip_allowlist",
            )?,
            crate::net::tls::client_config(
                config.federation.verify_certificates,
                config.federation.extra_ca_file.as_deref(),
            )?,
        );
        Ok(Self {
            pages,
            previews: Default::default(),
            server_name: setup.config.server_name.clone(),
            store,
            files,
            config: setup.config.media.clone(),
            peers: setup.peers,
            free: setup.store.free_space(),
            min_free: setup.config.limits.min_free_disk_mib * 1024 * 1024,
            idle: Duration::from_secs(setup.config.limits.body_timeout_secs),
            naming: tokio::sync::Mutex::new(()),
            filled: tokio::sync::Notify::new(),
            fetching: std::sync::Mutex::new(HashMap::new()),
            thumbnailing: Arc::new(tokio::sync::Semaphore::new(thumbnails::AT_ONCE)),
            receiving: tokio::sync::Semaphore::new(RECEIVING_AT_ONCE),
        })
    }

    pub fn config(&self) -> &config::Media {
        &self.config
    }

    pub fn server_name(&self) -> &ServerName {
        &self.server_name
    }

    /// `POST /upload`: stores the body under a new ID; its `mxc://` URI.
    pub async fn upload<S, B, E>(&self, user: &UserId, upload: Upload, body: S) -> Result<String>
    where
        S: Stream<Item = std::result::Result<B, E>>,
        B: Buf,
        E: std::fmt::Display,
    {
        let record = self.receive_upload(user, &upload, body).await?;
        let media_id = new_media_id();
        let at = self.local(&media_id);
        let _naming = self.naming.lock().await;
        let record = self.name(record, user).await?;
        self.store.insert(at, &record)?;
        self.store.flush().await?;
        Ok(format!("mxc://{}/{media_id}", self.server_name))
    }

    /// `POST /create`: reserves an ID for `user`'s later upload; its URI
    /// and when the reservation ends.
    pub fn create(&self, user: &UserId) -> Result<(String, u64)> {
        let now = now_ms();
        if self.store.pending_count(user, now)? >= self.config.pending_uploads {
            return Err(Error::limit_exceeded(
                "too many media IDs wait for their uploads: upload to them first",
                60_000,
            ));
        }
        let media_id = new_media_id();
        let record = MediaRecord {
            file: None,
            filename: None,
            uploader: Some(user.to_owned()),
            created_ms: now,
            accessed_ms: now,
        };
        let expires = now + RESERVATION_MS;
        self.store
            .reserve(self.local(&media_id), &record, expires)?;
        Ok((format!("mxc://{}/{media_id}", self.server_name), expires))
    }

    /// `PUT /upload/{serverName}/{mediaId}`: fills an ID `user` reserved.
    pub async fn upload_to<S, B, E>(
        &self,
        user: &UserId,
        server: &ServerName,
        media_id: &str,
        upload: Upload,
        body: S,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<B, E>>,
        B: Buf,
        E: std::fmt::Display,
    {
        let at = self.local(media_id);
        let reserved = match self.store.get(at)? {
            Some(record) if server == self.server_name => record,
            _ => return Err(Error::not_found("no media ID was made for this upload")),
        };
        if reserved.uploader.as_deref() != Some(user) {
            return Err(Error::forbidden("another user made this media ID"));
        }
        if reserved.file.is_some() {
            return Err(cannot_overwrite());
        }
        let received = self.receive_upload(user, &upload, body).await?;
        let _naming = self.naming.lock().await;
        let mut record = self.name(received, user).await?;
        record.created_ms = reserved.created_ms;
        let filled = self.store.fill_reserved(at, &record)?;
        match filled {
            Filled::Stored => {
                self.store.flush().await?;
                self.filled.notify_waiters();
                Ok(())
            }
            Filled::AlreadyFilled => {
                self.forget_if_unnamed(&record).await;
                Err(cannot_overwrite())
            }
            Filled::NotReserved => {
                self.forget_if_unnamed(&record).await;
                Err(Error::not_found("the media ID expired"))
            }
        }
    }

    /// Reads an upload's body into a temporary file, within the upload
    /// limit, the free disk and the user's quota.
    async fn receive_upload<S, B, E>(
        &self,
        user: &UserId,
        upload: &Upload,
        body: S,
    ) -> Result<Incoming>
    where
        S: Stream<Item = std::result::Result<B, E>>,
        B: Buf,
        E: std::fmt::Display,
    {
        let content_type = content_type(upload.content_type.as_deref())?;
        let filename = filename(upload.filename.as_deref())?;
        let limit = self.config.max_upload_size;
        if upload.declared.is_some_and(|declared| declared > limit) {
            return Err(too_large_upload(limit));
        }
        let used = self.store.usage(user)?;
        let quota = self.config.user_quota;
        let over_quota = |size: u64| quota > 0 && used.saturating_add(size) > quota;
        if over_quota(upload.declared.unwrap_or(0)) {
            return Err(quota_reached(quota));
        }
        let _turn = self.receiving_turn().await?;
        let received = self
            .files
            .receive(body, self.budget(limit))
            .await
            .map_err(|e| receive_error(e, limit, StatusCode::PAYLOAD_TOO_LARGE))?;
        if over_quota(received.size) {
            return Err(quota_reached(quota));
        }
        let file = StoredFile {
            sha256: received.sha256,
            size: received.size,
            content_type,
        };
        Ok(Incoming {
            received,
            file,
            filename,
        })
    }

    /// A turn to receive a file, or 429 when none came soon.
    async fn receiving_turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        let busy = || Error::limit_exceeded("too many files are arriving at once; try again", 5000);
        tokio::time::timeout(RECEIVE_TURN, self.receiving.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())
    }

    /// What may be received now: `limit`, and what the disk can take
    /// above the store's reserve.
    fn budget(&self, limit: u64) -> Budget {
        let room = self
            .free
            .bytes()
            .map_or(u64::MAX, |free| free.saturating_sub(self.min_free));
        Budget {
            limit,
            room,
            idle: self.idle,
        }
    }

    /// Puts received bytes in place; the record that names them (the
    /// caller holds `naming` until the record is stored).
    async fn name(&self, incoming: Incoming, user: &UserId) -> Result<MediaRecord> {
        let Incoming {
            received,
            file,
            filename,
        } = incoming;
        self.files
            .keep(received)
            .await
            .map_err(|e| Error::internal(format!("storing media: {e}")))?;
        let now = now_ms();
        Ok(MediaRecord {
            file: Some(file),
            filename,
            uploader: Some(user.to_owned()),
            created_ms: now,
            accessed_ms: now,
        })
    }

    /// Puts received bytes in place and stores the record naming them at
    /// `at` (another server's media, a preview's image: no uploader).
    async fn keep_unowned(
        &self,
        at: MediaKey<'_>,
        received: Received,
        content_type: String,
        filename: Option<String>,
    ) -> Result<MediaRecord> {
        let now = now_ms();
        let record = MediaRecord {
            file: Some(StoredFile {
                sha256: received.sha256,
                size: received.size,
                content_type,
            }),
            filename,
            uploader: None,
            created_ms: now,
            accessed_ms: now,
        };
        let _naming = self.naming.lock().await;
        self.files
            .keep(received)
            .await
            .map_err(|e| Error::internal(format!("storing media: {e}")))?;
        self.store.insert(at, &record)?;
        Ok(record)
    }

    /// Deletes a file just put in place if no record came to name it.
    async fn forget_if_unnamed(&self, record: &MediaRecord) {
        if let Some(file) = &record.file {
            if matches!(self.store.file_in_use(&file.sha256), Ok(false)) {
                self.files.remove(&file.sha256);
            }
        }
    }

    /// The stored media `server`/`media_id`, fetched from its server
    /// first if it is another's and `fetch` allows.
    pub async fn download(
        &self,
        server: &ServerName,
        media_id: &str,
        fetch: Fetch,
    ) -> Result<Download> {
        let record = if server == self.server_name {
            self.local_content(media_id, fetch.wait).await?
        } else {
            self.remote_content(server, media_id, fetch).await?
        };
        let at = MediaKey {
            server: server.as_str(),
            media_id,
        };
        // Only retention reads this: a download still works when it
        // cannot be written (a full disk refuses writes, not reads).
        if let Err(e) = self.store.touch(at, &record, now_ms()) {
            tracing::debug!(error = %e, "could not note a media download");
        }
        let file = record
            .file
            .ok_or_else(|| Error::internal("stored media has no file"))?;
        Ok(Download {
            path: self.files.path(&file.sha256),
            size: file.size,
            content_type: file.content_type,
            filename: record.filename,
        })
    }

    /// Our media with its content, waiting up to `wait` for an upload
    /// to a reserved ID.
    async fn local_content(&self, media_id: &str, wait: Duration) -> Result<MediaRecord> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let filled = self.filled.notified();
            match self.store.get(self.local(media_id))? {
                None => return Err(unknown_media()),
                Some(record) if record.file.is_some() => return Ok(record),
                Some(_) => {}
            }
            if tokio::time::timeout_at(deadline, filled).await.is_err() {
                return Err(Error::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "M_NOT_YET_UPLOADED",
                    "the content has not been uploaded yet",
                ));
            }
        }
    }

    /// Whether `server`/`media_id` is stored here (ours, or fetched).
    pub fn has(&self, server: &ServerName, media_id: &str) -> Result<bool> {
        let at = MediaKey {
            server: server.as_str(),
            media_id,
        };
        Ok(self.store.get(at)?.is_some())
    }

    pub fn stats(&self) -> Result<MediaStats> {
        Ok(self.store.stats(self.server_name.as_str())?)
    }

    fn local<'a>(&'a self, media_id: &'a str) -> MediaKey<'a> {
        MediaKey {
            server: self.server_name.as_str(),
            media_id,
        }
    }
}

/// 24 random letters and digits: 143 bits, unguessable.
fn new_media_id() -> String {
    use rand::{distributions::Alphanumeric, Rng};
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// The upload's `Content-Type` when it is one (`type/subtype` and
/// parameters, printable ASCII), else `application/octet-stream`'s
/// default when none is given.
fn content_type(given: Option<&str>) -> Result<String> {
    let Some(given) = given.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok("application/octet-stream".into());
    };
    let essence = given.split(';').next().unwrap_or_default().trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let valid = given.len() <= MAX_CONTENT_TYPE
        && given.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence
            .split_once('/')
            .is_some_and(|(kind, subtype)| token(kind) && token(subtype));
    if !valid {
        return Err(Error::invalid_param(format!(
            "Content-Type {given:?} is not a media type"
        )));
    }
    Ok(given.to_owned())
}

/// The upload's file name, when it is a usable one.
fn filename(given: Option<&str>) -> Result<Option<String>> {
    let Some(given) = given.filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    if given.len() > MAX_FILENAME || given.chars().any(|c| c.is_control()) {
        return Err(Error::invalid_param(format!(
            "filename must be at most {MAX_FILENAME} bytes without control characters"
        )));
    }
    Ok(Some(given.to_owned()))
}

fn too_large_upload(limit: u64) -> Error {
    Error::too_large(format!("uploads may be at most {limit} bytes"))
}

fn quota_reached(quota: u64) -> Error {
    Error::forbidden(format!(
        "this upload would take your media over the quota of {quota} bytes"
    ))
}

fn cannot_overwrite() -> Error {
    Error::new(
        StatusCode::CONFLICT,
        "M_CANNOT_OVERWRITE_MEDIA",
        "this media ID has its content already",
    )
}

fn unknown_media() -> Error {
    Error::not_found("no such media")
}

/// A failed receive as a Matrix error; `too_large` is 413 for uploads
/// and 502 for another server's media.
fn receive_error(error: ReceiveError, limit: u64, too_large: StatusCode) -> Error {
    match error {
        ReceiveError::TooLarge => Error::new(
            too_large,
            "M_TOO_LARGE",
            format!("the content is larger than {limit} bytes"),
        ),
        ReceiveError::Stalled => Error::new(
            StatusCode::REQUEST_TIMEOUT,
            "M_UNKNOWN",
            "the content stopped arriving",
        ),
        ReceiveError::DiskFull => crate::store::StoreError::Full.into(),
        ReceiveError::Body(e) => Error::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            format!("reading the content: {e}"),
        ),
        ReceiveError::Io(e) => Error::internal(format!("storing media: {e}")),
    }
}
