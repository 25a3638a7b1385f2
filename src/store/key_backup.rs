//! Server-side key backups: each user's backup versions, and the
//! encrypted room keys in each (opaque to the server but for the three
//! fields that decide which of two copies of a key is kept).

use ruma::UserId;
use serde::{Deserialize, Serialize};
use sled::{
    transaction::{ConflictableTransactionError, TransactionalTree},
    Transactional,
};

use super::{counter::Counter, decode, encode, key, tree::Tree};
use crate::store::error::{Result, StoreError};

/// `key_backup_versions`: key::join([user ID, version u64 BE]) → JSON
/// [`BackupVersion`]; a deleted version's record goes, and its number is
/// never given again (numbers come from the store's counter).
pub(super) const VERSIONS: &str = "key_backup_versions";
/// `key_backup_keys`: key::join([user ID, version u64 BE, room ID,
/// session ID]) → JSON [`BackedUpKey`].
pub(super) const KEYS: &str = "key_backup_keys";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupVersion {
    pub algorithm: String,
    pub auth_data: serde_json::Value,
    /// Keys held, and a tag that changes whenever they change.
    pub count: u64,
    pub etag: u64,
}

/// One room key as the client backed it up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackedUpKey {
    pub first_message_index: u64,
    pub forwarded_count: u64,
    pub is_verified: bool,
    pub session_data: serde_json::Value,
}

impl BackedUpKey {
    /// Whether this copy is kept over `other` (the spec's order: verified,
    /// then the lower first message index, then fewer forwards).
    pub fn better_than(&self, other: &BackedUpKey) -> bool {
        if self.is_verified != other.is_verified {
            return self.is_verified;
        }
        if self.first_message_index != other.first_message_index {
            return self.first_message_index < other.first_message_index;
        }
        self.forwarded_count < other.forwarded_count
    }
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

/// A key's place: room and session.
pub type KeyPlace = (String, String);

#[derive(Clone)]
pub struct KeyBackupTrees {
    versions: Tree,
    keys: Tree,
    ids: Counter,
}

fn version_key(user: &UserId, version: u64) -> Vec<u8> {
    key::join(&[user.as_bytes(), &version.to_be_bytes()])
}

/// Where `user`'s keys in `version` start, narrowed to a room and a session.
fn keys_prefix(user: &UserId, version: u64, room: Option<&str>, session: Option<&str>) -> Vec<u8> {
    let version = version.to_be_bytes();
    let mut parts: Vec<&[u8]> = vec![user.as_bytes(), &version];
    parts.extend(room.map(str::as_bytes));
    parts.extend(session.map(str::as_bytes));
    match session {
        Some(_) => key::join(&parts),
        None => key::prefix(&parts),
    }
}

impl KeyBackupTrees {
    pub(super) fn open(db: &super::tree::Database, ids: &Counter) -> Result<Self> {
        Ok(Self {
            versions: db.open_tree(VERSIONS)?,
            keys: db.open_tree(KEYS)?,
            ids: ids.clone(),
        })
    }

    /// A new, empty backup version for `user`; its number.
    pub fn create(
        &self,
        user: &UserId,
        algorithm: &str,
        auth_data: serde_json::Value,
    ) -> Result<u64> {
        let version = self.ids.next()?;
        let record = BackupVersion {
            algorithm: algorithm.to_owned(),
            auth_data,
            count: 0,
            etag: 0,
        };
        self.versions
            .insert(version_key(user, version), encode(&record)?)?;
        self.versions.flush()?;
        Ok(version)
    }

    /// `user`'s newest version, if they have one.
    pub fn latest(&self, user: &UserId) -> Result<Option<(u64, BackupVersion)>> {
        let Some(entry) = self
            .versions
            .scan_prefix(key::prefix(&[user.as_bytes()]))
            .next_back()
        else {
            return Ok(None);
        };
        let (key, value) = entry?;
        let version = key
            .len()
            .checked_sub(8)
            .and_then(|at| <[u8; 8]>::try_from(&key[at..]).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::data(format!("corrupt key in {VERSIONS}")))?;
        Ok(Some((version, decode(VERSIONS, &value)?)))
    }

    pub fn version(&self, user: &UserId, version: u64) -> Result<Option<BackupVersion>> {
        self.versions
            .get(version_key(user, version))?
            .map(|v| decode(VERSIONS, &v))
            .transpose()
    }

    /// Replaces a version's `auth_data`; false when there is no such version.
    pub fn update(
        &self,
        user: &UserId,
        version: u64,
        auth_data: serde_json::Value,
    ) -> Result<bool> {
        let Some(mut record) = self.version(user, version)? else {
            return Ok(false);
        };
        record.auth_data = auth_data;
        self.versions
            .insert(version_key(user, version), encode(&record)?)?;
        self.versions.flush()?;
        Ok(true)
    }

