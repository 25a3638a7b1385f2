//! The content repository's records: what each `mxc://` ID names, the
//! thumbnails made of it, how many records name each stored file, and
//! each user's bytes uploaded. The bytes themselves are files under
//! `data/media/`, named by their SHA-256 (see `crate::media::files`).

use ruma::{OwnedUserId, UserId};
use serde::{Deserialize, Serialize};
use sled::{transaction::ConflictableTransactionError, Transactional};

use super::{decode, encode, key, tree::Tree, u64_value};
use crate::store::error::{Result, StoreError};

/// `media`: key::join([server name, media ID]) → JSON [`MediaRecord`];
/// our uploads under our name, other servers' media we cached under theirs.
pub(super) const MEDIA: &str = "media";
/// `media_thumbnails`: key::join([server name, media ID, method, width
/// u32 BE, height u32 BE]) → JSON [`StoredFile`]: thumbnails made so far.
pub(super) const THUMBNAILS: &str = "media_thumbnails";
/// `media_files`: SHA-256 (32 bytes) → u64 BE: how many media and
/// thumbnail records name that file; the file goes when it reaches 0.
pub(super) const FILES: &str = "media_files";
/// `media_usage`: user ID → u64 BE: bytes of the user's uploads (quota).
pub(super) const USAGE: &str = "media_usage";
/// `media_pending`: key::join([user ID, media ID]) → u64 BE: when an ID
/// the user reserved by `/create` and has not filled expires (ms).
pub(super) const PENDING: &str = "media_pending";

/// A stored file: its content hash and length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    pub sha256: [u8; 32],
    pub size: u64,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    /// None while an ID reserved by `/create` waits for its bytes.
    pub file: Option<StoredFile>,
    pub filename: Option<String>,
    /// Our user who uploaded it; none for other servers' media.
    pub uploader: Option<OwnedUserId>,
    pub created_ms: u64,
    /// Last downloaded (updated at most hourly): remote media retention.
    pub accessed_ms: u64,
}

/// Where a media item is kept.
#[derive(Debug, Clone, Copy)]
pub struct MediaKey<'a> {
    pub server: &'a str,
    pub media_id: &'a str,
}

impl MediaKey<'_> {
    fn bytes(&self) -> Vec<u8> {
        key::join(&[self.server.as_bytes(), self.media_id.as_bytes()])
    }
}

/// A thumbnail's size and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbnailSpec {
    pub width: u32,
    pub height: u32,
    pub crop: bool,
}

/// What storing content found.
#[derive(Debug, PartialEq, Eq)]
pub enum Filled {
    Stored,
    /// The ID has content already (`M_CANNOT_OVERWRITE_MEDIA`).
    AlreadyFilled,
    /// No such ID was reserved (or it expired).
    NotReserved,
}

/// What removing a media item freed.
#[derive(Debug, Default)]
pub struct Removed {
    /// Files no record names any more: the caller deletes them.
    pub unreferenced: Vec<[u8; 32]>,
    pub bytes: u64,
}

#[derive(Clone)]
pub struct MediaTrees {
    media: Tree,
    thumbnails: Tree,
    files: Tree,
    usage: Tree,
    pending: Tree,
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

fn add(tree: &sled::transaction::TransactionalTree, key: &[u8], delta: i64) -> TxResult<u64> {
    let old = match tree.get(key)? {
        Some(v) => u64_value(FILES, &v).map_err(ConflictableTransactionError::Abort)?,
        None => 0,
    };
    let new = old.saturating_add_signed(delta);
    if new == 0 {
        tree.remove(key)?;
    } else {
        tree.insert(key, &new.to_be_bytes())?;
    }
    Ok(new)
}

impl MediaTrees {
    pub(super) fn open(db: &super::tree::Database) -> Result<Self> {
        Ok(Self {
            media: db.open_tree(MEDIA)?,
            thumbnails: db.open_tree(THUMBNAILS)?,
            files: db.open_tree(FILES)?,
            usage: db.open_tree(USAGE)?,
            pending: db.open_tree(PENDING)?,
        })
    }

    pub fn get(&self, at: MediaKey) -> Result<Option<MediaRecord>> {
        self.media
            .get(at.bytes())?
            .map(|v| decode(MEDIA, &v))
            .transpose()
    }

