//! Server-side key backups: a user's devices keep their encrypted room
//! keys here, so a new device can read old messages. The server sees only
//! which copy of a key is better (verified, earlier first message, fewer
//! forwards); everything else is ciphertext it stores as given.
//! Spec: client-server-api "Server-side key backups".

use std::collections::BTreeMap;

use http::StatusCode;
use ruma::{OwnedRoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    error::{Error, Result},
    request::{json_at_most, parsed},
    store::key_backup::{BackedUpKey, BackupVersion, KeyBackupTrees},
};

/// The one backup algorithm the spec defines.
pub const ALGORITHM: &str = "m.megolm_backup.v1.curve25519-aes-sha2";
/// Largest `auth_data`, and one key's `session_data`, in bytes.
const MAX_AUTH_DATA: usize = 16 * 1024;
const MAX_SESSION_DATA: usize = 16 * 1024;
/// Session IDs longer than this are refused.
const MAX_SESSION_ID: usize = 255;

/// `POST`/`PUT room_keys/version` bodies.
#[derive(Debug, Deserialize)]
pub struct VersionBody {
    pub algorithm: String,
    pub auth_data: serde_json::Map<String, Value>,
    #[serde(default)]
    pub version: Option<String>,
}

/// A version as `GET room_keys/version` answers it.
#[derive(Debug, Serialize)]
pub struct VersionInfo {
    pub algorithm: String,
    pub auth_data: Value,
    pub count: u64,
    pub etag: String,
    pub version: String,
}