    /// Deletes a version and its keys; false when there was none.
    pub fn delete(&self, user: &UserId, version: u64) -> Result<bool> {
        if self.versions.remove(version_key(user, version))?.is_none() {
            return Ok(false);
        }
        let mut batch = sled::Batch::default();
        for entry in self
            .keys
            .scan_prefix(keys_prefix(user, version, None, None))
        {
            batch.remove(entry?.0);
        }
        self.keys.apply_batch(batch)?;
        self.keys.flush()?;
        Ok(true)
    }

    /// Stores each key unless the backup holds a better copy; the
    /// version's count and etag after. None: no such version.
    pub fn put(
        &self,
        user: &UserId,
        version: u64,
        keys: &[(KeyPlace, BackedUpKey)],
    ) -> Result<Option<BackupVersion>> {
        let encoded = keys
            .iter()
            .map(|((room, session), key)| {
                Ok((
                    keys_prefix(user, version, Some(room), Some(session)),
                    key,
                    encode(key)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.change(user, version, |stored, record| {
            let mut changed = false;
            for (place, key, bytes) in &encoded {
                let keep = match stored.get(place.as_slice())? {
                    None => {
                        record.count += 1;
                        true
                    }
                    Some(old) => {
                        let old: BackedUpKey =
                            decode(KEYS, &old).map_err(ConflictableTransactionError::Abort)?;
                        key.better_than(&old)
                    }
                };
                if keep {
                    stored.insert(place.as_slice(), bytes.as_slice())?;
                    changed = true;
                }
            }
            Ok(changed)
        })
    }

    /// Runs `change` on a version's keys and record in one transaction
    /// (a new etag when it says it changed something); the record after.
    /// None: no such version.
    fn change<F>(&self, user: &UserId, version: u64, change: F) -> Result<Option<BackupVersion>>
    where
        F: Fn(&TransactionalTree, &mut BackupVersion) -> TxResult<bool>,
    {
        let at = version_key(user, version);
        let _pass = self.versions.pass()?;
        let record =
            (self.versions.sled(), self.keys.sled()).transaction(|(versions, stored)| {
                let Some(record) = versions.get(&at)? else {
                    return Ok(None);
                };
                let mut record: BackupVersion =
                    decode(VERSIONS, &record).map_err(ConflictableTransactionError::Abort)?;
                if change(stored, &mut record)? {
                    record.etag += 1;
                    let bytes = encode(&record).map_err(ConflictableTransactionError::Abort)?;
                    versions.insert(at.as_slice(), bytes)?;
                }
                Ok(Some(record))
            })?;
        self.keys.flush()?;
        Ok(record)
    }

    /// The keys of a version, of one room, or one session.
    pub fn keys(
        &self,
        user: &UserId,
        version: u64,
        room: Option<&str>,
        session: Option<&str>,
    ) -> Result<Vec<(KeyPlace, BackedUpKey)>> {
        let prefix = keys_prefix(user, version, room, session);
        let skip = keys_prefix(user, version, None, None).len();
        let mut found = Vec::new();
        for entry in self.keys.scan_prefix(&prefix) {
            let (key, value) = entry?;
            if session.is_some() && key.len() != prefix.len() {
                continue;
            }
            let place = key
                .get(skip..)
                .and_then(key::split)
                .map(|(room, session)| {
                    (
                        String::from_utf8_lossy(room).into_owned(),
                        String::from_utf8_lossy(session).into_owned(),
                    )
                })
                .ok_or_else(|| StoreError::data(format!("corrupt key in {KEYS}")))?;
            found.push((place, decode(KEYS, &value)?));
        }
        Ok(found)
    }

    /// Deletes the keys of a version, of one room, or one session; the
    /// version after (None: no such version).
    pub fn delete_keys(
        &self,
        user: &UserId,
        version: u64,
        room: Option<&str>,
        session: Option<&str>,
    ) -> Result<Option<BackupVersion>> {
        let places: Vec<Vec<u8>> = self
            .keys(user, version, room, session)?
            .into_iter()
            .map(|((room, session), _)| keys_prefix(user, version, Some(&room), Some(&session)))
            .collect();
        self.change(user, version, |stored, record| {
            let mut removed = 0;
            for place in &places {
                if stored.remove(place.as_slice())?.is_some() {
                    removed += 1;
                }
            }
            record.count = record.count.saturating_sub(removed);
            Ok(removed > 0)
        })
    }
}

#[cfg(test)]
mod tests;
