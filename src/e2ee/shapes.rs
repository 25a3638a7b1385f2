//! The shapes uploaded keys must have before they are kept and handed to
//! other clients. Looser than ruma's types on purpose: the key material
//! and key IDs are the clients' business (ruma insists on base64 keys and
//! `algorithm:device` IDs), and Synapse checks just these fields
//! (`KeyUploadServlet`'s request model, `_check_cross_signing_key`), so a
//! client that works there works here.

use std::collections::BTreeMap;

use ruma::OwnedUserId;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// `{user or server: {key ID: signature}}`.
type Signatures = BTreeMap<String, BTreeMap<String, String>>;

// Fields not read after parsing are there to be checked.
#[allow(dead_code)]
#[derive(Deserialize)]
pub(super) struct DeviceKeys {
    pub user_id: OwnedUserId,
    pub device_id: String,
    algorithms: Vec<String>,
    keys: BTreeMap<String, String>,
    signatures: Signatures,
}

/// A one-time or fallback key: a bare key, or a signed one.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneTimeKey {
    Bare(String),
    Signed { key: String, signatures: Signatures },
}

#[allow(dead_code)]
#[derive(Deserialize)]
pub(super) struct CrossSigningKey {
    pub user_id: OwnedUserId,
    pub usage: Vec<String>,
    pub keys: BTreeMap<String, String>,
    #[serde(default)]
    signatures: Signatures,
}

/// `value` read as a `T`, the shape the spec gives `what`.
pub(super) fn shaped<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T> {
    T::deserialize(value).map_err(|e| Error::bad_json(format!("{what} is malformed: {e}")))
}

/// A one-time or fallback key ID: `algorithm:key ID`.
pub(super) fn key_id(id: &str) -> Result<()> {
    match id.split_once(':') {
        Some((algorithm, key)) if !algorithm.is_empty() && !key.is_empty() => Ok(()),
        _ => Err(Error::bad_json(format!(
            "key ID {id:?} is not algorithm:key_id"
        ))),
    }
}
