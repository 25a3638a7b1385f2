//! Our own signing keys: generated once, kept in the `signing_keys` tree,
//! rotated on request, and published with `/_matrix/key/v2/server`.

use std::{path::Path, sync::Arc};

use rand::{distributions::Alphanumeric, Rng};
use ruma::{
    serde::{base64::Standard, Base64},
    signatures::Ed25519KeyPair,
    CanonicalJsonObject, CanonicalJsonValue,
};

use crate::{
    error::{Error, Result},
    store::{
        identity::{self, Identity},
        OwnSigningKey, SigningKeyTree,
    },
    time::now_ms,
};

/// PKCS#8 v1 prefix for a bare ed25519 seed (RFC 8410), so a stored seed
/// can be handed to ruma's key pair type.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The current key and the retired ones, as loaded from the store.
pub struct OwnKeys {
    pub current: Arc<Ed25519KeyPair>,
    /// Full key id, `ed25519:XXXXXX`.
    pub current_id: String,
    pub current_public: String,
    /// `(key id, public key, expired_ts)` for `old_verify_keys`.
    pub old: Vec<(String, String, u64)>,
}

/// Builds a key pair from a 32-byte seed; `key_id` is `ed25519:NAME`.
pub fn key_pair_from_seed(seed: &[u8], key_id: &str) -> Result<Ed25519KeyPair> {
    let name = key_id
        .strip_prefix("ed25519:")
        .ok_or_else(|| Error::internal(format!("signing key {key_id} is not an ed25519 key")))?;
    if seed.len() != 32 {
        return Err(Error::internal(format!(
            "signing key {key_id} has a bad seed length"
        )));
    }
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(seed);
    Ed25519KeyPair::from_der(&der, name.to_owned())
        .map_err(|e| Error::internal(format!("signing key {key_id} is unreadable: {e}")))
}

/// Timestamps fit in JSON's safe integer range for many millennia.
fn integer(value: u64) -> CanonicalJsonValue {
    CanonicalJsonValue::Integer(ruma::Int::try_from(value).unwrap_or(ruma::Int::MAX))
}

fn public_key_b64(pair: &Ed25519KeyPair) -> String {
    Base64::<Standard, _>::new(pair.public_key().to_vec()).encode()
}

fn new_record() -> OwnSigningKey {
    let seed: [u8; 32] = rand::thread_rng().gen();
    let name: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(6)
        .map(char::from)
        .collect();
    OwnSigningKey {
        key_id: format!("ed25519:{name}"),
        seed: Base64::<Standard, _>::new(seed.to_vec()).encode(),
        created_ts: now_ms(),
        expired_ts: None,
    }
}

fn decode_seed(record: &OwnSigningKey) -> Result<Vec<u8>> {
    Base64::<Standard, Vec<u8>>::parse(&record.seed)
        .map(|b| b.into_inner())
        .map_err(|e| {
            Error::internal(format!(
                "signing key {} has a corrupt seed: {e}",
                record.key_id
            ))
        })
}

impl OwnKeys {
    /// Loads the keys of `server_name`'s data in `data_dir`, checked
    /// against `identity.json`, generating the first one for a new server
    /// only. An existing key is never replaced here, and a database that
    /// lost its keys is refused, not given new ones.
    pub fn load_or_generate(
        tree: &SigningKeyTree,
        data_dir: &Path,
        server_name: &str,
    ) -> Result<Self> {
        let records = tree.all()?;
        let identity = identity::read(data_dir).map_err(Error::internal)?;
        match identity {
            Some(identity) => Self::check(tree, &records, identity, data_dir, server_name)?,
            None if records.is_empty() => {
                let first = new_record();
                // The file first: a crash then leaves a key, not two.
                identity::write(
                    data_dir,
                    &Identity {
                        server_name: server_name.to_owned(),
                        keys: vec![first.clone()],
                    },
                )
                .map_err(Error::internal)?;
                tree.replace_current(None, &first)?;
            }
            // A data directory from before identity.json: adopt its keys.
            None => identity::write(
                data_dir,
                &Identity {
                    server_name: server_name.to_owned(),
                    keys: records,
                },
            )
            .map_err(Error::internal)?,
        }
        Self::load(tree)
    }

