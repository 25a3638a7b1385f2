//! End-to-end encryption keys of our users' devices, one-time keys to hand
//! out, when each user's keys last changed (for clients' device lists),
//! and the keys other servers gave for their users.

use crate::store::tree::Tree;
use ruma::UserId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{decode, encode};
use crate::store::error::Result;

/// `device_keys`: `user_id 0xFF device_id` → the signed device keys as uploaded.
pub(super) const DEVICE_KEYS: &str = "device_keys";
/// `one_time_keys`: `user_id 0xFF device_id 0xFF algorithm:key_id` → key JSON.
pub(super) const ONE_TIME_KEYS: &str = "one_time_keys";
/// `fallback_keys`: `user_id 0xFF device_id 0xFF algorithm` → `{"algorithm:key_id": key}`.
pub(super) const FALLBACK_KEYS: &str = "fallback_keys";
/// `fallback_used`: `user_id 0xFF device_id 0xFF algorithm` → empty: the
/// device's fallback key of that algorithm was handed out since uploaded,
/// so the client is told to replace it.
pub(super) const FALLBACK_USED: &str = "fallback_used";
/// `cross_signing_keys`: `user_id 0xFF usage` (`master`, `self_signing`,
/// `user_signing`) → the key JSON.
pub(super) const CROSS_SIGNING_KEYS: &str = "cross_signing_keys";
/// `key_changes`: `user_id` → stream position (u64 BE) of the user's
/// latest device or key change.
pub(super) const KEY_CHANGES: &str = "key_changes";
/// `key_signatures`: `signer 0xFF user_id 0xFF key_id` → `{"ed25519:…":
/// signature}`: our user's signatures of another server's user's key,
/// shown only to the signer.
pub(super) const KEY_SIGNATURES: &str = "key_signatures";
/// `remote_keys`: `user_id` → JSON [`RemoteKeys`]: another server's answer
/// for one of its users, kept while nothing says the keys changed.
pub(super) const REMOTE_KEYS: &str = "remote_keys";

/// A remote user's keys as their server gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteKeys {
    /// The user's `key_changes` position when asked: a later change (an
    /// `m.device_list_update` or `m.signing_key_update`) outdates these.
    pub changed_at: u64,
    /// When they were fetched (Unix ms).
    pub fetched_ms: u64,
    /// Device ID → signed device keys.
    pub devices: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_signing_key: Option<Value>,
}

#[derive(Clone)]
pub struct E2eeTrees {
    device_keys: Tree,
    one_time_keys: Tree,
    fallback_keys: Tree,
    fallback_used: Tree,
    cross_signing: Tree,
    changes: Tree,
    remote: Tree,
    signatures: Tree,
    /// The changes made since open, by position, in memory.
    recent: super::recent_changes::RecentChanges,
}

fn key(parts: &[&str]) -> Vec<u8> {
    super::key::join(&bytes_of(parts))
}

fn prefix(parts: &[&str]) -> Vec<u8> {
    super::key::prefix(&bytes_of(parts))
}

fn bytes_of<'a>(parts: &[&'a str]) -> Vec<&'a [u8]> {
    parts.iter().map(|p| p.as_bytes()).collect()
}

impl E2eeTrees {
    pub(super) fn open(db: &crate::store::tree::Database) -> sled::Result<Self> {
        let changes = db.open_tree(KEY_CHANGES)?;
        // Every change from now on is after the newest stored.
        let mut newest = 0;
        for value in changes.iter().values() {
            if let Ok(position) = <[u8; 8]>::try_from(value?.as_ref()) {
                newest = newest.max(u64::from_be_bytes(position));
            }
        }
        Ok(Self {
            recent: super::recent_changes::RecentChanges::from(newest),
            changes,
            device_keys: db.open_tree(DEVICE_KEYS)?,
            one_time_keys: db.open_tree(ONE_TIME_KEYS)?,
            fallback_keys: db.open_tree(FALLBACK_KEYS)?,
            fallback_used: db.open_tree(FALLBACK_USED)?,
            cross_signing: db.open_tree(CROSS_SIGNING_KEYS)?,
            remote: db.open_tree(REMOTE_KEYS)?,
            signatures: db.open_tree(KEY_SIGNATURES)?,
        })
    }

