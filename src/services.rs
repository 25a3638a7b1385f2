//! Every service, built once by `server::run` and shared by both
//! listeners: the client routes, the federation routes and the admin API
//! all take this one handle (cloning it is one reference count).

use std::{net::IpAddr, ops::Deref, sync::Arc};

use ruma::{OwnedUserId, UserId};

use crate::{
    accounts::{profiles::ProfileService, AccountService},
    config::{Limits, Registration},
    delivery::sender::Sender,
    e2ee::E2eeService,
    edus::EduService,
    inbound::{admission::Admission, receiver::Receiver, stats::InboundStats},
    keys::KeyService,
    listener::PeerIp,
    net::https::HttpsClient,
    rate_limit::{too_many, RateLimiter},
    rooms::{
        directory::DirectoryService, hierarchy::HierarchyService, history::HistoryService,
        membership::MembershipService, RoomService,
    },
    sync::SyncService,
};

pub struct ServiceSet {
    pub keys: Arc<KeyService>,
    /// The outbound HTTPS client (its backoff, for the admin API).
    pub client: Arc<HttpsClient>,
    pub rooms: Arc<RoomService>,
    pub membership: Arc<MembershipService>,
    pub history: Arc<HistoryService>,
    pub directory: Arc<DirectoryService>,
    pub hierarchy: Arc<HierarchyService>,
    pub accounts: Arc<AccountService>,
    pub profiles: Arc<ProfileService>,
    pub edus: Arc<EduService>,
    pub e2ee: Arc<E2eeService>,
    pub sync: Arc<SyncService>,
    pub sender: Arc<Sender>,
    pub receiver: Arc<Receiver>,
    pub admission: Arc<Admission>,
    pub inbound: Arc<InboundStats>,
    pub registration: Arc<Registration>,
    /// The admin API's token.
    pub admin_token: Arc<str>,
    pub strangers: Strangers,
    pub user_limits: Arc<UserLimits>,
    pub backups: crate::backup::BackupService,
    pub media: Arc<crate::media::MediaService>,
    pub key_backups: Arc<crate::e2ee::backup::KeyBackups>,
    pub voip: Arc<crate::config::Voip>,
    pub reports: Arc<crate::reports::ReportService>,
    pub delayed: Arc<crate::delayed::DelayedEvents>,
    pub push: Arc<crate::push::PushService>,
    pub appservices: Arc<crate::appservices::AppserviceService>,
}

/// What one user (or, for registration, one address) may do per minute,
/// as `[limits]` says: messages, joins, new accounts.
pub struct UserLimits {
    messages: RateLimiter<OwnedUserId>,
    joins: RateLimiter<OwnedUserId>,
    registrations: RateLimiter<IpAddr>,
    /// Users of application services registered with
    /// `rate_limited: false` (a bridge's puppets) are not limited.
    appservices: Arc<crate::config::appservices::Appservices>,
}

impl UserLimits {
    pub fn new(limits: &Limits, appservices: Arc<crate::config::appservices::Appservices>) -> Self {
        Self {
            appservices,
            messages: RateLimiter::new(limits.messages_burst, limits.messages_per_minute),
            joins: RateLimiter::new(limits.joins_burst, limits.joins_per_minute),
            registrations: RateLimiter::new(
                limits.registrations_burst,
                limits.registrations_per_minute,
            ),
        }
    }

    /// One more room message from `user`, or 429.
    pub fn message(&self, user: &UserId) -> crate::error::Result<()> {
        if self.exempt(user) {
            return Ok(());
        }
        self.messages
            .take(&user.to_owned())
            .map_err(|wait| too_many("messages", wait))
    }

    /// One more join by `user`, or 429.
    pub fn join(&self, user: &UserId) -> crate::error::Result<()> {
        if self.exempt(user) {
            return Ok(());
        }
        self.joins
            .take(&user.to_owned())
            .map_err(|wait| too_many("joins", wait))
    }

    fn exempt(&self, user: &UserId) -> bool {
        self.appservices
            .all()
            .iter()
            .any(|a| !a.rate_limited && a.claims_user(user))
    }

    /// Whether the address may register another account (429 if not).
    pub fn may_register(&self, from: Option<PeerIp>) -> crate::error::Result<()> {
        match from {
            Some(PeerIp(ip)) => self
                .registrations
                .allows(&ip)
                .map_err(|wait| too_many("registrations from this address", wait)),
            None => Ok(()),
        }
    }

