//! Where services put EDUs for other servers: into the durable outbound
//! queue, waking the sender. Producers (typing, receipts, presence,
//! to-device, device lists) depend on this, not on the sender.
//! Spec: server-server-api.md "EDUs".

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
}