    /// Reserves a new ID for `user` until `expires_ms` (`/create`).
    pub fn reserve(&self, at: MediaKey, record: &MediaRecord, expires_ms: u64) -> Result<()> {
        let user = record
            .uploader
            .as_ref()
            .ok_or_else(|| StoreError::data("a reserved media ID needs its user"))?;
        let pending = key::join(&[user.as_bytes(), at.media_id.as_bytes()]);
        let record = encode(record)?;
        let _pass = self.media.pass()?;
        (self.media.sled(), self.pending.sled()).transaction(|(media, reserved)| {
            media.insert(at.bytes(), record.as_slice())?;
            reserved.insert(pending.as_slice(), &expires_ms.to_be_bytes())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }

    /// `user`'s reserved, unfilled IDs that have not expired by `now_ms`.
    pub fn pending_count(&self, user: &UserId, now_ms: u64) -> Result<usize> {
        let mut count = 0;
        for entry in self.pending.scan_prefix(key::prefix(&[user.as_bytes()])) {
            let (_, expires) = entry?;
            if u64_value(PENDING, &expires)? > now_ms {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Stores `record` (with its file) at a new ID, counting the file's
    /// use and the uploader's bytes, in one transaction.
    pub fn insert(&self, at: MediaKey, record: &MediaRecord) -> Result<()> {
        match self.fill(at, record, false)? {
            Filled::Stored => Ok(()),
            other => Err(StoreError::data(format!(
                "media {}/{} not stored: {other:?}",
                at.server, at.media_id
            ))),
        }
    }

    /// Gives an ID reserved by `/create` its content.
    pub fn fill_reserved(&self, at: MediaKey, record: &MediaRecord) -> Result<Filled> {
        self.fill(at, record, true)
    }

    fn fill(&self, at: MediaKey, record: &MediaRecord, reserved: bool) -> Result<Filled> {
        let file = record
            .file
            .as_ref()
            .ok_or_else(|| StoreError::data("stored media needs its file"))?;
        let bytes = encode(record)?;
        let user = record.uploader.as_ref().map(|u| u.as_bytes().to_vec());
        let pending = user
            .as_ref()
            .map(|u| key::join(&[u.as_slice(), at.media_id.as_bytes()]));
        let _pass = self.media.pass()?;
        let filled = (
            self.media.sled(),
            self.files.sled(),
            self.usage.sled(),
            self.pending.sled(),
        )
            .transaction(|(media, files, usage, pending_ids)| {
                let existing = media.get(at.bytes())?;
                match (&existing, reserved) {
                    (Some(old), true) => {
                        let old: MediaRecord =
                            decode(MEDIA, old).map_err(ConflictableTransactionError::Abort)?;
                        if old.file.is_some() {
                            return Ok(Filled::AlreadyFilled);
                        }
                    }
                    (None, true) => return Ok(Filled::NotReserved),
                    (Some(_), false) => return Ok(Filled::AlreadyFilled),
                    (None, false) => {}
                }
                if let Some(pending) = &pending {
                    pending_ids.remove(pending.as_slice())?;
                }
                media.insert(at.bytes(), bytes.as_slice())?;
                add(files, &file.sha256, 1)?;
                if let Some(user) = &user {
                    add(usage, user, file.size as i64)?;
                }
                Ok(Filled::Stored)
            })?;
        Ok(filled)
    }

    /// Notes a download at `now_ms`, at most once an hour per item.
    pub fn touch(&self, at: MediaKey, record: &MediaRecord, now_ms: u64) -> Result<()> {
        const HOUR_MS: u64 = 3_600_000;
        if now_ms < record.accessed_ms.saturating_add(HOUR_MS) {
            return Ok(());
        }
        let mut record = record.clone();
        record.accessed_ms = now_ms;
        self.media.insert(at.bytes(), encode(&record)?)?;
        Ok(())
    }

    /// Bytes `user` has uploaded (what is left of them).
    pub fn usage(&self, user: &UserId) -> Result<u64> {
        self.usage
            .get(user.as_bytes())?
            .map_or(Ok(0), |v| u64_value(USAGE, &v))
    }

    pub fn thumbnail(&self, at: MediaKey, spec: ThumbnailSpec) -> Result<Option<StoredFile>> {
        self.thumbnails
            .get(thumbnail_key(at, spec))?
            .map(|v| decode(THUMBNAILS, &v))
            .transpose()
    }

    /// Records a thumbnail made of `at`, counting its file's use.
    pub fn insert_thumbnail(
        &self,
        at: MediaKey,
        spec: ThumbnailSpec,
        file: &StoredFile,
    ) -> Result<()> {
        let key = thumbnail_key(at, spec);
        let bytes = encode(file)?;
        let _pass = self.media.pass()?;
        (self.thumbnails.sled(), self.files.sled()).transaction(|(thumbnails, files)| {
            if thumbnails
                .insert(key.as_slice(), bytes.as_slice())?
                .is_none()
            {
                add(files, &file.sha256, 1)?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }

    /// Removes a media item and its thumbnails; says which files no
    /// record names any more (None: there was no such item).
    pub fn remove(&self, at: MediaKey) -> Result<Option<Removed>> {
        let thumbnails: Vec<(sled::IVec, StoredFile)> = self
            .thumbnails
            .scan_prefix(key::prefix(&[at.server.as_bytes(), at.media_id.as_bytes()]))
            .map(|entry| {
                let (key, value) = entry?;
                Ok((key, decode(THUMBNAILS, &value)?))
            })
            .collect::<Result<_>>()?;
        let _pass = self.media.pass()?;
        let removed = (
            self.media.sled(),
            self.thumbnails.sled(),
            self.files.sled(),
            self.usage.sled(),
        )
            .transaction(|(media, thumbnail_tree, files, usage)| {
                let mut removed = Removed::default();
                let Some(old) = media.remove(at.bytes())? else {
                    return Ok(None);
                };
                let old: MediaRecord =
                    decode(MEDIA, &old).map_err(ConflictableTransactionError::Abort)?;
                let mut release = |file: &StoredFile| -> TxResult<()> {
                    removed.bytes += file.size;
                    if add(files, &file.sha256, -1)? == 0 {
                        removed.unreferenced.push(file.sha256);
                    }
                    Ok(())
                };
                for (key, file) in &thumbnails {
                    if thumbnail_tree.remove(key)?.is_some() {
                        release(file)?;
                    }
                }
                if let Some(file) = &old.file {
                    release(file)?;
                    if let Some(user) = &old.uploader {
                        add(usage, user.as_bytes(), -(file.size as i64))?;
                    }
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(Some(removed))
            })?;
        Ok(removed)
    }

    /// Whether any record names the file with this hash.
    pub fn file_in_use(&self, sha256: &[u8; 32]) -> Result<bool> {
        Ok(self.files.contains_key(sha256)?)
    }

    /// Every media item kept for another server than `ours`, with its
    /// record (a scan: retention runs hourly).
    pub fn remote(&self, ours: &str) -> Result<Vec<(String, String, MediaRecord)>> {
        let mut found = Vec::new();
        for entry in self.media.iter() {
            let (key, value) = entry?;
            let Some((server, media_id)) = key::split(&key) else {
                continue;
            };
            if server == ours.as_bytes() {
                continue;
            }
            found.push((
                String::from_utf8_lossy(server).into_owned(),
                String::from_utf8_lossy(media_id).into_owned(),
                decode(MEDIA, &value)?,
            ));
        }
        Ok(found)
    }

    /// Media items and their files' bytes, ours and other servers'.
    pub fn stats(&self, ours: &str) -> Result<MediaStats> {
        let mut stats = MediaStats::default();
        for entry in self.media.iter() {
            let (key, value) = entry?;
            let record: MediaRecord = decode(MEDIA, &value)?;
            let size = record.file.as_ref().map_or(0, |f| f.size);
            if key::split(&key).is_some_and(|(server, _)| server == ours.as_bytes()) {
                stats.local_items += 1;
                stats.local_bytes += size;
            } else {
                stats.remote_items += 1;
                stats.remote_bytes += size;
            }
        }
        stats.files = self.files.len() as u64;
        Ok(stats)
    }

    /// Forgets reserved IDs that expired by `now_ms`; how many.
    pub fn drop_expired_reservations(&self, now_ms: u64) -> Result<usize> {
        let mut dropped = 0;
        for entry in self.pending.iter() {
            let (key, expires) = entry?;
            if u64_value(PENDING, &expires)? > now_ms {
                continue;
            }
            let Some((user, media_id)) = key::split(&key) else {
                continue;
            };
            let server = UserId::parse(String::from_utf8_lossy(user).as_ref())
                .map(|u| u.server_name().to_owned())
                .map_err(|e| StoreError::data(format!("corrupt key in {PENDING}: {e}")))?;
            let media_key = key::join(&[server.as_bytes(), media_id]);
            let _pass = self.media.pass()?;
            (self.media.sled(), self.pending.sled()).transaction(|(media, pending)| {
                if let Some(old) = media.get(&media_key)? {
                    let old: MediaRecord =
                        decode(MEDIA, &old).map_err(ConflictableTransactionError::Abort)?;
                    if old.file.is_none() {
                        media.remove(media_key.as_slice())?;
                    }
                }
                pending.remove(&key)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?;
            dropped += 1;
        }
        Ok(dropped)
    }

    /// Durably writes what was stored (before an upload is acknowledged).
    pub async fn flush(&self) -> Result<()> {
        self.media.flush_async().await?;
        Ok(())
    }
}

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct MediaStats {
    pub local_items: u64,
    pub local_bytes: u64,
    pub remote_items: u64,
    pub remote_bytes: u64,
    /// Distinct files kept (uploads and thumbnails, each content once).
    pub files: u64,
}

fn thumbnail_key(at: MediaKey, spec: ThumbnailSpec) -> Vec<u8> {
    let method: &[u8] = if spec.crop { b"crop" } else { b"scale" };
    key::join(&[
        at.server.as_bytes(),
        at.media_id.as_bytes(),
        method,
        &spec.width.to_be_bytes(),
        &spec.height.to_be_bytes(),
    ])
}

#[cfg(test)]
mod tests;
