//! What a user keeps on the server besides their account: account data,
//! filters, devices, and the transaction IDs that make their sends
//! idempotent. Routes reach these through here, never the trees.
//! Spec: client-server-api "Client Config", "Filtering", "Device
//! Management", "Transaction identifiers".

use ruma::{DeviceId, UserId};
use serde_json::Value;

use super::AccountService;
use crate::{
    error::{Error, Result},
    request::{at_most, json_at_most},
    rooms::RoomService,
    store::accounts::{AccountData, Device, Session},
};

/// One account data item: `m.direct` for a thousand conversations is
/// ~100 kB; Element's largest settings are a few kB.
const MAX_ACCOUNT_DATA_BYTES: usize = 256 * 1024;
/// An event type's length, as for room events.
const MAX_TYPE_BYTES: usize = 255;
/// A filter: a long list of rooms to leave out still fits.
const MAX_FILTER_BYTES: usize = 64 * 1024;

impl AccountService {
    /// One kind of the user's account data (global, or for `room`).
    pub fn account_data(&self, user: &UserId, room: Option<&str>, kind: &str) -> Result<Value> {
        self.trees
            .account_data(user, room, kind)?
            .map(|data| data.content)
            .ok_or_else(|| Error::not_found(format!("no {kind} account data")))
    }

    /// Sets account data at a new stream position, so `/sync` shows it.
    pub fn set_account_data(
        &self,
        rooms: &RoomService,
        user: &UserId,
        room: Option<&str>,
        kind: &str,
        content: Value,
    ) -> Result<()> {
        at_most("account data type", kind, MAX_TYPE_BYTES)?;
        json_at_most("account data", &content, MAX_ACCOUNT_DATA_BYTES)?;
        rooms.publish_with(|position| {
            let data = AccountData { position, content };
            Ok(self.trees.put_account_data(user, room, kind, &data)?)
        })
    }

    pub fn put_filter(&self, user: &UserId, id: &str, filter: &Value) -> Result<()> {
        json_at_most("a filter", filter, MAX_FILTER_BYTES)?;
        Ok(self.trees.put_filter(user, id, filter)?)
    }

    pub fn filter(&self, user: &UserId, id: &str) -> Result<Value> {
        self.trees
            .filter(user, id)?
            .ok_or_else(|| Error::not_found(format!("no filter {id}")))
    }

    pub fn devices_of(&self, user: &UserId) -> Result<Vec<(String, Device)>> {
        Ok(self.trees.devices_of(user)?)
    }

    pub fn device(&self, user: &UserId, id: &DeviceId) -> Result<Device> {
        self.trees
            .device(user, id)?
            .ok_or_else(|| Error::not_found(format!("no device {id}")))
    }

    pub fn remove_device(&self, user: &UserId, id: &DeviceId) -> Result<()> {
        Ok(self.trees.remove_device(user, id)?)
    }

    /// What the session's transaction `txn` (scoped per endpoint) created.
    pub fn txn_event(&self, session: &Session, txn: &str) -> Result<Option<String>> {
        Ok(self.trees.txn_event(session, txn)?)
    }

    /// Records what `txn` created; `echo` is the transaction ID as the
    /// client gave it, echoed back with room events.
    pub fn put_txn_event(
        &self,
        session: &Session,
        txn: &str,
        echo: Option<&str>,
        event_id: &str,
    ) -> Result<()> {
        Ok(self.trees.put_txn_event(session, txn, echo, event_id)?)
    }

    /// Adds `unsigned.transaction_id` to an event the device sent.
    pub fn echo_transaction_id(
        &self,
        event: &mut Value,
        user: &UserId,
        device: &str,
    ) -> Result<()> {
        crate::rooms::client_event::echo_transaction_id(&self.trees, event, user, device)
    }
}
