//! Every service, built once by `server::run` and shared by both
//! listeners: the client routes, the federation routes and the admin API
//! all take this one handle (cloning it is one reference count).

use std::{ops::Deref, sync::Arc};

use crate::{
    accounts::{profiles::ProfileService, AccountService},
    config::Registration,
    delivery::sender::Sender,
    e2ee::E2eeService,
    edus::EduService,
    inbound::{admission::Admission, receiver::Receiver, stats::InboundStats},
    keys::KeyService,
    net::https::HttpsClient,
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
}

/// The shared handle on every service.
#[derive(Clone)]
pub struct Services(Arc<ServiceSet>);

impl Services {
    pub fn new(set: ServiceSet) -> Self {
        Self(Arc::new(set))
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
        }
        Ok(())
    }
}

impl Deref for Services {
    type Target = ServiceSet;

    fn deref(&self) -> &ServiceSet {
        &self.0
    }
}
