//! Requests of application services: the `as_token` acts as the
//! registration's sender, or with `?user_id=` as any user it claims that
//! exists here; with `?device_id=` (MSC3202, for encrypted bridges) as one
//! of that user's devices.
//! Spec: application-service-api.md "Identity assertion".

use std::sync::Arc;

use ruma::{OwnedDeviceId, UserId};

use super::AccountService;
use crate::{
    config::appservices::Appservice,
    error::{Error, Result},
    request::Query,
    store::accounts::Session,
};

/// The device an appservice's request acts from when it names none:
/// not a device any client can have (they are letters and digits).
pub const NO_DEVICE: &str = "_appservice";

impl AccountService {
    /// The session of a request: its `as_token`'s (see the module), or
    /// else a client's access token.
    pub fn authenticate_request(&self, token: &str, query: &str) -> Result<Session> {
        match self.appservices.by_as_token(token) {
            Some(appservice) => {
                // It is up: its sender, if waiting to retry, goes on now.
                if let Some(seen) = self.appservices_seen.get(&appservice.id) {
                    seen.notify_one();
                }
                self.as_appservice(appservice, &Query::parse(query))
            }
            None => self.authenticate(token),
        }
    }

    /// Notified whenever the application service `id` makes a request.
    pub fn appservice_seen(&self, id: &str) -> Option<Arc<tokio::sync::Notify>> {
        self.appservices_seen.get(id).cloned()
    }

    fn as_appservice(&self, appservice: &Arc<Appservice>, query: &Query) -> Result<Session> {
        let user = match query.get("user_id") {
            Some(user) => crate::request::id::<ruma::OwnedUserId>("user_id", user)?,
            None => appservice.sender.clone(),
        };
        if !appservice.claims_user(&user) || user.server_name() != self.server_name {
            return Err(Error::forbidden(format!(
                "the application service {} cannot act as {user}",
                appservice.id
            )));
        }
        if user != appservice.sender {
            self.active_user(&user).map_err(|_| {
                Error::forbidden(format!("the application service has not registered {user}"))
            })?;
        }
        let device = query
            .get("device_id")
            .or_else(|| query.get("org.matrix.msc3202.device_id"));
        let device_id = match device {
            Some(device) if appservice.device_masquerading => self.own_device(&user, device)?,
            _ => OwnedDeviceId::from(NO_DEVICE),
        };
        Ok(Session {
            user_id: user,
            device_id,
            expires_at: None,
            appservice: Some(appservice.id.clone()),
        })
    }

    fn own_device(&self, user: &UserId, device: &str) -> Result<OwnedDeviceId> {
        let device = OwnedDeviceId::from(device);
        match self.trees.device(user, &device)? {
            Some(_) => Ok(device),
            None => Err(Error::forbidden(format!("{user} has no device {device}"))),
        }
    }
}

impl AccountService {
    /// Registers `name` for the application service whose `as_token`
    /// this is (no password, no interactive auth); 400 `M_EXCLUSIVE`
    /// for a name it does not claim. Its sender exists already.
    /// Spec: application-service-api.md "Server admin style permissions".
    pub async fn register_for_appservice(
        &self,
        token: Option<&str>,
        name: &str,
    ) -> Result<ruma::OwnedUserId> {
        let user = self.claimed_user(token, name)?;
        if user.validate_strict().is_err() {
            return Err(Error::invalid_username(format!(
                "{user}: a new user ID may only hold a-z, 0-9, and ._=-/+"
            )));
        }
        self.create(user, None).await
    }

    /// The user an application service logs in as (`m.login.application_service`):
    /// one it claims (else `M_EXCLUSIVE`) that exists (else `M_FORBIDDEN`).
    pub fn appservice_login(&self, token: Option<&str>, name: &str) -> Result<ruma::OwnedUserId> {
        let user = self.claimed_user(token, name)?;
        self.active_user(&user)
            .map_err(|_| Error::forbidden(format!("{user} is not registered")))?;
        Ok(user)
    }