    pub fn put_device_keys(&self, user: &UserId, device: &str, keys: &Value) -> Result<()> {
        self.device_keys
            .insert(key(&[user.as_str(), device]), encode(keys)?)?;
        Ok(())
    }

    pub fn device_keys(&self, user: &UserId, device: &str) -> Result<Option<Value>> {
        self.device_keys
            .get(key(&[user.as_str(), device]))?
            .map(|v| decode(DEVICE_KEYS, &v))
            .transpose()
    }

    /// (device ID, keys) of every device of `user` with keys.
    pub fn all_device_keys(&self, user: &UserId) -> Result<Vec<(String, Value)>> {
        let prefix = prefix(&[user.as_str()]);
        self.device_keys
            .scan_prefix(&prefix)
            .map(|entry| {
                let (k, v) = entry?;
                let device = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                Ok((device, decode(DEVICE_KEYS, &v)?))
            })
            .collect()
    }

    /// Forgets a deleted device's keys.
    pub fn remove_device(&self, user: &UserId, device: &str) -> Result<()> {
        self.device_keys.remove(key(&[user.as_str(), device]))?;
        for tree in [
            &self.one_time_keys,
            &self.fallback_keys,
            &self.fallback_used,
        ] {
            for k in tree.scan_prefix(prefix(&[user.as_str(), device])).keys() {
                tree.remove(k?)?;
            }
        }
        Ok(())
    }

    pub fn put_one_time_key(
        &self,
        user: &UserId,
        device: &str,
        id: &str,
        value: &Value,
    ) -> Result<()> {
        self.one_time_keys
            .insert(key(&[user.as_str(), device, id]), encode(value)?)?;
        Ok(())
    }

    /// Takes one unused one-time key of `algorithm`, else the fallback key.
    pub fn claim(
        &self,
        user: &UserId,
        device: &str,
        algorithm: &str,
    ) -> Result<Option<(String, Value)>> {
        let base = prefix(&[user.as_str(), device]);
        let mut wanted = base.clone();
        wanted.extend_from_slice(algorithm.as_bytes());
        wanted.push(b':');
        if let Some(entry) = self.one_time_keys.scan_prefix(&wanted).next() {
            let (k, v) = entry?;
            // Only the caller that removes it gets it.
            if self.one_time_keys.remove(&k)?.is_some() {
                let id = String::from_utf8_lossy(&k[base.len()..]).into_owned();
                return Ok(Some((id, decode(ONE_TIME_KEYS, &v)?)));
            }
        }
        let fallback_key = key(&[user.as_str(), device, algorithm]);
        let fallback: Option<Value> = self
            .fallback_keys
            .get(&fallback_key)?
            .map(|v| decode(FALLBACK_KEYS, &v))
            .transpose()?;
        if fallback.is_some() {
            self.fallback_used.insert(fallback_key, &[])?;
        }
        Ok(fallback.and_then(|f| {
            f.as_object()
                .and_then(|o| o.iter().next().map(|(k, v)| (k.clone(), v.clone())))
        }))
    }

    /// Unused one-time keys per algorithm for a device.
    pub fn one_time_key_counts(
        &self,
        user: &UserId,
        device: &str,
    ) -> Result<serde_json::Map<String, Value>> {
        let prefix = prefix(&[user.as_str(), device]);
        let mut counts = serde_json::Map::new();
        for k in self.one_time_keys.scan_prefix(&prefix).keys() {
            let k = k?;
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let algorithm = id
                .split_once(':')
                .map_or(id.as_str(), |(a, _)| a)
                .to_owned();
            let count = counts.entry(algorithm).or_insert(Value::from(0u64));
            *count = Value::from(count.as_u64().unwrap_or(0) + 1);
        }
        Ok(counts)
    }

    pub fn put_fallback_key(
        &self,
        user: &UserId,
        device: &str,
        algorithm: &str,
        keys: &Value,
    ) -> Result<()> {
        let at = key(&[user.as_str(), device, algorithm]);
        self.fallback_keys.insert(&at, encode(keys)?)?;
        self.fallback_used.remove(at)?;
        Ok(())
    }