    /// The database's keys must be those `identity.json` names (it may be
    /// one rotation ahead, after a crash: the tree catches up).
    fn check(
        tree: &SigningKeyTree,
        records: &[OwnSigningKey],
        identity: Identity,
        data_dir: &Path,
        server_name: &str,
    ) -> Result<()> {
        identity
            .belongs_to(data_dir, server_name)
            .map_err(Error::internal)?;
        if records.is_empty() {
            return Err(Error::internal(identity::missing_database(
                data_dir,
                server_name,
            )));
        }
        if let Some(stranger) = records
            .iter()
            .find(|r| !identity.keys.iter().any(|k| k.key_id == r.key_id))
        {
            return Err(Error::internal(format!(
                "the database's signing key {} is not in {}/identity.json: the database \
                 is another server's; restore {} from a backup",
                stranger.key_id,
                data_dir.display(),
                data_dir.display()
            )));
        }
        let in_step = records.len() == identity.keys.len()
            && records.iter().all(|r| {
                identity
                    .keys
                    .iter()
                    .any(|k| k.key_id == r.key_id && k.expired_ts == r.expired_ts)
            });
        if !in_step {
            tree.put_all(&identity.keys)?;
        }
        Ok(())
    }

    fn load(tree: &SigningKeyTree) -> Result<Self> {
        let records = tree.all()?;
        let current = records
            .iter()
            .find(|k| k.expired_ts.is_none())
            .ok_or_else(|| Error::internal("no current signing key in the store"))?;
        let pair = key_pair_from_seed(&decode_seed(current)?, &current.key_id)?;
        let mut old = Vec::new();
        for record in records.iter().filter(|k| k.expired_ts.is_some()) {
            let old_pair = key_pair_from_seed(&decode_seed(record)?, &record.key_id)?;
            old.push((
                record.key_id.clone(),
                public_key_b64(&old_pair),
                record.expired_ts.unwrap_or(0),
            ));
        }
        Ok(Self {
            current_public: public_key_b64(&pair),
            current_id: current.key_id.clone(),
            current: Arc::new(pair),
            old,
        })
    }

    /// Retires the current key (it moves to `old_verify_keys` with
    /// `expired_ts` = now) and makes a new one current. Returns the new keys.
    pub fn rotate(tree: &SigningKeyTree, data_dir: &Path, server_name: &str) -> Result<Self> {
        let mut keys = tree.all()?;
        let retired = keys
            .iter_mut()
            .find(|k| k.expired_ts.is_none())
            .ok_or_else(|| Error::internal("no current signing key to rotate"))?;
        retired.expired_ts = Some(now_ms());
        let retired = retired.clone();
        let new = new_record();
        keys.push(new.clone());
        identity::write(
            data_dir,
            &Identity {
                server_name: server_name.to_owned(),
                keys,
            },
        )
        .map_err(Error::internal)?;
        tree.replace_current(Some(&retired), &new)?;
        Self::load(tree)
    }

    /// The unsigned body of `/_matrix/key/v2/server`.
    /// Spec: server-server-api.md "Publishing Keys".
    pub fn key_response_body(&self, server_name: &str, valid_until_ts: u64) -> CanonicalJsonObject {
        let key_object =
            |key: &str| CanonicalJsonValue::Object([("key".to_owned(), key.into())].into());
        let verify_keys = [(self.current_id.clone(), key_object(&self.current_public))].into();
        let old_verify_keys = self
            .old
            .iter()
            .map(|(id, key, expired_ts)| {
                let mut object =
                    CanonicalJsonObject::from([("key".to_owned(), key.as_str().into())]);
                object.insert("expired_ts".into(), integer(*expired_ts));
                (id.clone(), CanonicalJsonValue::Object(object))
            })
            .collect();
        CanonicalJsonObject::from([
            ("server_name".to_owned(), server_name.into()),
            ("valid_until_ts".to_owned(), integer(valid_until_ts)),
            (
                "verify_keys".to_owned(),
                CanonicalJsonValue::Object(verify_keys),
            ),
            (
                "old_verify_keys".to_owned(),
                CanonicalJsonValue::Object(old_verify_keys),
            ),
        ])
    }
}
