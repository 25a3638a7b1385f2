//! Local accounts: registration, passwords (Argon2id), devices and their
//! access tokens, profiles.

pub mod appservice_auth;
mod data;
pub mod profiles;
pub mod push_rules;
mod tags;
pub mod uia;

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use std::net::IpAddr;

use rand::{distributions::Alphanumeric, Rng};
use ruma::{DeviceId, OwnedDeviceId, OwnedServerName, OwnedUserId, UserId};
use serde_json::Value;

use crate::{
    config::Limits,
    error::{Error, Result},
    rate_limit::{too_many, RateLimiter},
    request::at_most,
    store::accounts::{AccountTrees, Device, Session, UserRecord},
    time::now_ms,
};

/// Longest password accepted: hashing is deliberately slow, so a
/// megabyte-long one must not cost a core.
const MAX_PASSWORD_BYTES: usize = 1024;

pub struct AccountService {
    server_name: OwnedServerName,
    trees: AccountTrees,
    hashing: tokio::sync::Semaphore,
    uia: uia::UiaSessions,
    /// Login attempts per address, and failed ones per account.
    logins_by_address: RateLimiter<IpAddr>,
    failed_logins: RateLimiter<OwnedUserId>,
    /// How long a refreshable access token lives (ms).
    token_lifetime_ms: u64,
    /// The registered application services, whose tokens act as users.
    appservices: std::sync::Arc<crate::config::appservices::Appservices>,
    /// One per application service, notified at each of its requests.
    appservices_seen:
        std::collections::HashMap<std::sync::Arc<str>, std::sync::Arc<tokio::sync::Notify>>,
}

/// The device a login asks for: an ID to reuse, a name for a new one.
pub struct NewDevice {
    pub id: Option<OwnedDeviceId>,
    pub display_name: Option<String>,
    /// Whether the client asked for a refresh token (and so for an
    /// access token that expires).
    pub refresh: bool,
}

/// A new login: the device and the token that authenticates it.
pub struct Login {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    pub access_token: String,
    /// For a client that asked: the token that renews the access token,
    /// and how long the access token lives.
    pub refresh: Option<(String, u64)>,
}

fn random(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn token_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// How long an OpenID token is good for.
const OPENID_LIFETIME_MS: u64 = 3600 * 1000;

/// A device ID a client picks (they are ten letters when we pick).
const MAX_DEVICE_ID_BYTES: usize = 255;
/// A device's name ("Element Desktop (Linux)"), as Synapse bounds it.
const MAX_DEVICE_NAME_BYTES: usize = 100;

/// Hashes at once: each takes 19 MiB for ~50 ms, so a flood of logins
/// queues instead of exhausting a Raspberry Pi's memory.
const MAX_HASHING: usize = 2;

/// Checked in place of an unknown account's hash, with the same cost.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$2xSVWKFdG8nwnxYgOAyk/rprBP1sbJltrXqeFO/JCwk";

async fn hash_password(password: String) -> Result<String> {
    check_password_length(&password)?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| Error::internal(format!("hashing password: {e}")))
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))?
}

