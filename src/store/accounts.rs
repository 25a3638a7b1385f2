//! Local accounts: users, their devices and access tokens, filters and
//! account data.

use ruma::{DeviceId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::{transaction::ConflictableTransactionError, Transactional};

use super::{decode, encode, key};
use crate::store::{
    error::{Result, StoreError},
    tree::Tree,
};

/// `users`: user ID → JSON [`UserRecord`].
pub(super) const USERS: &str = "users";
/// `devices`: `user_id 0xFF device_id` → JSON [`Device`].
pub(super) const DEVICES: &str = "devices";
/// `access_tokens`: SHA-256 of the token → JSON [`Session`]. Only hashes
/// are kept, so a copy of `data/` does not hold usable tokens.
pub(super) const ACCESS_TOKENS: &str = "access_tokens";
/// `refresh_tokens`: SHA-256 of a refresh token → JSON [`Session`] (its
/// `expires_at` unset): the device it renews. One per device, replaced
/// with its access token.
pub(super) const REFRESH_TOKENS: &str = "refresh_tokens";
/// `account_data`: `user_id 0xFF room_id-or-empty 0xFF type` → JSON
/// [`AccountData`].
pub(super) const ACCOUNT_DATA: &str = "account_data";
/// `filters`: `user_id 0xFF filter_id` → the filter as uploaded.
pub(super) const FILTERS: &str = "filters";
/// `client_txns`: `user_id 0xFF device_id 0xFF txn_id` → event ID: what a
/// client's `PUT …/send/{type}/{txnId}` created, so a retry creates nothing.
pub(super) const CLIENT_TXNS: &str = "client_txns";
/// `event_txns`: event ID → `device_id 0xFF txn_id`: the reverse, so the
/// sending device sees its transaction ID on its own events.
pub(super) const EVENT_TXNS: &str = "event_txns";
/// `openid_tokens`: SHA-256 of an OpenID token → `expiry (u64 BE, Unix
/// ms) user_id`: what other services check with `/openid/userinfo`.
pub(super) const OPENID_TOKENS: &str = "openid_tokens";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserRecord {
    /// Argon2id PHC string; none for accounts that cannot log in.
    pub password_hash: Option<String>,
    #[serde(default)]
    pub deactivated: bool,
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub admin: bool,
    /// Extended profile fields (`m.tz`, namespaced keys), by key.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub profile_fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    pub display_name: Option<String>,
    /// Hash of the device's current access token.
    pub token_hash: Vec<u8>,
    pub last_seen_ts: u64,
    /// Hash of its refresh token, when its client asked for one; then
    /// the access token expires (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_hash: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// Who an access token belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user_id: ruma::OwnedUserId,
    pub device_id: ruma::OwnedDeviceId,
    /// When the access token expires (ms since the epoch): only tokens
    /// of clients that asked for a refresh token do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The application service acting, for its `as_token`'s requests
    /// (never stored: such sessions have no token record).
    #[serde(skip)]
    pub appservice: Option<std::sync::Arc<str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountData {
    /// The stream position it was written at, for incremental sync.
    pub position: u64,
    pub content: Value,
}

#[derive(Clone)]
pub struct AccountTrees {
    users: Tree,
    devices: Tree,
    tokens: Tree,
    refresh: Tree,
    account_data: Tree,
    filters: Tree,
    txns: Tree,
    event_txns: Tree,
    openid: Tree,
}

fn user_key(user: &UserId, rest: &str) -> Vec<u8> {
    key::join(&[user.as_bytes(), rest.as_bytes()])
}

fn data_key(user: &UserId, room: Option<&str>, kind: &str) -> Vec<u8> {
    let room = room.unwrap_or_default();
    key::join(&[user.as_bytes(), room.as_bytes(), kind.as_bytes()])
}

impl AccountTrees {
    pub(super) fn open(db: &crate::store::tree::Database) -> sled::Result<Self> {
        Ok(Self {
            users: db.open_tree(USERS)?,
            devices: db.open_tree(DEVICES)?,
            tokens: db.open_tree(ACCESS_TOKENS)?,
            refresh: db.open_tree(REFRESH_TOKENS)?,
            account_data: db.open_tree(ACCOUNT_DATA)?,
            filters: db.open_tree(FILTERS)?,
            txns: db.open_tree(CLIENT_TXNS)?,
            event_txns: db.open_tree(EVENT_TXNS)?,
            openid: db.open_tree(OPENID_TOKENS)?,
        })
    }

    pub fn user(&self, user: &UserId) -> Result<Option<UserRecord>> {
        self.users
            .get(user.as_str())?
            .map(|v| decode(USERS, &v))
            .transpose()
    }

    /// Stores a new user; false when the ID is taken.
    pub fn create_user(&self, user: &UserId, record: &UserRecord) -> Result<bool> {
        let created = self
            .users
            .compare_and_swap(user.as_str(), None as Option<&[u8]>, Some(encode(record)?))?
            .is_ok();
        self.users.flush()?;
        Ok(created)
    }

    pub fn put_user(&self, user: &UserId, record: &UserRecord) -> Result<()> {
        self.users.insert(user.as_str(), encode(record)?)?;
        self.users.flush()?;
        Ok(())
    }

    pub fn session(&self, token_hash: &[u8]) -> Result<Option<Session>> {
        self.tokens
            .get(token_hash)?
            .map(|v| decode(ACCESS_TOKENS, &v))
            .transpose()
    }

    /// The device a refresh token renews.
    pub fn refreshed_session(&self, refresh_hash: &[u8]) -> Result<Option<Session>> {
        self.refresh
            .get(refresh_hash)?
            .map(|v| decode(REFRESH_TOKENS, &v))
            .transpose()
    }

    pub fn device(&self, user: &UserId, device: &DeviceId) -> Result<Option<Device>> {
        self.devices
            .get(user_key(user, device.as_str()))?
            .map(|v| decode(DEVICES, &v))
            .transpose()
    }

    pub fn devices_of(&self, user: &UserId) -> Result<Vec<(String, Device)>> {
        let prefix = user_key(user, "");
        self.devices
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                Ok((id, decode(DEVICES, &value)?))
            })
            .collect()
    }

    /// Stores a device with its new token, replacing the device's old
    /// token, in one transaction.
    pub fn put_device(&self, session: &Session, device: &Device) -> Result<()> {
        let key = user_key(&session.user_id, session.device_id.as_str());
        let old = self.device(&session.user_id, &session.device_id)?;
        let device_bytes = encode(device)?;
        let session_bytes = encode(&Session {
            expires_at: device.expires_at,
            ..session.clone()
        })?;
        let renews = encode(&Session {
            expires_at: None,
            ..session.clone()
        })?;
        let _pass = self.devices.pass()?;
        (self.devices.sled(), self.tokens.sled(), self.refresh.sled())
            .transaction(|(devices, tokens, refresh)| {
                if let Some(old) = &old {
                    tokens.remove(old.token_hash.as_slice())?;
                    if let Some(hash) = &old.refresh_hash {
                        refresh.remove(hash.as_slice())?;
                    }
                }
                devices.insert(key.as_slice(), device_bytes.as_slice())?;
                tokens.insert(device.token_hash.as_slice(), session_bytes.as_slice())?;
                if let Some(hash) = &device.refresh_hash {
                    refresh.insert(hash.as_slice(), renews.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| StoreError::data(format!("storing device: {e:?}")))?;
        self.devices.flush()?;
        Ok(())
    }

    /// Removes a device and its token.
    pub fn remove_device(&self, user: &UserId, device: &DeviceId) -> Result<()> {
        let key = user_key(user, device.as_str());
        let Some(old) = self.device(user, device)? else {
            return Ok(());
        };
        let _pass = self.devices.pass()?;
        (self.devices.sled(), self.tokens.sled(), self.refresh.sled())
            .transaction(|(devices, tokens, refresh)| {
                tokens.remove(old.token_hash.as_slice())?;
                if let Some(hash) = &old.refresh_hash {
                    refresh.remove(hash.as_slice())?;
                }
                devices.remove(key.as_slice())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| StoreError::data(format!("removing device: {e:?}")))?;
        self.devices.flush()?;
        Ok(())
    }

    pub fn put_account_data(
        &self,
        user: &UserId,
        room: Option<&str>,
        kind: &str,
        data: &AccountData,
    ) -> Result<()> {
        self.account_data
            .insert(data_key(user, room, kind), encode(data)?)?;
        self.account_data.flush()?;
        Ok(())
    }

    pub fn account_data(
        &self,
        user: &UserId,
        room: Option<&str>,
        kind: &str,
    ) -> Result<Option<AccountData>> {
        self.account_data
            .get(data_key(user, room, kind))?
            .map(|v| decode(ACCOUNT_DATA, &v))
            .transpose()
    }

    /// All of a user's account data: (room or "", type, data).
    pub fn account_data_of(&self, user: &UserId) -> Result<Vec<(String, String, AccountData)>> {
        let prefix = user_key(user, "");
        self.account_data
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let (room, kind) = key::split(&key[prefix.len()..])
                    .ok_or_else(|| StoreError::data("corrupt account data key"))?;
                let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
                Ok((text(room), text(kind), decode(ACCOUNT_DATA, &value)?))
            })
            .collect()
    }

    pub fn put_filter(&self, user: &UserId, id: &str, filter: &Value) -> Result<()> {
        self.filters.insert(user_key(user, id), encode(filter)?)?;
        self.filters.flush()?;
        Ok(())
    }

    pub fn filter(&self, user: &UserId, id: &str) -> Result<Option<Value>> {
        self.filters
            .get(user_key(user, id))?
            .map(|v| decode(FILTERS, &v))
            .transpose()
    }

    pub fn txn_event(&self, session: &Session, txn: &str) -> Result<Option<String>> {
        Ok(self
            .txns
            .get(txn_key(session, txn))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records what `txn` (the key, scoped per endpoint) created; `echo`
    /// is the transaction ID as the client gave it, for room events.
    pub fn put_txn_event(
        &self,
        session: &Session,
        txn: &str,
        echo: Option<&str>,
        event_id: &str,
    ) -> Result<()> {
        if let Some(echo) = echo {
            let reverse = key::join(&[session.device_id.as_bytes(), echo.as_bytes()]);
            self.event_txns.insert(event_id.as_bytes(), reverse)?;
        }
        self.txns
            .insert(txn_key(session, txn), event_id.as_bytes())?;
        self.txns.flush()?;
        Ok(())
    }

    /// Stores a token, dropping the expired ones so the tree stays as
    /// small as the tokens alive (about an hour's worth).
    pub fn put_openid(&self, token_hash: &[u8], user: &UserId, expires_ms: u64) -> Result<()> {
        let now = crate::time::now_ms();
        for entry in self.openid.iter() {
            let (key, value) = entry?;
            let expired = value
                .split_first_chunk::<8>()
                .is_none_or(|(expiry, _)| u64::from_be_bytes(*expiry) <= now);
            if expired {
                self.openid.remove(key)?;
            }
        }
        let mut value = expires_ms.to_be_bytes().to_vec();
        value.extend_from_slice(user.as_str().as_bytes());
        self.openid.insert(token_hash, value)?;
        self.openid.flush()?;
        Ok(())
    }

    /// The user of an OpenID token and when it expires.
    pub fn openid(&self, token_hash: &[u8]) -> Result<Option<(u64, String)>> {
        let Some(value) = self.openid.get(token_hash)? else {
            return Ok(None);
        };
        let Some((expiry, user)) = value.split_first_chunk::<8>() else {
            return Err(StoreError::data("corrupt OpenID token record"));
        };
        Ok(Some((
            u64::from_be_bytes(*expiry),
            String::from_utf8_lossy(user).into_owned(),
        )))
    }

    /// The device and transaction ID that created an event, if a client
    /// of ours sent it with one.
    pub fn txn_of_event(&self, event_id: &str) -> Result<Option<(String, String)>> {
        let Some(value) = self.event_txns.get(event_id.as_bytes())? else {
            return Ok(None);
        };
        let Some((device, txn)) = key::split(&value) else {
            return Ok(None);
        };
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Ok(Some((text(device), text(txn))))
    }
}

fn txn_key(session: &Session, txn: &str) -> Vec<u8> {
    let (user, device) = (&session.user_id, &session.device_id);
    key::join(&[user.as_bytes(), device.as_bytes(), txn.as_bytes()])
}