    /// The user `name` names, if the application service whose token
    /// this is claims it (else `M_EXCLUSIVE`).
    fn claimed_user(&self, token: Option<&str>, name: &str) -> Result<ruma::OwnedUserId> {
        let appservice = self.appservice_of(token)?;
        let user = self.user_id(name)?;
        if !appservice.claims_user(&user) {
            return Err(Error::exclusive(format!(
                "the application service {} does not claim {user}",
                appservice.id
            )));
        }
        Ok(user)
    }

    fn appservice_of(&self, token: Option<&str>) -> Result<&Arc<Appservice>> {
        let token = token.ok_or_else(|| {
            Error::new(
                http::StatusCode::UNAUTHORIZED,
                "M_MISSING_TOKEN",
                "this needs an application service's as_token",
            )
        })?;
        self.appservices
            .by_as_token(token)
            .ok_or_else(|| Error::forbidden("not an application service's token"))
    }

    /// Creates each registration's sender user, if it does not exist.
    pub async fn create_appservice_senders(&self) -> Result<()> {
        for appservice in self.appservices.all() {
            if self.trees.user(&appservice.sender)?.is_none() {
                self.create(appservice.sender.clone(), None).await?;
            }
        }
        Ok(())
    }
}

/// What an application service that manages its users' devices gets for
/// a login (MSC4190's unstable error code).
const LOGIN_UNSUPPORTED: &str = "IO.ELEMENT.MSC4190.M_APPSERVICE_LOGIN_UNSUPPORTED";

impl AccountService {
    /// Whether `session` is an application service's that manages its
    /// users' devices itself (MSC4190): it creates them with
    /// `PUT /devices/{id}` and deletes them without interactive auth.
    pub fn manages_devices(&self, session: &Session) -> bool {
        session
            .appservice
            .as_deref()
            .and_then(|id| self.appservices.get(id))
            .is_some_and(|a| a.device_management)
    }

    /// Refuses a login (or a registration that logs in) with
    /// `m.login.application_service` to an application service that
    /// manages devices: it has no use for access tokens (MSC4190).
    pub fn refuse_login_if_managing_devices(&self, token: Option<&str>) -> Result<()> {
        if self.appservice_of(token)?.device_management {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                LOGIN_UNSUPPORTED,
                "this application service manages its users' devices: create them with \
                 PUT /devices/{deviceId}, and register with inhibit_login",
            ));
        }
        Ok(())
    }

    /// `PUT /devices/{id}` of an application service that manages devices:
    /// creates the device (no access token: the application service acts
    /// for it with `?device_id=`) unless it exists; whether it was created.
    pub fn create_appservice_device(
        &self,
        session: &Session,
        device: &ruma::DeviceId,
        display_name: Option<String>,
    ) -> Result<bool> {
        if self.trees.device(&session.user_id, device)?.is_some() {
            return Ok(false);
        }
        crate::request::at_most("device_id", device.as_str(), super::MAX_DEVICE_ID_BYTES)?;
        crate::request::at_most(
            "display_name",
            display_name.as_deref().unwrap_or(""),
            super::MAX_DEVICE_NAME_BYTES,
        )?;
        let record = crate::store::accounts::Device {
            display_name,
            // A token nobody is given.
            token_hash: super::token_hash(&super::random(40)),
            last_seen_ts: crate::time::now_ms(),
            refresh_hash: None,
            expires_at: None,
        };
        let owner = Session {
            user_id: session.user_id.clone(),
            device_id: device.to_owned(),
            expires_at: None,
            appservice: None,
        };
        self.trees.put_device(&owner, &record)?;
        Ok(true)
    }
}

impl AccountService {
    /// Refuses (`M_EXCLUSIVE`) an alias that an application service
    /// other than the session's claims exclusively.
    pub fn may_take_alias(&self, alias: &ruma::RoomAliasId, session: &Session) -> Result<()> {
        match self.appservices.exclusive_owner_of_alias(alias) {
            Some(owner) if session.appservice.as_ref() != Some(&owner.id) => {
                Err(Error::exclusive(format!(
                    "{alias} is reserved by the application service {}",
                    owner.id
                )))
            }
            _ => Ok(()),
        }
    }
}
