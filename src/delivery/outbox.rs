//! Where services put EDUs for other servers, and ephemeral events for
//! application services: into the durable outbound queue, waking the
//! sender. Producers (typing, receipts, presence, to-device, device lists)
//! depend on this, not on the senders.
//! Spec: server-server-api.md "EDUs"; MSC2409 (ephemeral events pushed to
//! application services).

use std::{sync::Arc, time::Duration};

use ruma::{OwnedServerName, ServerName, UserId};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::{
    error::Result,
    store::{edus::ToDevice, outbound::OutboundTree, outbound::Queued, rooms::RoomTrees},
    time::now_ms,
};

#[derive(Clone)]
pub struct Outbox {
    own: OwnedServerName,
    queue: OutboundTree,
    /// Numbers entries in the stream order every queue shares.
    ids: RoomTrees,
    ready: Arc<Notify>,
}

impl Outbox {
    pub fn new(
        own: OwnedServerName,
        queue: OutboundTree,
        ids: RoomTrees,
        ready: Arc<Notify>,
    ) -> Self {
        Self {
            own,
            queue,
            ids,
            ready,
        }
    }

    /// Queues an EDU for every server in `destinations` but us; with a
    /// `ttl` it is dropped unsent once stale (typing notifications).
    pub fn queue_edu(
        &self,
        destinations: impl IntoIterator<Item = OwnedServerName>,
        edu_type: &str,
        content: Value,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let destinations: Vec<OwnedServerName> = destinations
            .into_iter()
            .filter(|d| *d != self.own)
            .collect();
        if destinations.is_empty() {
            return Ok(());
        }
        let item = Queued::Edu {
            edu: json!({ "edu_type": edu_type, "content": content }),
            expires_ms: ttl.map(|ttl| now_ms() + ttl.as_millis() as u64),
        };
        let refs: Vec<&ServerName> = destinations.iter().map(|d| d.as_ref()).collect();
        self.queue.push(&refs, self.ids.new_id()?, &item)?;
        self.ready.notify_one();
        Ok(())
    }

    /// Queues an ephemeral event of `room` (`m.typing`, `m.receipt`, as
    /// clients get them) for the application services that asked for
    /// ephemeral events and are interested in the room.
    pub fn queue_ephemeral(
        &self,
        rooms: &crate::rooms::RoomService,
        room: &ruma::RoomId,
        kind: &str,
        content: Value,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let interested = rooms.appservices_for_ephemeral(room)?;
        let item = Queued::Edu {
            edu: json!({ "type": kind, "room_id": room, "content": content }),
            expires_ms: ttl.map(|ttl| now_ms() + ttl.as_millis() as u64),
        };
        self.queue_for_appservices(rooms, &interested, &item)
    }

    /// Queues `user`'s presence (`m.presence` content) for the application
    /// services that take ephemeral events and claim the user or one of
    /// our users joined to a room with them.
    pub fn queue_presence(
        &self,
        rooms: &crate::rooms::RoomService,
        user: &UserId,
        content: Value,
        ttl: Duration,
    ) -> Result<()> {
        let interested = rooms.appservices_for_user(user, |a| a.receive_ephemeral)?;
        let item = Queued::Edu {
            edu: json!({ "type": "m.presence", "sender": user, "content": content }),
            expires_ms: Some(now_ms() + ttl.as_millis() as u64),
        };
        self.queue_for_appservices(rooms, &interested, &item)
    }

    /// Queues a change of `user`'s devices or keys for the application
    /// services holding devices (MSC3202) that claim the user or one of
    /// our users joined to a room with them.
    pub fn queue_device_list(
        &self,
        rooms: &crate::rooms::RoomService,
        user: &UserId,
    ) -> Result<()> {
        let interested = rooms.appservices_for_user(user, |a| a.holds_devices())?;
        let item = Queued::DeviceList {
            user_id: user.to_owned(),
        };
        self.queue_for_appservices(rooms, &interested, &item)
    }

    /// Queues a to-device message for `user`'s `device` for the
    /// application services holding the user's devices (MSC4203);
    /// whether it must still be kept for the device's `/sync` (no
    /// registration claims the user exclusively).
    pub fn queue_to_device(
        &self,
        rooms: &crate::rooms::RoomService,
        (user, device): (&UserId, &str),
        message: &ToDevice,
    ) -> Result<bool> {
        let (interested, exclusive) = rooms.appservices_taking_to_device(user);
        let item = Queued::ToDevice {
            message: json!({
                "type": message.kind, "sender": message.sender, "content": message.content,
                "to_user_id": user, "to_device_id": device,
            }),
        };
        self.queue_for_appservices(rooms, &interested, &item)?;
        Ok(!exclusive)
    }

    /// Notes that one-time keys of `user`'s `device` were claimed, for
    /// the application services holding its devices: the next
    /// transaction carries its counts (MSC3202).
    pub fn queue_key_count(
        &self,
        rooms: &crate::rooms::RoomService,
        user: &UserId,
        device: &str,
    ) -> Result<()> {
        let (interested, _) = rooms.appservices_holding_devices_of(user);
        let item = Queued::KeyCount {
            user_id: user.to_owned(),
            device_id: device.to_owned(),
        };
        self.queue_for_appservices(rooms, &interested, &item)
    }

    fn queue_for_appservices(
        &self,
        rooms: &crate::rooms::RoomService,
        interested: &[Arc<str>],
        item: &Queued,
    ) -> Result<()> {
        if interested.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = interested.iter().map(|id| &**id).collect();
        self.queue
            .push_appservices(&ids, self.ids.new_id()?, item)?;
        rooms.appservices_queued(interested);
        Ok(())
    }
}