    /// Algorithms a device has an unused fallback key for.
    pub fn fallback_algorithms(&self, user: &UserId, device: &str) -> Result<Vec<String>> {
        let prefix = prefix(&[user.as_str(), device]);
        let mut unused = Vec::new();
        for k in self.fallback_keys.scan_prefix(&prefix).keys() {
            let k = k?;
            if !self.fallback_used.contains_key(&k)? {
                unused.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            }
        }
        Ok(unused)
    }

    pub fn put_cross_signing(&self, user: &UserId, usage: &str, keys: &Value) -> Result<()> {
        self.cross_signing
            .insert(key(&[user.as_str(), usage]), encode(keys)?)?;
        Ok(())
    }

    pub fn cross_signing(&self, user: &UserId, usage: &str) -> Result<Option<Value>> {
        self.cross_signing
            .get(key(&[user.as_str(), usage]))?
            .map(|v| decode(CROSS_SIGNING_KEYS, &v))
            .transpose()
    }

    /// Records that `user`'s keys changed at `position` and returns the
    /// change before it (0 if none). Atomic, and never moves back, so two
    /// announcements racing still chain: each names the one it follows.
    pub fn mark_changed(&self, user: &UserId, position: u64) -> Result<u64> {
        let decode = |v: Option<&[u8]>| {
            v.and_then(|v| <[u8; 8]>::try_from(v).ok())
                .map_or(0, u64::from_be_bytes)
        };
        let before = self.changes.fetch_and_update(user.as_str(), |old| {
            Some(decode(old).max(position).to_be_bytes().to_vec())
        })?;
        self.recent.record(user, position);
        Ok(decode(before.as_deref()))
    }

    /// The users whose keys changed at positions in `(from, to]`, from
    /// memory; `None` when that reaches back before this process.
    pub fn changed_between(&self, from: u64, to: u64) -> Option<Vec<ruma::OwnedUserId>> {
        self.recent.between(from, to)
    }

    /// The position of `user`'s latest key change (0 if never).
    pub fn changed_at(&self, user: &UserId) -> Result<u64> {
        Ok(self
            .changes
            .get(user.as_str())?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    pub fn remote_keys(&self, user: &UserId) -> Result<Option<RemoteKeys>> {
        self.remote
            .get(user.as_str())?
            .map(|v| decode(REMOTE_KEYS, &v))
            .transpose()
    }

    pub fn put_remote_keys(&self, user: &UserId, keys: &RemoteKeys) -> Result<()> {
        self.remote.insert(user.as_str(), encode(keys)?)?;
        Ok(())
    }

    /// Adds `signer`'s signatures (`{"ed25519:…": signature}`) of
    /// `user`'s key `key_id` to those kept.
    pub fn put_key_signatures(
        &self,
        signer: &UserId,
        user: &UserId,
        key_id: &str,
        signatures: &Map<String, Value>,
    ) -> Result<()> {
        let at = key(&[signer.as_str(), user.as_str(), key_id]);
        let mut kept: Map<String, Value> = match self.signatures.get(&at)? {
            Some(v) => decode(KEY_SIGNATURES, &v)?,
            None => Map::new(),
        };
        kept.extend(signatures.clone());
        self.signatures.insert(at, encode(&kept)?)?;
        Ok(())
    }

    /// (key ID, signatures) of `signer`'s on `user`'s keys.
    pub fn key_signatures(
        &self,
        signer: &UserId,
        user: &UserId,
    ) -> Result<Vec<(String, Map<String, Value>)>> {
        let prefix = prefix(&[signer.as_str(), user.as_str()]);
        self.signatures
            .scan_prefix(&prefix)
            .map(|entry| {
                let (k, v) = entry?;
                let key_id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                Ok((key_id, decode(KEY_SIGNATURES, &v)?))
            })
            .collect()
    }

    /// Drops every one-time key of every device (a server started on a
    /// backup may have handed them out since); returns how many.
    pub fn drop_all_one_time_keys(&self) -> Result<usize> {
        let mut dropped = 0;
        for key in self.one_time_keys.iter().keys() {
            self.one_time_keys.remove(key?)?;
            dropped += 1;
        }
        Ok(dropped)
    }

    pub fn flush(&self) -> Result<()> {
        self.device_keys.flush()?;
        Ok(())
    }
}