/// One key as clients send and read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyData {
    pub first_message_index: u64,
    pub forwarded_count: u64,
    pub is_verified: bool,
    pub session_data: serde_json::Map<String, Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RoomKeys {
    #[serde(default)]
    pub sessions: BTreeMap<String, KeyData>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AllKeys {
    #[serde(default)]
    pub rooms: BTreeMap<String, RoomKeys>,
}

/// What a change to the keys leaves: `PUT`/`DELETE room_keys/keys…`.
#[derive(Debug, Serialize)]
pub struct Counts {
    pub count: u64,
    pub etag: String,
}

pub struct KeyBackups {
    trees: KeyBackupTrees,
}

fn unknown_version() -> Error {
    Error::not_found("Unknown backup version")
}

/// A version as the path or query gives it.
fn number(version: &str) -> Result<u64> {
    version.parse().map_err(|_| unknown_version())
}

fn counts(version: &BackupVersion) -> Counts {
    Counts {
        count: version.count,
        etag: version.etag.to_string(),
    }
}

fn checked(body: &VersionBody) -> Result<Value> {
    if body.algorithm != ALGORITHM {
        return Err(Error::invalid_param(format!(
            "unknown backup algorithm {:?}",
            body.algorithm
        )));
    }
    let auth_data = Value::Object(body.auth_data.clone());
    json_at_most("auth_data", &auth_data, MAX_AUTH_DATA)?;
    Ok(auth_data)
}

impl From<BackedUpKey> for KeyData {
    fn from(key: BackedUpKey) -> Self {
        KeyData {
            first_message_index: key.first_message_index,
            forwarded_count: key.forwarded_count,
            is_verified: key.is_verified,
            session_data: match key.session_data {
                Value::Object(map) => map,
                _ => Default::default(),
            },
        }
    }
}

impl KeyBackups {
    pub fn new(trees: KeyBackupTrees) -> Self {
        Self { trees }
    }

    pub fn create(&self, user: &UserId, body: &VersionBody) -> Result<String> {
        let auth_data = checked(body)?;
        Ok(self.trees.create(user, ALGORITHM, auth_data)?.to_string())
    }

    /// `version`, or the latest: clients read "No current backup version"
    /// as "offer to set one up".
    pub fn info(&self, user: &UserId, version: Option<&str>) -> Result<VersionInfo> {
        let found = match version {
            None => self.trees.latest(user)?,
            Some(text) => {
                let number = number(text)?;
                self.trees
                    .version(user, number)?
                    .map(|record| (number, record))
            }
        };
        let (number, record) = found.ok_or_else(|| match version {
            None => Error::not_found("No current backup version"),
            Some(_) => unknown_version(),
        })?;
        Ok(VersionInfo {
            algorithm: record.algorithm,
            auth_data: record.auth_data,
            count: record.count,
            etag: record.etag.to_string(),
            version: number.to_string(),
        })
    }

    pub fn update(&self, user: &UserId, version: &str, body: &VersionBody) -> Result<()> {
        if body
            .version
            .as_deref()
            .is_some_and(|given| given != version)
        {
            return Err(Error::invalid_param("the body's version is not the path's"));
        }
        let auth_data = checked(body)?;
        match self.trees.update(user, number(version)?, auth_data)? {
            true => Ok(()),
            false => Err(unknown_version()),
        }
    }

    pub fn delete(&self, user: &UserId, version: &str) -> Result<()> {
        match self.trees.delete(user, number(version)?)? {
            true => Ok(()),
            false => Err(unknown_version()),
        }
    }

    /// Stores keys in `version`, which must be the latest.
    pub fn put(&self, user: &UserId, version: &str, keys: AllKeys) -> Result<Counts> {
        let (latest, _) = self
            .trees
            .latest(user)?
            .ok_or_else(|| Error::not_found("No current backup version"))?;
        if number(version).ok() != Some(latest) {
            return Err(Error::new(
                StatusCode::FORBIDDEN,
                "M_WRONG_ROOM_KEYS_VERSION",
                "keys go to the current backup version only",
            )
            .with_field("current_version", latest.to_string()));
        }
        let mut places = Vec::new();
        for (room, room_keys) in keys.rooms {
            let room: OwnedRoomId = parsed("roomId", &room)?;
            for (session, key) in room_keys.sessions {
                if session.is_empty() || session.len() > MAX_SESSION_ID {
                    return Err(Error::invalid_param("sessionId is empty or too long"));
                }
                let session_data = Value::Object(key.session_data);
                json_at_most("session_data", &session_data, MAX_SESSION_DATA)?;
                let stored = BackedUpKey {
                    first_message_index: key.first_message_index,
                    forwarded_count: key.forwarded_count,
                    is_verified: key.is_verified,
                    session_data,
                };
                places.push(((room.to_string(), session), stored));
            }
        }
        let record = self
            .trees
            .put(user, latest, &places)?
            .ok_or_else(unknown_version)?;
        Ok(counts(&record))
    }

    /// Every key of `version`, optionally of one room.
    pub fn keys(&self, user: &UserId, version: &str, room: Option<&str>) -> Result<AllKeys> {
        let number = number(version)?;
        if self.trees.version(user, number)?.is_none() {
            return Err(unknown_version());
        }
        let mut all = AllKeys::default();
        for ((room, session), key) in self.trees.keys(user, number, room, None)? {
            all.rooms
                .entry(room)
                .or_default()
                .sessions
                .insert(session, key.into());
        }
        Ok(all)
    }

    /// One key of `version`.
    pub fn key(&self, user: &UserId, version: &str, room: &str, session: &str) -> Result<KeyData> {
        let number = number(version)?;
        if self.trees.version(user, number)?.is_none() {
            return Err(unknown_version());
        }
        let found = self.trees.keys(user, number, Some(room), Some(session))?;
        found
            .into_iter()
            .next()
            .map(|(_, key)| key.into())
            .ok_or_else(|| Error::not_found("No room key found"))
    }

    /// Deletes the keys of `version`, of one room or one session.
    pub fn delete_keys(
        &self,
        user: &UserId,
        version: &str,
        room: Option<&str>,
        session: Option<&str>,
    ) -> Result<Counts> {
        let record = self
            .trees
            .delete_keys(user, number(version)?, room, session)?
            .ok_or_else(unknown_version)?;
        Ok(counts(&record))
    }
}
