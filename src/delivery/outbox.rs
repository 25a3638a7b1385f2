//! Where services put EDUs for other servers, and ephemeral events for
//! application services: into the durable outbound queue, waking the
//! sender. Producers (typing, receipts, presence, to-device, device lists)
//! depend on this, not on the senders.
//! Spec: server-server-api.md "EDUs"; MSC2409 (ephemeral events pushed to
//! application services).

use std::{sync::Arc, time::Duration};

use ruma::{OwnedServerName, ServerName};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::{
    error::Result,
    store::{outbound::OutboundTree, outbound::Queued, rooms::RoomTrees},
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
        if interested.is_empty() {
            return Ok(());
        }
        let item = Queued::Edu {
            edu: json!({ "type": kind, "room_id": room, "content": content }),
            expires_ms: ttl.map(|ttl| now_ms() + ttl.as_millis() as u64),
        };
        let ids: Vec<&str> = interested.iter().map(|id| &**id).collect();
        self.queue
            .push_appservices(&ids, self.ids.new_id()?, &item)?;
        rooms.appservices_queued(&interested);
        Ok(())
    }
}