    /// Counts an account registered from the address.
    pub fn registered(&self, from: Option<PeerIp>) {
        if let Some(PeerIp(ip)) = from {
            let _ = self.registrations.take(&ip);
        }
    }
}

/// Requests without credentials that make this server contact others (key
/// queries its cache cannot answer, third-party bindings), limited per
/// address: a stranger must not be able to use us to send requests.
#[derive(Clone)]
pub struct Strangers(Arc<RateLimiter<IpAddr>>);

/// Outbound requests one address may cause at once, then per minute.
const STRANGER_BURST: u32 = 10;
const STRANGER_PER_MINUTE: u32 = 10;

impl Default for Strangers {
    fn default() -> Self {
        Self(Arc::new(RateLimiter::new(
            STRANGER_BURST,
            STRANGER_PER_MINUTE,
        )))
    }
}

impl Strangers {
    /// Asks, each time, whether the asker at `from` may cause one more
    /// outbound request. An address we do not know (a proxy that does not
    /// say) is not limited.
    pub fn allowance(&self, from: Option<PeerIp>) -> impl Fn() -> bool + Send + Sync + 'static {
        let limiter = self.0.clone();
        move || {
            let allowed = from.is_none_or(|PeerIp(ip)| limiter.take(&ip).is_ok());
            if !allowed {
                crate::rate_limit::count_refusal("requests that make this server contact others");
            }
            allowed
        }
    }

    /// One outbound request for the asker at `from`, or 429.
    pub fn take(&self, from: Option<PeerIp>) -> crate::error::Result<()> {
        match from {
            Some(PeerIp(ip)) => self
                .0
                .take(&ip)
                .map_err(|wait| too_many("requests that make this server contact others", wait)),
            None => Ok(()),
        }
    }
}

/// The shared handle on every service.
#[derive(Clone)]
pub struct Services(Arc<ServiceSet>);

impl Services {
    pub fn new(set: ServiceSet) -> Self {
        Self(Arc::new(set))
    }

    /// Resolves an alias; one of ours that nobody created yet but an
    /// application service claims is asked of it (a bridge creates the
    /// portal room and its alias, then answers), then looked up again.
    /// A stranger's lookup (`stranger`: the asker's address, for requests
    /// without credentials) asks under the [`Strangers`] limit.
    /// Spec: application-service-api.md "Room Alias query".
    pub async fn resolve_alias(
        &self,
        alias: &ruma::RoomAliasId,
        stranger: Option<PeerIp>,
    ) -> crate::error::Result<crate::rooms::directory::Resolved> {
        let resolved = self.directory.resolve(alias).await;
        let claimed = matches!(&resolved, Err(e) if e.status == http::StatusCode::NOT_FOUND)
            && alias.server_name() == self.rooms.server_name()
            && self
                .appservices
                .registered()
                .all()
                .iter()
                .any(|a| a.claims_alias(alias));
        if !claimed {
            return resolved;
        }
        self.strangers.take(stranger)?;
        if self.appservices.alias_exists(alias).await {
            return self.directory.resolve(alias).await;
        }
        resolved
    }

    /// Before a user of ours is looked up (a profile, an invite): one that
    /// does not exist but an application service claims is asked of it,
    /// which registers the user if it knows them.
    /// Spec: application-service-api.md "User query".
    pub async fn ask_for_user(&self, user: &ruma::UserId) -> crate::error::Result<()> {
        if user.server_name() == self.rooms.server_name()
            && !self.appservices.registered().is_empty()
            && !self.accounts.exists(user)?
        {
            self.appservices.user_exists(user).await;
        }
        Ok(())
    }

    /// After `user`'s `devices` were removed (logout, deletion): their keys
    /// are dropped and the servers sharing a room are told (clients stop
    /// encrypting for them), and their to-device inboxes are emptied.
    pub fn devices_removed(
        &self,
        user: &ruma::UserId,
        devices: &[String],
    ) -> crate::error::Result<()> {
        for device in devices {
            self.e2ee.device_removed(user, device)?;
            self.edus.drop_inbox(user, device)?;
            self.sync.device_removed(user, device);
        }
        self.push.devices_removed(user, devices)
    }
}

impl Deref for Services {
    type Target = ServiceSet;

    fn deref(&self) -> &ServiceSet {
        &self.0
    }
}