async fn password_matches(password: String, hash: String) -> Result<bool> {
    check_password_length(&password)?;
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| Error::internal(format!("stored password hash: {e}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))?
}

fn check_password_length(password: &str) -> Result<()> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_WEAK_PASSWORD",
            format!("a password must have 1 to {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn in_use(user: &UserId) -> Error {
    Error::new(
        http::StatusCode::BAD_REQUEST,
        "M_USER_IN_USE",
        format!("{user} is already taken"),
    )
}

fn wrong_login() -> Error {
    Error::forbidden("invalid username or password")
}

impl AccountService {
    pub fn new(
        server_name: OwnedServerName,
        trees: AccountTrees,
        limits: &Limits,
        auth: &crate::config::Auth,
    ) -> Self {
        Self {
            token_lifetime_ms: u64::try_from(auth.access_token_lifetime.0.as_millis())
                .unwrap_or(u64::MAX),
            server_name,
            trees,
            hashing: tokio::sync::Semaphore::new(MAX_HASHING),
            uia: uia::UiaSessions::default(),
            logins_by_address: RateLimiter::new(limits.login_burst, limits.login_per_minute),
            failed_logins: RateLimiter::new(limits.login_burst, limits.login_per_minute),
            appservices: Default::default(),
            appservices_seen: Default::default(),
        }
    }

    /// The service with the application services registered.
    pub fn with_appservices(
        mut self,
        appservices: std::sync::Arc<crate::config::appservices::Appservices>,
    ) -> Self {
        self.appservices_seen = appservices
            .all()
            .iter()
            .map(|a| (a.id.clone(), Default::default()))
            .collect();
        self.appservices = appservices;
        self
    }

    pub fn appservices(&self) -> &crate::config::appservices::Appservices {
        &self.appservices
    }

    /// User-interactive auth sessions in progress.
    pub fn uia(&self) -> &uia::UiaSessions {
        &self.uia
    }

    async fn hash(&self, password: String) -> Result<String> {
        let _slot = self
            .hashing
            .acquire()
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        hash_password(password).await
    }

    async fn matches(&self, password: String, hash: String) -> Result<bool> {
        let _slot = self
            .hashing
            .acquire()
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        password_matches(password, hash).await
    }

    /// A user ID of ours from a localpart or a full ID.
    /// Spec: appendices.md "User Identifiers" (new IDs use the strict grammar).
    pub fn user_id(&self, name: &str) -> Result<OwnedUserId> {
        let full = if name.starts_with('@') {
            name.to_owned()
        } else {
            format!("@{}:{}", name.to_lowercase(), self.server_name)
        };
        let id = OwnedUserId::try_from(full.as_str())
            .map_err(|e| Error::invalid_username(format!("{name:?}: {e}")))?;
        if id.server_name() != self.server_name {
            return Err(Error::invalid_username(format!(
                "{id} is not a user of this server"
            )));
        }
        Ok(id)
    }

    /// The ID a new account of this name would get: valid under the
    /// strict grammar and free, else `M_INVALID_USERNAME`/`M_USER_IN_USE`.
    pub fn check_new_name(&self, name: &str) -> Result<OwnedUserId> {
        let user = self.user_id(name)?;
        if user.validate_strict().is_err() {
            return Err(Error::invalid_username(format!(
                "{user}: a new user ID may only hold a-z, 0-9, and ._=-/+"
            )));
        }
        if self.trees.user(&user)?.is_some() {
            return Err(in_use(&user));
        }
        if let Some(owner) = self.appservices.exclusive_owner_of_user(&user) {
            return Err(Error::exclusive(format!(
                "{user} is reserved by the application service {}",
                owner.id
            )));
        }
        Ok(user)
    }

    /// Creates an account; `M_USER_IN_USE` when the name is taken. Its
    /// display name starts as its localpart, as Synapse sets it (the spec
    /// is silent), so clients show a name rather than the full user ID.
    pub async fn register(&self, name: &str, password: Option<String>) -> Result<OwnedUserId> {
        let user = self.check_new_name(name)?;
        self.create(user, password).await
    }

    async fn create(&self, user: OwnedUserId, password: Option<String>) -> Result<OwnedUserId> {
        let record = UserRecord {
            password_hash: match password {
                Some(password) => Some(self.hash(password).await?),
                None => None,
            },
            displayname: Some(user.localpart().to_owned()),
            ..UserRecord::default()
        };
        if !self.trees.create_user(&user, &record)? {
            return Err(in_use(&user));
        }
        tracing::info!(%user, "account created");
        Ok(user)
    }

    /// Whether `user` is an account here that is not deactivated.
    pub fn exists(&self, user: &UserId) -> Result<bool> {
        Ok(self
            .trees
            .user(user)?
            .is_some_and(|record| !record.deactivated))
    }

    fn active_user(&self, user: &UserId) -> Result<UserRecord> {
        match self.trees.user(user)? {
            Some(record) if !record.deactivated => Ok(record),
            _ => Err(Error::not_found(format!("no active user {user}"))),
        }
    }

    /// A password login from `from` (when known). Attempts are limited per
    /// address and failures per account, before any hashing; an unknown
    /// account costs the same hash as a known one, so the answer's time
    /// does not tell which it is.
    pub async fn login(
        &self,
        name: &str,
        password: String,
        device: NewDevice,
        from: Option<IpAddr>,
    ) -> Result<Login> {
        if let Some(address) = from {
            self.logins_by_address
                .take(&address)
                .map_err(|wait| too_many("login attempts from this address", wait))?;
        }
        let user = self.user_id(name).ok();
        if let Some(user) = &user {
            self.failed_logins
                .allows(user)
                .map_err(|wait| too_many("failed logins for this account", wait))?;
        }
        let hash = user
            .as_ref()
            .and_then(|user| self.active_user(user).ok())
            .and_then(|record| record.password_hash);
        let (Some(user), Some(hash)) = (user, hash) else {
            self.matches(password, DUMMY_HASH.to_owned()).await?;
            return Err(wrong_login());
        };
        if !self.matches(password, hash).await? {
            let _ = self.failed_logins.take(&user);
            return Err(wrong_login());
        }
        self.open_session(&user, device)
    }

    /// Whether `password` is the user's (for re-authentication).
    pub async fn password_matches(&self, user: &UserId, password: String) -> Result<bool> {
        let record = self.active_user(user)?;
        match record.password_hash {
            Some(hash) => self.matches(password, hash).await,
            None => Ok(false),
        }
    }

    pub fn rename_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        name: Option<String>,
    ) -> Result<()> {
        at_most(
            "display_name",
            name.as_deref().unwrap_or(""),
            MAX_DEVICE_NAME_BYTES,
        )?;
        let mut record = self
            .trees
            .device(user, device)?
            .ok_or_else(|| Error::not_found(format!("no device {device}")))?;
        record.display_name = name;
        Ok(self.trees.put_device(
            &Session {
                user_id: user.to_owned(),
                device_id: device.to_owned(),
                expires_at: None,
                appservice: None,
            },
            &record,
        )?)
    }

    /// A new access token for a device (created unless it exists), and
    /// a refresh token when the client asked for one.
    pub fn open_session(&self, user: &UserId, device: NewDevice) -> Result<Login> {
        at_most(
            "device_id",
            device.id.as_ref().map_or("", |d| d.as_str()),
            MAX_DEVICE_ID_BYTES,
        )?;
        at_most(
            "initial_device_display_name",
            device.display_name.as_deref().unwrap_or(""),
            MAX_DEVICE_NAME_BYTES,
        )?;
        let device_id = device
            .id
            .unwrap_or_else(|| random(10).to_uppercase().into());
        let access_token = format!("hth_{}", random(40));
        let refresh = device
            .refresh
            .then(|| (format!("htr_{}", random(40)), self.token_lifetime_ms));
        let old = self.trees.device(user, &device_id)?;
        let record = Device {
            display_name: device.display_name.or(old.and_then(|d| d.display_name)),
            token_hash: token_hash(&access_token),
            last_seen_ts: now_ms(),
            refresh_hash: refresh.as_ref().map(|(token, _)| token_hash(token)),
            expires_at: refresh
                .as_ref()
                .map(|(_, lifetime)| now_ms().saturating_add(*lifetime)),
        };
        let session = Session {
            user_id: user.to_owned(),
            device_id: device_id.clone(),
            expires_at: None,
            appservice: None,
        };
        self.trees.put_device(&session, &record)?;
        Ok(Login {
            user_id: user.to_owned(),
            device_id,
            access_token,
            refresh,
        })
    }

    /// `POST /refresh`: a new access token (and refresh token) for the
    /// device a refresh token renews; the old pair stops working.
    /// Spec: client-server-api "Refreshing access tokens".
    pub fn refresh(&self, refresh_token: &str) -> Result<Login> {
        let unknown = || {
            Error::unknown_token("unknown or used refresh token").with_field("soft_logout", false)
        };
        let hash = token_hash(refresh_token);
        let session = self.trees.refreshed_session(&hash)?.ok_or_else(unknown)?;
        let current = self
            .trees
            .device(&session.user_id, &session.device_id)?
            .and_then(|d| d.refresh_hash);
        if current.as_deref() != Some(hash.as_slice()) {
            return Err(unknown());
        }
        self.active_user(&session.user_id).map_err(|_| unknown())?;
        self.open_session(
            &session.user_id,
            NewDevice {
                id: Some(session.device_id),
                display_name: None,
                refresh: true,
            },
        )
    }

    /// Whose token this is. Spec: client-server-api "Using access tokens".
    pub fn authenticate(&self, token: &str) -> Result<Session> {
        let unknown = || {
            Error::unknown_token("unknown or expired access token").with_field("soft_logout", false)
        };
        let session = self
            .trees
            .session(&token_hash(token))?
            .ok_or_else(unknown)?;
        if session.expires_at.is_some_and(|at| at <= now_ms()) {
            // Expired, not revoked: the client refreshes and carries on.
            return Err(
                Error::unknown_token("the access token expired").with_field("soft_logout", true)
            );
        }
        self.active_user(&session.user_id).map_err(|_| unknown())?;
        Ok(session)
    }

    /// Ends the session and removes its device; the device removed.
    pub fn logout(&self, session: &Session) -> Result<Vec<String>> {
        self.trees
            .remove_device(&session.user_id, &session.device_id)?;
        Ok(vec![session.device_id.to_string()])
    }

    /// Removes every device of the user; the devices removed.
    pub fn logout_all(&self, user: &UserId) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for (device, _) in self.trees.devices_of(user)? {
            self.trees
                .remove_device(user, <&DeviceId>::from(device.as_str()))?;
            removed.push(device);
        }
        Ok(removed)
    }

    /// A token that proves to another service, through our
    /// `/openid/userinfo`, that the bearer is `user`, for an hour.
    /// Spec: client-server-api "OpenID"; server-server-api.md "OpenID".
    pub fn openid_token(&self, user: &UserId) -> Result<(String, u64)> {
        let token = random(32);
        let expires_ms = crate::time::now_ms() + OPENID_LIFETIME_MS;
        self.trees
            .put_openid(&token_hash(&token), user, expires_ms)?;
        Ok((token, OPENID_LIFETIME_MS / 1000))
    }

    /// The user an unexpired OpenID token was given to.
    pub fn openid_user(&self, token: &str) -> Result<OwnedUserId> {
        let unknown = || Error::unknown_token("unknown or expired OpenID token");
        let (expires_ms, user) = self.trees.openid(&token_hash(token))?.ok_or_else(unknown)?;
        if expires_ms <= crate::time::now_ms() {
            return Err(unknown());
        }
        OwnedUserId::try_from(user).map_err(|_| unknown())
    }

    /// Ends every session of the user but this one; the devices removed.
    pub fn logout_others(&self, session: &Session) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for (device, _) in self.trees.devices_of(&session.user_id)? {
            if device != session.device_id.as_str() {
                self.trees
                    .remove_device(&session.user_id, <&DeviceId>::from(device.as_str()))?;
                removed.push(device);
            }
        }
        Ok(removed)
    }

    pub async fn set_password(&self, user: &UserId, password: String) -> Result<()> {
        let mut record = self.active_user(user)?;
        record.password_hash = Some(self.hash(password).await?);
        Ok(self.trees.put_user(user, &record)?)
    }

    /// Locks the account for good: no login, no tokens. Its name stays
    /// taken, as the spec requires.
    pub fn deactivate(&self, user: &UserId) -> Result<()> {
        let mut record = self.active_user(user)?;
        record.deactivated = true;
        record.password_hash = None;
        self.trees.put_user(user, &record)?;
        self.logout_all(user).map(drop)
    }

    /// A local user's profile: (displayname, avatar_url).
    pub fn profile(&self, user: &UserId) -> Result<(Option<String>, Option<String>)> {
        let record = self.active_user(user)?;
        Ok((record.displayname, record.avatar_url))
    }

    /// The user's extended profile fields.
    pub fn profile_fields(&self, user: &UserId) -> Result<serde_json::Map<String, Value>> {
        Ok(self.active_user(user)?.profile_fields)
    }

    /// Sets (or, with `None`, removes) one extended profile field, within
    /// `max_bytes` for all of them.
    pub fn set_profile_field(
        &self,
        user: &UserId,
        key: &str,
        value: Option<Value>,
        max_bytes: usize,
    ) -> Result<()> {
        let mut record = self.active_user(user)?;
        match value {
            Some(value) => record.profile_fields.insert(key.to_owned(), value),
            None => record.profile_fields.remove(key),
        };
        let size = serde_json::to_vec(&record.profile_fields).map_or(usize::MAX, |v| v.len());
        if size > max_bytes {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_PROFILE_TOO_LARGE",
                format!("a profile may hold at most {max_bytes} bytes"),
            ));
        }
        Ok(self.trees.put_user(user, &record)?)
    }

    pub fn set_profile(
        &self,
        user: &UserId,
        displayname: Option<Option<String>>,
        avatar_url: Option<Option<String>>,
    ) -> Result<()> {
        let mut record = self.active_user(user)?;
        if let Some(name) = displayname {
            record.displayname = name;
        }
        if let Some(url) = avatar_url {
            record.avatar_url = url;
        }
        Ok(self.trees.put_user(user, &record)?)
    }
}

#[cfg(test)]
mod tests;
