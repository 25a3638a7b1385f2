//! Trees for signing keys: our own, and the cache of other servers' keys.

use ruma::{CanonicalJsonObject, ServerName};
use serde::{Deserialize, Serialize};

use super::{decode, encode};
use crate::store::{error::Result, tree::Tree};

/// `signing_keys`: our own ed25519 keys.
/// key: key id as UTF-8 (`ed25519:AbCdEf`)
/// value: JSON [`OwnSigningKey`]. Exactly one record has `expired_ts: null`:
/// the current key; the others are published as `old_verify_keys`.
pub(super) const SIGNING_KEYS: &str = "signing_keys";

/// `server_keys`: every verify key we have seen for another server.
/// key: `server_name 0xFF key_id` (0xFF never occurs in either)
/// value: JSON [`RemoteKey`]
pub(super) const SERVER_KEYS: &str = "server_keys";

/// `key_responses`: the last `/_matrix/key/v2/server` response fetched from
/// each server, exactly as it signed it; the notary serves it again.
/// key: server name as UTF-8
/// value: JSON [`StoredKeyResponse`]
pub(super) const KEY_RESPONSES: &str = "key_responses";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnSigningKey {
    pub key_id: String,
    /// The 32-byte ed25519 seed, unpadded base64.
    pub seed: String,
    pub created_ts: u64,
    /// When it stopped being the current key; `None` for the current one.
    pub expired_ts: Option<u64>,
}

#[derive(Clone)]
pub struct SigningKeyTree {
    tree: Tree,
}

impl SigningKeyTree {
    pub(super) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    pub fn all(&self) -> Result<Vec<OwnSigningKey>> {
        self.tree
            .iter()
            .map(|entry| {
                let (_, value) = entry?;
                decode(SIGNING_KEYS, &value)
            })
            .collect()
    }

    /// Stores every one of `keys` (a copy of `identity.json` that is ahead
    /// of the tree after a crash between the two), in one transaction.
    pub fn put_all(&self, keys: &[OwnSigningKey]) -> Result<()> {
        let values = keys
            .iter()
            .map(|k| encode(k).map(|v| (k.key_id.clone(), v)))
            .collect::<Result<Vec<_>>>()?;
        self.tree.transaction(|tx| {
            for (id, value) in &values {
                tx.insert(id.as_bytes(), value.as_slice())?;
            }
            Ok::<_, sled::transaction::ConflictableTransactionError<crate::store::error::StoreError>>(())
        })?;
        self.tree.flush()?;
        Ok(())
    }

    /// Stores `new` as the current key and marks `old` expired in one
    /// transaction, so a crash can never leave zero or two current keys.
    pub fn replace_current(&self, old: Option<&OwnSigningKey>, new: &OwnSigningKey) -> Result<()> {
        let new_value = encode(new)?;
        let old_value = old
            .map(|k| encode(k).map(|v| (k.key_id.clone(), v)))
            .transpose()?;
        self.tree.transaction(|tx| {
            if let Some((id, value)) = &old_value {
                tx.insert(id.as_bytes(), value.as_slice())?;
            }
            tx.insert(new.key_id.as_bytes(), new_value.as_slice())?;
            Ok::<_, sled::transaction::ConflictableTransactionError<crate::store::error::StoreError>>(())
        })?;
        self.tree.flush()?;
        Ok(())
    }
}

/// One verify key of another server, as learned from its key response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteKey {
    /// Unpadded base64 public key.
    pub key: String,
    /// The response's `valid_until_ts` when the key was current.
    pub valid_until_ts: u64,
    /// Set when the server listed it under `old_verify_keys`.
    pub expired_ts: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKeyResponse {
    pub fetched_ts: u64,
    pub response: CanonicalJsonObject,
}

#[derive(Clone)]
pub struct ServerKeyTree {
    keys: Tree,
    responses: Tree,
}

fn remote_key_id(server: &ServerName, key_id: &str) -> Vec<u8> {
    super::key::join(&[server.as_bytes(), key_id.as_bytes()])
}

impl ServerKeyTree {
    pub(super) fn new(keys: Tree, responses: Tree) -> Self {
        Self { keys, responses }
    }

    pub fn key(&self, server: &ServerName, key_id: &str) -> Result<Option<RemoteKey>> {
        self.keys
            .get(remote_key_id(server, key_id))?
            .map(|v| decode(SERVER_KEYS, &v))
            .transpose()
    }

    /// Records a verified key response: the response itself and each key in
    /// it. A key never loses validity it once had (a later response with a
    /// shorter `valid_until_ts` does not shorten what was already vouched for).
    pub fn store_response(
        &self,
        server: &ServerName,
        response: &StoredKeyResponse,
        keys: &[(String, RemoteKey)],
    ) -> Result<()> {
        for (key_id, key) in keys {
            let merged = match self.key(server, key_id)? {
                Some(old) if old.key == key.key => RemoteKey {
                    key: key.key.clone(),
                    valid_until_ts: old.valid_until_ts.max(key.valid_until_ts),
                    expired_ts: key.expired_ts.or(old.expired_ts),
                },
                _ => key.clone(),
            };
            self.keys
                .insert(remote_key_id(server, key_id), encode(&merged)?)?;
        }
        self.responses
            .insert(server.as_bytes(), encode(response)?)?;
        Ok(())
    }

    pub fn response(&self, server: &ServerName) -> Result<Option<StoredKeyResponse>> {
        self.responses
            .get(server.as_bytes())?
            .map(|v| decode(KEY_RESPONSES, &v))
            .transpose()
    }
}
